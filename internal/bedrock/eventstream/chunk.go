package eventstream

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// Anthropic stream event types carried in InvokeModelWithResponseStream chunks.
const (
	AnthropicMessageStart      = "message_start"
	AnthropicContentBlockStart = "content_block_start"
	AnthropicContentBlockDelta = "content_block_delta"
	AnthropicContentBlockStop  = "content_block_stop"
	AnthropicMessageDelta      = "message_delta"
	AnthropicMessageStop       = "message_stop"
	AnthropicPing              = "ping"
	AnthropicError             = "error"
)

// InvocationMetrics is what Bedrock appends to the final message_stop event
// as "amazon-bedrock-invocationMetrics": the counts the request is charged
// for, and latencies in milliseconds.
type InvocationMetrics struct {
	InputTokenCount   int `json:"inputTokenCount"`
	OutputTokenCount  int `json:"outputTokenCount"`
	InvocationLatency int `json:"invocationLatency"`
	FirstByteLatency  int `json:"firstByteLatency"`
	// Cache counts appear when prompt caching was used.
	CacheReadInputTokenCount  int `json:"cacheReadInputTokenCount,omitempty"`
	CacheWriteInputTokenCount int `json:"cacheWriteInputTokenCount,omitempty"`
}

// AnthropicEvent is what metering needs from one Anthropic stream event.
type AnthropicEvent struct {
	Type string
	// Usage holds the counts this event carries, zero elsewhere:
	// message_start has input and cache counts (and an initial output
	// count), message_delta has the output count so far.
	Usage    bedrock.Usage
	HasUsage bool
	// Metrics is set on the final message_stop.
	Metrics *InvocationMetrics
	// DeltaBytes is the length of the generated text in a
	// content_block_delta (text, thinking, or a tool's partial_json), used to
	// estimate output before the model reports it.
	DeltaBytes int
	// StopReason is message_delta's delta.stop_reason.
	StopReason string
	// ToolUseID is the id of the tool_use block a content_block_start
	// begins ("" for other blocks): the output policy remembers the last
	// one of an answer its cap cut.
	ToolUseID string
}

type anthropicUsageJSON struct {
	InputTokens           int `json:"input_tokens"`
	OutputTokens          int `json:"output_tokens"`
	CacheReadInputTokens  int `json:"cache_read_input_tokens"`
	CacheWriteInputTokens int `json:"cache_creation_input_tokens"`
}

