package eventstream

import (
	"bytes"
	"testing"
)

// Anthropic stream events of a realistic Claude response on Bedrock:
// thinking, text, a tool call, then usage and invocation metrics.
var invokeEvents = []string{
	`{"type":"message_start","message":{"id":"msg_bdrk_01","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1200,"cache_creation_input_tokens":300,"cache_read_input_tokens":4000,"output_tokens":1}}}`,
	`{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants a list."}}`, // 22 bytes
	`{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCkYIBxgCKkAxSignature"}}`,
	`{"type":"content_block_stop","index":0}`,
	`{"type":"ping"}`,
	`{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`,
	`{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Here are the files "}}`, // 19 bytes
	`{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"in the folder."}}`,      // 14 bytes
	`{"type":"content_block_stop","index":1}`,
	`{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01","name":"Bash","input":{}}}`,
	`{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"command\": \"ls\"}"}}`, // 17 bytes
	`{"type":"content_block_stop","index":2}`,
	`{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":57}}`,
	`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":1200,"outputTokenCount":57,"invocationLatency":2100,"firstByteLatency":400}}`,
}

// ConverseStream events of the same kind of response.
var converseEvents = []struct{ typ, payload string }{
	{EventMessageStart, `{"role":"assistant","p":"abcd"}`},
	{EventContentBlockDelta, `{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"Think first."}},"p":"ab"}`}, // 12 bytes
	{EventContentBlockDelta, `{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"sig"}}}`},
	{EventContentBlockStop, `{"contentBlockIndex":0}`},
	{EventContentBlockDelta, `{"contentBlockIndex":1,"delta":{"text":"Hello there, friend."}}`}, // 20 bytes
	{EventContentBlockStop, `{"contentBlockIndex":1}`},
	{EventContentBlockStart, `{"contentBlockIndex":2,"start":{"toolUse":{"toolUseId":"t1","name":"Bash"}}}`},
	{EventContentBlockDelta, `{"contentBlockIndex":2,"delta":{"toolUse":{"input":"{\"cmd\":\"ls\"}"}}}`}, // 12 bytes
	{EventContentBlockStop, `{"contentBlockIndex":2}`},
	{EventMessageStop, `{"stopReason":"tool_use"}`},
	{EventMetadata, `{"usage":{"inputTokens":900,"outputTokens":31,"totalTokens":931,"cacheReadInputTokens":50,"cacheWriteInputTokens":7},"metrics":{"latencyMs":812}}`},
}

func invokeMessages() []Message {
	ms := make([]Message, len(invokeEvents))
	for i, e := range invokeEvents {
		ms[i] = ChunkMessage([]byte(e))
	}
	return ms
}

func converseMessages() []Message {
	ms := make([]Message, len(converseEvents))
	for i, e := range converseEvents {
		ms[i] = EventMessage(e.typ, []byte(e.payload))
	}
	return ms
}

// mixedMessages covers every kind of frame, including an empty payload.
func mixedMessages() []Message {
	ms := invokeMessages()[:3]
	ms = append(ms, converseMessages()[:2]...)
	ms = append(ms,
		EventMessage("empty", nil),
		ErrorMessage("InternalFailure", "upstream went away"),
		ExceptionMessage("ThrottlingException", "Too many tokens, please wait before trying again."),
	)
	return ms
}

func encodeAll(tb testing.TB, ms []Message) []byte {
	tb.Helper()
	var buf bytes.Buffer
	enc := NewEncoder()
	for _, m := range ms {
		if err := enc.Encode(&buf, m); err != nil {
			tb.Fatalf("Encode: %v", err)
		}
	}
	return buf.Bytes()
}

// decodeAll reads b with the Decoder until it fails and returns the error
// that ended it (io.EOF at a clean end).
func decodeAll(b []byte) ([]Message, error) {
	d := NewDecoder(bytes.NewReader(b))
	var ms []Message
	for {
		m, err := d.Next()
		if err != nil {
			return ms, err
		}
		ms = append(ms, m)
	}
}
