package eventstream

import (
	"encoding/base64"
	"fmt"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// chunkEvent is AnthropicEvent with the invocation metrics held by value,
// so that reading a chunk allocates nothing.
type chunkEvent struct {
	AnthropicEvent
	metrics    InvocationMetrics
	hasMetrics bool
	// toolUseID is AnthropicEvent.ToolUseID as bytes (in the decoded
	// chunk), so that the Meter copies it without allocating.
	toolUseID []byte
}

// event is the AnthropicEvent ParseChunk returns for the same payload.
func (c chunkEvent) event() AnthropicEvent {
	ev := c.AnthropicEvent
	if c.toolUseID != nil {
		ev.ToolUseID = string(c.toolUseID)
	}
	if c.hasMetrics {
		m := c.metrics
		ev.Metrics = &m
	}
	return ev
}

// parseChunkInto is ParseChunk for the meter's hot path: the same event and
// the same error (or lack of one) on every payload (FuzzChunkFast), but the
// base64 is decoded into *buf, which it grows and keeps, and the event is
// read in one pass that picks out only the members metering needs. It
// allocates only for rare shapes: a payload other than {"bytes":"..."} (and
// Bedrock's padded form), and a type or stop reason that is escaped or not
// one of the known names.
func parseChunkInto(payload []byte, buf *[]byte) (chunkEvent, error) {
	var data []byte
	if enc, ok := cutChunk(payload); ok {
		n := base64.StdEncoding.DecodedLen(len(enc))
		if cap(*buf) < n {
			*buf = make([]byte, n)
		}
		n, err := base64.StdEncoding.Decode((*buf)[:n], enc)
		if err != nil {
			return chunkEvent{}, fmt.Errorf("chunk payload: %w", err)
		}
		if n == 0 {
			return chunkEvent{}, errNoChunkBytes
		}
		data = (*buf)[:n]
	} else {
		var err error
		if data, err = chunkBytesJSON(payload); err != nil {
			return chunkEvent{}, err
		}
	}
	return readAnthropic(data)
}

// anthropicRead is what one pass over an Anthropic stream event finds, kept
// the way json.Unmarshal would keep it in anthropicJSON: set means a
// pointer field is non-nil, a string or int member already stored stays
// until another non-null value replaces it, and a struct reached through a
// pointer that is already set is decoded into again, not replaced.
type anthropicRead struct {
	typ           jsonString
	typSet        bool
	message       bool
	messageUsage  usageRead
	usage         usageRead
	delta         bool
	deltaLen      [3]int // text, thinking, partial_json
	stop          jsonString
	stopSet       bool
	metrics       bool
	metricsCounts [6]int
	block         bool // content_block (a non-null object) seen
	blockType     jsonString
	blockTypeSet  bool
	blockID       jsonString
	blockIDSet    bool
}

type usageRead struct {
	set    bool
	counts [4]int // input, output, cache read, cache creation
}

var (
	usageNames   = [4]string{"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"}
	deltaNames   = [3]string{"text", "thinking", "partial_json"}
	metricsNames = [6]string{"inputTokenCount", "outputTokenCount", "invocationLatency", "firstByteLatency", "cacheReadInputTokenCount", "cacheWriteInputTokenCount"}
)

// readAnthropic is ParseAnthropicEvent in one pass without allocating.
func readAnthropic(data []byte) (chunkEvent, error) {
	r := jsonReader{b: data}
	var a anthropicRead
	i := r.ws(0)
	if i >= len(data) || data[i] != '{' {
		// null decodes to nothing (no type); anything else is a type
		// error or a syntax error.
		return chunkEvent{}, errJSON
	}
	m, err := r.object(i, 0)
	if err != nil {
		return chunkEvent{}, err
	}
	for {
		key, ok, err := m.next()
		if err != nil {
			return chunkEvent{}, err
		}
		if !ok {
			break
		}
		switch {
		case key.is("type"):
			m.i, err = r.stringField(m.i, &a.typ, &a.typSet)
		case key.is("message"):
			m.i, err = r.message(m.i, m.depth, &a)
		case key.is("usage"):
			m.i, err = r.usage(m.i, m.depth, &a.usage)
		case key.is("delta"):
			m.i, err = r.delta(m.i, m.depth, &a)
		case key.is("amazon-bedrock-invocationMetrics"):
			m.i, err = r.metrics(m.i, m.depth, &a)
		case key.is("content_block"):
			m.i, err = r.contentBlock(m.i, m.depth, &a)
		default:
			m.i, err = r.skip(m.i, m.depth)
		}
		if err != nil {
			return chunkEvent{}, err
		}
	}
	if err := r.end(m.i); err != nil {
		return chunkEvent{}, err
	}
	return a.event()
}

func (r *jsonReader) message(i, depth int, a *anthropicRead) (int, error) {
	m, isNull, end, err := r.objectField(i, depth)
	if err != nil || isNull {
		a.message, a.messageUsage = false, usageRead{}
		return end, err
	}
	a.message = true
	for {
		key, ok, err := m.next()
		if err != nil || !ok {
			return m.i, err
		}
		if key.is("usage") {
			m.i, err = r.usage(m.i, m.depth, &a.messageUsage)
		} else {
			m.i, err = r.skip(m.i, m.depth)
		}
		if err != nil {
			return 0, err
		}
	}
}

// contentBlock reads content_block's type and id, as encoding/json decodes
// them into a pointer to a struct: null resets it, and a second
// content_block decodes into the first.
func (r *jsonReader) contentBlock(i, depth int, a *anthropicRead) (int, error) {
	m, isNull, end, err := r.objectField(i, depth)
	if err != nil || isNull {
		a.block, a.blockTypeSet, a.blockIDSet = false, false, false
		return end, err
	}
	if !a.block {
		a.block, a.blockTypeSet, a.blockIDSet = true, false, false
	}
	for {
		key, ok, err := m.next()
		if err != nil || !ok {
			return m.i, err
		}
		switch {
		case key.is("type"):
			m.i, err = r.stringField(m.i, &a.blockType, &a.blockTypeSet)
		case key.is("id"):
			m.i, err = r.stringField(m.i, &a.blockID, &a.blockIDSet)
		default:
			m.i, err = r.skip(m.i, m.depth)
		}
		if err != nil {
			return 0, err
		}
	}
}

func (r *jsonReader) usage(i, depth int, u *usageRead) (int, error) {
	m, isNull, end, err := r.objectField(i, depth)
	if err != nil || isNull {
		*u = usageRead{}
		return end, err
	}
	u.set = true
	for {
		key, ok, err := m.next()
		if err != nil || !ok {
			return m.i, err
		}
		m.i, err = r.intMembers(m, key, usageNames[:], u.counts[:])
		if err != nil {
			return 0, err
		}
	}
}

// intMembers reads the value of key into the count it names, or skips it.
func (r *jsonReader) intMembers(m members, key jsonString, names []string, counts []int) (int, error) {
	for k, name := range names {
		if key.is(name) {
			return r.intField(m.i, &counts[k])
		}
	}
	return r.skip(m.i, m.depth)
}

func (r *jsonReader) delta(i, depth int, a *anthropicRead) (int, error) {
	m, isNull, end, err := r.objectField(i, depth)
	if err != nil || isNull {
		a.delta, a.deltaLen, a.stop, a.stopSet = false, [3]int{}, jsonString{}, false
		return end, err
	}
	if !a.delta {
		a.delta, a.deltaLen, a.stop, a.stopSet = true, [3]int{}, jsonString{}, false
	}
	for {
		key, ok, err := m.next()
		if err != nil || !ok {
			return m.i, err
		}
		switch {
		case key.is("stop_reason"):
			m.i, err = r.stringField(m.i, &a.stop, &a.stopSet)
		default:
			m.i, err = r.deltaText(m, key, a)
		}
		if err != nil {
			return 0, err
		}
	}
}

func (r *jsonReader) deltaText(m members, key jsonString, a *anthropicRead) (int, error) {
	for k, name := range deltaNames {
		if key.is(name) {
			var s jsonString
			var set bool
			end, err := r.stringField(m.i, &s, &set)
			if set {
				a.deltaLen[k] = s.decodedLen()
			}
			return end, err
		}
	}
	return r.skip(m.i, m.depth)
}

func (r *jsonReader) metrics(i, depth int, a *anthropicRead) (int, error) {
	m, isNull, end, err := r.objectField(i, depth)
	if err != nil || isNull {
		a.metrics, a.metricsCounts = false, [6]int{}
		return end, err
	}
	a.metrics = true
	for {
		key, ok, err := m.next()
		if err != nil || !ok {
			return m.i, err
		}
		if m.i, err = r.intMembers(m, key, metricsNames[:], a.metricsCounts[:]); err != nil {
			return 0, err
		}
	}
}

// event builds what ParseAnthropicEvent builds from the decoded struct.
func (a *anthropicRead) event() (chunkEvent, error) {
	var typ string
	if a.typSet {
		typ = internName(a.typ.decoded(), anthropicTypes[:])
	}
	if typ == "" {
		return chunkEvent{}, fmt.Errorf("anthropic stream event: no type")
	}
	c := chunkEvent{AnthropicEvent: AnthropicEvent{Type: typ}}
	if a.metrics {
		mc := a.metricsCounts
		c.metrics = InvocationMetrics{InputTokenCount: mc[0], OutputTokenCount: mc[1], InvocationLatency: mc[2],
			FirstByteLatency: mc[3], CacheReadInputTokenCount: mc[4], CacheWriteInputTokenCount: mc[5]}
		c.hasMetrics = true
	}
	u := a.usage
	if typ == AnthropicMessageStart && a.message {
		u = a.messageUsage
	}
	if u.set {
		c.HasUsage = true
		c.Usage = bedrock.Usage{InputTokens: u.counts[0], OutputTokens: u.counts[1],
			CacheReadInputTokens: u.counts[2], CacheWriteInputTokens: u.counts[3]}
	}
	var m *InvocationMetrics
	if c.hasMetrics {
		m = &c.metrics
	}
	if err := checkCounts(c.Usage, m); err != nil {
		return chunkEvent{}, fmt.Errorf("anthropic stream event %s: %w", typ, err)
	}
	if typ == AnthropicContentBlockStart && a.block && a.blockTypeSet && a.blockIDSet &&
		string(a.blockType.decoded()) == "tool_use" {
		c.toolUseID = a.blockID.decoded()
		if c.toolUseID == nil {
			c.toolUseID = []byte{} // set, and empty
		}
	}
	if a.delta {
		c.DeltaBytes = a.deltaLen[0] + a.deltaLen[1] + a.deltaLen[2]
		if a.stopSet {
			c.StopReason = internName(a.stop.decoded(), stopReasons[:])
		}
	}
	return c, nil
}

var (
	anthropicTypes = [...]string{AnthropicContentBlockDelta, AnthropicMessageStart, AnthropicContentBlockStart,
		AnthropicContentBlockStop, AnthropicMessageDelta, AnthropicMessageStop, AnthropicPing, AnthropicError}
	stopReasons = [...]string{"end_turn", "max_tokens", "tool_use", "stop_sequence", "pause_turn", "refusal",
		"model_context_window_exceeded"}
)

// internName returns b as a string, without allocating when it is one of
// the known names.
func internName(b []byte, known []string) string {
	for _, s := range known {
		if string(b) == s {
			return s
		}
	}
	return string(b)
}