// anthropicJSON names only the fields metering reads; encoding/json skips
// the rest (content, tool definitions, signatures) without building them.
type anthropicJSON struct {
	Type    string `json:"type"`
	Message *struct {
		Usage *anthropicUsageJSON `json:"usage"`
	} `json:"message"`
	Usage *anthropicUsageJSON `json:"usage"`
	Delta *struct {
		Text        string `json:"text"`
		Thinking    string `json:"thinking"`
		PartialJSON string `json:"partial_json"`
		StopReason  string `json:"stop_reason"`
	} `json:"delta"`
	Metrics      *InvocationMetrics `json:"amazon-bedrock-invocationMetrics"`
	ContentBlock *struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"content_block"`
}

// ParseChunk reads an InvokeModelWithResponseStream chunk payload,
// {"bytes":"<base64>"}, and the Anthropic stream event inside it.
func ParseChunk(payload []byte) (AnthropicEvent, error) {
	inner, err := chunkBytes(payload)
	if err != nil {
		return AnthropicEvent{}, err
	}
	return ParseAnthropicEvent(inner)
}

// ParseAnthropicEvent reads one Anthropic stream event's JSON (what a chunk
// carries once its base64 is decoded).
func ParseAnthropicEvent(data []byte) (AnthropicEvent, error) {
	var v anthropicJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return AnthropicEvent{}, fmt.Errorf("anthropic stream event: %w", err)
	}
	if v.Type == "" {
		return AnthropicEvent{}, fmt.Errorf("anthropic stream event: no type")
	}
	ev := AnthropicEvent{Type: v.Type, Metrics: v.Metrics}
	u := v.Usage
	if v.Type == AnthropicMessageStart && v.Message != nil {
		u = v.Message.Usage
	}
	if u != nil {
		ev.HasUsage = true
		ev.Usage = bedrock.Usage(*u)
	}
	if err := checkCounts(ev.Usage, ev.Metrics); err != nil {
		return AnthropicEvent{}, fmt.Errorf("anthropic stream event %s: %w", v.Type, err)
	}
	if d := v.Delta; d != nil {
		ev.DeltaBytes = len(d.Text) + len(d.Thinking) + len(d.PartialJSON)
		ev.StopReason = d.StopReason
	}
	if cb := v.ContentBlock; v.Type == AnthropicContentBlockStart && cb != nil && cb.Type == "tool_use" {
		ev.ToolUseID = cb.ID
	}
	return ev, nil
}

// chunkBytes returns the decoded "bytes" of a chunk payload. The two
// shapes seen on the wire, {"bytes":"..."} and Bedrock's padded
// {"bytes":"...","p":"abc..."}, are cut by hand, which halves the cost of
// ParseChunk; anything else goes through encoding/json. Both paths give the
// same answer (FuzzParseChunk checks it).
func chunkBytes(payload []byte) ([]byte, error) {
	if enc, ok := cutChunk(payload); ok {
		out := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
		n, err := base64.StdEncoding.Decode(out, enc)
		if err != nil {
			return nil, fmt.Errorf("chunk payload: %w", err)
		}
		if n == 0 {
			return nil, errNoChunkBytes
		}
		return out[:n], nil
	}
	return chunkBytesJSON(payload)
}

var errNoChunkBytes = errors.New("chunk payload: no bytes")

// cutChunk returns the base64 text of a payload of exactly the shape
// {"bytes":"B64"} or {"bytes":"B64","p":"PAD"}, where B64 and PAD hold no
// character JSON would treat specially.
func cutChunk(payload []byte) (enc []byte, ok bool) {
	rest, ok := bytes.CutPrefix(payload, []byte(`{"bytes":"`))
	if !ok {
		return nil, false
	}
	enc, rest, ok = cutPlain(rest)
	if !ok {
		return nil, false
	}
	if string(rest) == "}" {
		return enc, true
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"p":"`)); !ok {
		return nil, false
	}
	if _, rest, ok = cutPlain(rest); !ok || string(rest) != "}" {
		return nil, false
	}
	return enc, true
}

// cutPlain splits b at its first '"' if nothing before it needs JSON
// unescaping (no backslash, no control character).
func cutPlain(b []byte) (before, after []byte, ok bool) {
	// Skip plain bytes eight at a time (base64 is all plain); the byte loop
	// below then looks at the first byte that may stop the run.
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if bedrock.JSONStringStop(binary.LittleEndian.Uint64(b[i:])) != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			return b[:i], b[i+1:], true
		case c == '\\' || c < 0x20:
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// chunkBytesJSON is chunkBytes through encoding/json, for any shape.
func chunkBytesJSON(payload []byte) ([]byte, error) {
	var c struct {
		Bytes []byte `json:"bytes"` // encoding/json decodes base64 into []byte
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("chunk payload: %w", err)
	}
	if len(c.Bytes) == 0 {
		return nil, errNoChunkBytes
	}
	return c.Bytes, nil
}

// checkCounts refuses negative token counts: a meter must never turn a
// malformed event into a refund.
func checkCounts(u bedrock.Usage, m *InvocationMetrics) error {
	n := [8]int{u.InputTokens, u.OutputTokens, u.CacheReadInputTokens, u.CacheWriteInputTokens}
	k := 4
	if m != nil {
		n[4], n[5], n[6], n[7] = m.InputTokenCount, m.OutputTokenCount, m.CacheReadInputTokenCount, m.CacheWriteInputTokenCount
		k = 8
	}
	for _, v := range n[:k] {
		if v < 0 {
			return fmt.Errorf("negative token count %d", v)
		}
	}
	return nil
}
