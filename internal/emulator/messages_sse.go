package emulator

import (
	"context"
	"net/http"
	"strconv"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// Anthropic server-sent events, as the Anthropic API streams a message:
//
//	event: message_start        the message with no content and the input usage
//	event: ping
//	event: content_block_start  per block: thinking, text or tool_use
//	event: content_block_delta  thinking_delta, text_delta or input_json_delta; a
//	                            thinking block ends with a signature_delta
//	event: content_block_stop
//	event: message_delta        stop_reason, and the usage so far (cumulative)
//	event: message_stop
//
// An error after the 200 is `event: error` with an Anthropic error object,
// and the stream ends there.

// sseWriter writes events, flushing each one.
type sseWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
	err error
}

// event writes one event; data is a JSON object.
func (sw *sseWriter) event(name string, data []byte) bool {
	if sw.err != nil {
		return false
	}
	sw.buf = append(sw.buf[:0], "event: "...)
	sw.buf = append(sw.buf, name...)
	sw.buf = append(sw.buf, "\ndata: "...)
	sw.buf = append(sw.buf, data...)
	sw.buf = append(sw.buf, "\n\n"...)
	if _, sw.err = sw.w.Write(sw.buf); sw.err == nil {
		sw.err = sw.rc.Flush()
	}
	return sw.err == nil
}

// serveSSE streams answer a as Anthropic events, at the configured pace, in
// deltas of chunk_tokens tokens. It counts the output against m after each
// delta and keeps *usage current, so that whatever ends the stream (a
// mid-stream throttle, a client that leaves) settles for what was
// generated; a stream that ends normally settles before its last events.
func (s *Server) serveSSE(ctx context.Context, w http.ResponseWriter, model string, a answer, m meter, usage *bedrock.Usage, throttle bool) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w)}
	_ = sw.rc.Flush() // the client sees the 200 while the first token is pending

	if sleep(ctx, s.pace(0, true)) != nil {
		return
	}
	b := make([]byte, 0, 512)
	b = append(b, `{"type":"message_start","message":{"id":"`...)
	b = appendID(b, "msg_bdrk_", a.seed)
	b = append(b, `","type":"message","role":"assistant","model":"`...)
	b = appendJSONText(b, model)
	b = append(b, `","content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	b = appendAnthropicUsage(b, *usage)
	b = append(b, `}}`...)
	if !sw.event("message_start", b) || !sw.event("ping", []byte(`{"type":"ping"}`)) {
		return
	}

	g := s.applied.Generation
	after := s.applied.Faults.MidStreamThrottleAfter
	throttleNow := func() bool {
		if throttle && usage.OutputTokens >= after {
			m.end(s.now(), *usage)
			sw.event("error", appendAnthropicError(b[:0], anthropicErrorType(http.StatusTooManyRequests), bedrock.MsgTooManyTokens))
			return true
		}
		return false
	}
	var chunk []byte
	for i, blk := range a.blocks {
		if !sw.event("content_block_start", appendBlockStart(b[:0], i, blk)) {
			return
		}
		content := a.content(i)
		for done := 0; done < blk.tokens; {
			k := min(g.ChunkTokens, blk.tokens-done)
			if throttleNow() || sleep(ctx, s.pace(k, false)) != nil {
				return
			}
			chunk = content.appendTokens(chunk[:0], k)
			if !sw.event("content_block_delta", appendBlockDelta(b[:0], i, blk.kind, chunk)) {
				return
			}
			done += k
			usage.OutputTokens += k
			m.Adjust(s.now(), *usage)
		}
		if blk.kind == blockThinking {
			b = append(b[:0], `{"type":"content_block_delta","index":`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, `,"delta":{"type":"signature_delta","signature":"`...)
			b = append(b, thinkingSignature...)
			if !sw.event("content_block_delta", append(b, `"}}`...)) {
				return
			}
		}
		b = append(b[:0], `{"type":"content_block_stop","index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		if !sw.event("content_block_stop", append(b, '}')) {
			return
		}
	}
	if throttleNow() {
		return
	}
	m.end(s.now(), *usage)
	b = append(b[:0], `{"type":"message_delta","delta":{"stop_reason":"`...)
	b = append(b, a.stop...)
	b = append(b, `","stop_sequence":null},"usage":`...)
	b = appendAnthropicUsage(b, *usage)
	b = append(b, '}')
	if sw.event("message_delta", b) {
		sw.event("message_stop", []byte(`{"type":"message_stop"}`))
	}
}
