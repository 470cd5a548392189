package emulator

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/bedrock/eventstream"
)

// events renders the frames of a streamed answer in one operation's
// dialect: Anthropic events in chunks (InvokeModelWithResponseStream) or
// ConverseStream events. Each method appends JSON to b and returns the frame.
type events interface {
	messageStart(b []byte, c call, a answer, u bedrock.Usage) eventstream.Message
	blockStart(b []byte, i int, blk block) (eventstream.Message, bool)
	delta(b []byte, i int, kind blockKind, chunk []byte) eventstream.Message
	signature(b []byte, i int) eventstream.Message
	blockStop(b []byte, i int) eventstream.Message
	messageStop(b []byte, a answer, u bedrock.Usage, latency, firstByte time.Duration) []eventstream.Message
}

// streamer writes frames, flushing each one.
type streamer struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	enc *eventstream.Encoder
	err error
}

func (st *streamer) send(m eventstream.Message) bool {
	if st.err == nil {
		st.err = st.enc.Encode(st.w, m)
	}
	if st.err == nil {
		st.err = st.rc.Flush()
	}
	return st.err == nil
}

// serveStream streams answer a: the operation's start event, then each
// block of a in deltas of chunk_tokens tokens at the configured pace, and the stop events with usage and metrics. It
// adjusts res after each delta and keeps *usage current, so that whatever
// ends the stream (a mid-stream throttle, a client that leaves) settles for
// what was generated; a stream that ends normally settles before its final
// frames.
func (s *Server) serveStream(ctx context.Context, w http.ResponseWriter, c call, a answer, res *Reservation, usage *bedrock.Usage, throttle bool) {
	h := w.Header()
	h.Set("Content-Type", bedrock.ContentTypeEventStream)
	h.Set("X-Amzn-Bedrock-Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	st := &streamer{w: w, rc: http.NewResponseController(w), enc: eventstream.NewEncoder()}
	_ = st.rc.Flush() // the client sees the 200 while the first token is pending
	var ev events = invokeEvents{}
	if c.op == bedrock.OpConverseStream {
		ev = converseEvents{}
	}

	if sleep(ctx, s.pace(0, true)) != nil {
		return
	}
	firstByte := time.Since(c.start)
	buf := make([]byte, 0, 512)
	if !st.send(ev.messageStart(buf[:0], c, a, *usage)) {
		return
	}
	g := s.applied.Generation
	after := s.applied.Faults.MidStreamThrottleAfter
	throttleNow := func() bool {
		if throttle && usage.OutputTokens >= after {
			res.Settle(s.now(), *usage)
			st.send(eventstream.ExceptionMessage(bedrock.ThrottlingException, bedrock.MsgTooManyTokens))
			return true
		}
		return false
	}
	var chunk []byte
	for i, blk := range a.blocks {
		if m, ok := ev.blockStart(buf[:0], i, blk); ok && !st.send(m) {
			return
		}
		content := a.content(i)
		for done := 0; done < blk.tokens; {
			k := min(g.ChunkTokens, blk.tokens-done)
			if throttleNow() || sleep(ctx, s.pace(k, false)) != nil {
				return
			}
			chunk = content.appendTokens(chunk[:0], k)
			if !st.send(ev.delta(buf[:0], i, blk.kind, chunk)) {
				return
			}
			done += k
			usage.OutputTokens += k
			res.Adjust(s.now(), *usage)
		}
		if blk.kind == blockThinking && !st.send(ev.signature(buf[:0], i)) {
			return
		}
		if !st.send(ev.blockStop(buf[:0], i)) {
			return
		}
	}
	if throttleNow() {
		return
	}
	// Settle before the last frames, so that a client's next call already
	// sees the reservation given back.
	res.Settle(s.now(), *usage)
	for _, m := range ev.messageStop(buf[:0], a, *usage, time.Since(c.start), firstByte) {
		if !st.send(m) {
			return
		}
	}
}

// invokeEvents is InvokeModelWithResponseStream: Anthropic stream events,
// each in a chunk.
type invokeEvents struct{}

func (invokeEvents) messageStart(b []byte, c call, a answer, u bedrock.Usage) eventstream.Message {
	b = append(b, `{"type":"message_start","message":{"id":"`...)
	b = appendID(b, "msg_bdrk_", a.seed)
	b = append(b, `","type":"message","role":"assistant","model":"`...)
	b = appendJSONText(b, modelName(c.model))
	b = append(b, `","content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	b = appendAnthropicUsage(b, u)
	b = append(b, `}}`...)
	return eventstream.ChunkMessage(b)
}

func (invokeEvents) blockStart(b []byte, i int, blk block) (eventstream.Message, bool) {
	return eventstream.ChunkMessage(appendBlockStart(b, i, blk)), true
}

func (invokeEvents) delta(b []byte, i int, kind blockKind, chunk []byte) eventstream.Message {
	return eventstream.ChunkMessage(appendBlockDelta(b, i, kind, chunk))
}

// appendBlockStart appends an Anthropic content_block_start event.
func appendBlockStart(b []byte, i int, blk block) []byte {
	b = append(b, `{"type":"content_block_start","index":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	switch blk.kind {
	case blockThinking:
		b = append(b, `,"content_block":{"type":"thinking","thinking":"","signature":""}}`...)
	case blockText:
		b = append(b, `,"content_block":{"type":"text","text":""}}`...)
	case blockToolUse:
		b = append(b, `,"content_block":{"type":"tool_use","id":"`...)
		b = append(b, blk.tool.id...)
		b = append(b, `","name":"`...)
		b = appendJSONText(b, blk.tool.name)
		b = append(b, `","input":{}}}`...)
	}
	return b
}

// appendBlockDelta appends an Anthropic content_block_delta event carrying
// chunk: words of thinking or text, or a piece of a tool call's input JSON.
func appendBlockDelta(b []byte, i int, kind blockKind, chunk []byte) []byte {
	b = append(b, `{"type":"content_block_delta","index":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	switch kind {
	case blockThinking:
		b = append(b, `,"delta":{"type":"thinking_delta","thinking":"`...)
		b = append(b, chunk...) // words need no escaping
	case blockText:
		b = append(b, `,"delta":{"type":"text_delta","text":"`...)
		b = append(b, chunk...)
	case blockToolUse:
		b = append(b, `,"delta":{"type":"input_json_delta","partial_json":"`...)
		b = appendJSONText(b, chunk)
	}
	return append(b, `"}}`...)
}

func (invokeEvents) signature(b []byte, i int) eventstream.Message {
	b = append(b, `{"type":"content_block_delta","index":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `,"delta":{"type":"signature_delta","signature":"`...)
	b = append(b, thinkingSignature...)
	b = append(b, `"}}`...)
	return eventstream.ChunkMessage(b)
}

func (invokeEvents) blockStop(b []byte, i int) eventstream.Message {
	b = append(b, `{"type":"content_block_stop","index":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, '}')
	return eventstream.ChunkMessage(b)
}

func (invokeEvents) messageStop(b []byte, a answer, u bedrock.Usage, latency, firstByte time.Duration) []eventstream.Message {
	b = append(b, `{"type":"message_delta","delta":{"stop_reason":"`...)
	b = append(b, a.stop...)
	b = append(b, `","stop_sequence":null},"usage":{"output_tokens":`...)
	b = strconv.AppendInt(b, int64(u.OutputTokens), 10)
	b = append(b, `}}`...)
	delta := eventstream.ChunkMessage(b)

	b = append(b[:0], `{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":`...)
	b = strconv.AppendInt(b, int64(u.InputTokens), 10)
	b = append(b, `,"outputTokenCount":`...)
	b = strconv.AppendInt(b, int64(u.OutputTokens), 10)
	b = append(b, `,"invocationLatency":`...)
	b = strconv.AppendInt(b, latency.Milliseconds(), 10)
	b = append(b, `,"firstByteLatency":`...)
	b = strconv.AppendInt(b, firstByte.Milliseconds(), 10)
	b = append(b, `}}`...)
	return []eventstream.Message{delta, eventstream.ChunkMessage(b)}
}

// converseEvents is ConverseStream. Bedrock sends no contentBlockStart for
// text and reasoning blocks, only for tool use.
type converseEvents struct{}

func (converseEvents) messageStart(b []byte, _ call, _ answer, _ bedrock.Usage) eventstream.Message {
	return eventstream.EventMessage(eventstream.EventMessageStart, clone(append(b, `{"role":"assistant"}`...)))
}

// blockStart is sent for tool calls only.
func (converseEvents) blockStart(b []byte, i int, blk block) (eventstream.Message, bool) {
	if blk.kind != blockToolUse {
		return eventstream.Message{}, false
	}
	b = append(b, `{"contentBlockIndex":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `,"start":{"toolUse":{"toolUseId":"`...)
	b = append(b, blk.tool.id...)
	b = append(b, `","name":"`...)
	b = appendJSONText(b, blk.tool.name)
	b = append(b, `"}}}`...)
	return eventstream.EventMessage(eventstream.EventContentBlockStart, clone(b)), true
}

func (converseEvents) delta(b []byte, i int, kind blockKind, chunk []byte) eventstream.Message {
	b = append(b, `{"contentBlockIndex":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	switch kind {
	case blockThinking:
		b = append(b, `,"delta":{"reasoningContent":{"text":"`...)
		b = append(b, chunk...)
		b = append(b, `"}}}`...)
	case blockText:
		b = append(b, `,"delta":{"text":"`...)
		b = append(b, chunk...)
		b = append(b, `"}}`...)
	case blockToolUse:
		b = append(b, `,"delta":{"toolUse":{"input":"`...)
		b = appendJSONText(b, chunk)
		b = append(b, `"}}}`...)
	}
	return eventstream.EventMessage(eventstream.EventContentBlockDelta, clone(b))
}

func (converseEvents) signature(b []byte, i int) eventstream.Message {
	b = append(b, `{"contentBlockIndex":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `,"delta":{"reasoningContent":{"signature":"`...)
	b = append(b, thinkingSignature...)
	b = append(b, `"}}}`...)
	return eventstream.EventMessage(eventstream.EventContentBlockDelta, clone(b))
}

func (converseEvents) blockStop(b []byte, i int) eventstream.Message {
	b = append(b, `{"contentBlockIndex":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, '}')
	return eventstream.EventMessage(eventstream.EventContentBlockStop, clone(b))
}

func (converseEvents) messageStop(b []byte, a answer, u bedrock.Usage, latency, _ time.Duration) []eventstream.Message {
	b = append(b, `{"stopReason":"`...)
	b = append(b, a.stop...)
	b = append(b, `"}`...)
	stop := eventstream.EventMessage(eventstream.EventMessageStop, clone(b))

	b = append(b[:0], `{"usage":`...)
	b = appendConverseUsage(b, u)
	b = append(b, `,"metrics":{"latencyMs":`...)
	b = strconv.AppendInt(b, latency.Milliseconds(), 10)
	b = append(b, `}}`...)
	return []eventstream.Message{stop, eventstream.EventMessage(eventstream.EventMetadata, clone(b))}
}

// clone copies a payload out of the shared buffer. (ChunkMessage copies by
// itself, as it base64-encodes.)
func clone(b []byte) []byte { return append([]byte(nil), b...) }
