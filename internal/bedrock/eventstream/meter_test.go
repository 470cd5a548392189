package eventstream

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
)

type meterState struct {
	Usage      bedrock.Usage
	Done       bool
	Exception  string
	StopReason string
}

func stateOf(m *Meter) meterState {
	return meterState{Usage: m.Usage(), Done: m.Done(), Exception: m.Exception(), StopReason: m.StopReason()}
}

// Usage after each event of a realistic InvokeModel stream: input from
// message_start, output estimated from deltas, then message_delta's count,
// then the invocation metrics.
func TestMeterInvokeStream(t *testing.T) {
	in := bedrock.Usage{InputTokens: 1200, CacheReadInputTokens: 4000, CacheWriteInputTokens: 300}
	withOut := func(n int) bedrock.Usage { u := in; u.OutputTokens = n; return u }
	want := []meterState{
		{Usage: withOut(1)},  // message_start: output_tokens 1 is the floor
		{Usage: withOut(1)},  // content_block_start
		{Usage: withOut(6)},  // thinking 22 bytes -> ceil(22/4) = 6
		{Usage: withOut(6)},  // signature: not generated text
		{Usage: withOut(6)},  // content_block_stop
		{Usage: withOut(6)},  // ping
		{Usage: withOut(6)},  // content_block_start
		{Usage: withOut(11)}, // +19 text = 41 bytes -> 11
		{Usage: withOut(14)}, // +14 = 55 -> 14
		{Usage: withOut(14)},
		{Usage: withOut(14)},
		{Usage: withOut(18)}, // +17 tool input = 72 -> 18
		{Usage: withOut(18)},
		{Usage: withOut(57), StopReason: "tool_use"}, // message_delta reports 57
		{Usage: withOut(57), StopReason: "tool_use", Done: true}, // message_stop + metrics agree
	}
	var m Meter
	for i, msg := range invokeMessages() {
		if err := m.ObserveMessage(msg); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if diff := cmp.Diff(want[i], stateOf(&m)); diff != "" {
			t.Errorf("after event %d %s (-want +got):\n%s", i, invokeEvents[i], diff)
		}
	}
	metrics, ok := m.Metrics()
	if diff := cmp.Diff(InvocationMetrics{1200, 57, 2100, 400, 0, 0}, metrics); !ok || diff != "" {
		t.Errorf("Metrics() ok=%v (-want +got):\n%s", ok, diff)
	}
}

// Invocation metrics win over the model's own usage when they disagree,
// and message_delta's count wins over the estimate even when lower.
func TestMeterPrecedence(t *testing.T) {
	chunk := func(s string) Message { return ChunkMessage([]byte(s)) }
	tests := []struct {
		name   string
		stream []Message
		want   bedrock.Usage
	}{
		{"estimate only", []Message{
			chunk(`{"type":"message_start","message":{"usage":{"input_tokens":10,"output_tokens":1}}}`),
			chunk(`{"type":"content_block_delta","delta":{"type":"text_delta","text":"0123456789abcdefghij"}}`),
		}, bedrock.Usage{InputTokens: 10, OutputTokens: 5}},
		{"message_delta below the estimate", []Message{
			chunk(`{"type":"message_start","message":{"usage":{"input_tokens":10,"output_tokens":1}}}`),
			chunk(`{"type":"content_block_delta","delta":{"type":"text_delta","text":"0123456789abcdefghij"}}`),
			chunk(`{"type":"message_delta","usage":{"output_tokens":3}}`),
		}, bedrock.Usage{InputTokens: 10, OutputTokens: 3}},
		{"message_delta repeating input counts", []Message{
			chunk(`{"type":"message_start","message":{"usage":{"input_tokens":10,"cache_read_input_tokens":4,"output_tokens":1}}}`),
			chunk(`{"type":"message_delta","usage":{"input_tokens":12,"cache_creation_input_tokens":2,"output_tokens":3}}`),
		}, bedrock.Usage{InputTokens: 12, OutputTokens: 3, CacheReadInputTokens: 4, CacheWriteInputTokens: 2}},
		{"metrics over message_delta", []Message{
			chunk(`{"type":"message_start","message":{"usage":{"input_tokens":10,"cache_read_input_tokens":4,"output_tokens":1}}}`),
			chunk(`{"type":"message_delta","usage":{"output_tokens":3}}`),
			chunk(`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":11,"outputTokenCount":4,"invocationLatency":1,"firstByteLatency":1,"cacheReadInputTokenCount":5}}`),
		}, bedrock.Usage{InputTokens: 11, OutputTokens: 4, CacheReadInputTokens: 5}},
		{"nothing seen", nil, bedrock.Usage{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Meter
			for _, msg := range tt.stream {
				if err := m.ObserveMessage(msg); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tt.want, m.Usage()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestMeterConverseStream(t *testing.T) {
	want := []meterState{
		{},                                                               // messageStart
		{Usage: bedrock.Usage{OutputTokens: 3}},                          // reasoning 12 bytes
		{Usage: bedrock.Usage{OutputTokens: 3}},                          // signature
		{Usage: bedrock.Usage{OutputTokens: 3}},                          // stop
		{Usage: bedrock.Usage{OutputTokens: 8}},                          // +20 text = 32 -> 8
		{Usage: bedrock.Usage{OutputTokens: 8}},                          // stop
		{Usage: bedrock.Usage{OutputTokens: 8}},                          // tool start
		{Usage: bedrock.Usage{OutputTokens: 11}},                         // +12 tool input = 44 -> 11
		{Usage: bedrock.Usage{OutputTokens: 11}},                         // stop
		{Usage: bedrock.Usage{OutputTokens: 11}, StopReason: "tool_use"}, // messageStop: usage not final yet
		{Usage: bedrock.Usage{InputTokens: 900, OutputTokens: 31, CacheReadInputTokens: 50, CacheWriteInputTokens: 7}, StopReason: "tool_use", Done: true},
	}
	var m Meter
	for i, msg := range converseMessages() {
		if err := m.ObserveMessage(msg); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if diff := cmp.Diff(want[i], stateOf(&m)); diff != "" {
			t.Errorf("after event %d %s (-want +got):\n%s", i, converseEvents[i].typ, diff)
		}
	}
	if _, ok := m.Metrics(); ok {
		t.Error("Metrics() ok on a Converse stream, want false")
	}
}

// A stream cut by a mid-stream exception keeps what was generated.
func TestMeterException(t *testing.T) {
	var m Meter
	stream := append(invokeMessages()[:9], ExceptionMessage(bedrock.ThrottlingException, bedrock.MsgTooManyTokens))
	for _, msg := range stream {
		if err := m.ObserveMessage(msg); err != nil {
			t.Fatal(err)
		}
	}
	want := meterState{
		Usage:     bedrock.Usage{InputTokens: 1200, OutputTokens: 14, CacheReadInputTokens: 4000, CacheWriteInputTokens: 300},
		Exception: bedrock.ThrottlingException,
	}
	if diff := cmp.Diff(want, stateOf(&m)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	var e Meter
	if err := e.ObserveMessage(ErrorMessage("", "")); err != nil {
		t.Fatal(err)
	}
	if got, want := e.Exception(), bedrock.InternalServerException; got != want {
		t.Errorf("error frame without code: Exception() = %q, want %q", got, want)
	}
}

// A malformed payload is an error and leaves the Meter as it was.
func TestMeterRejectsMalformedPayloads(t *testing.T) {
	bad := []Message{
		EventMessage(EventTypeChunk, []byte(`{"bytes":"!"}`)),
		EventMessage(EventContentBlockDelta, []byte(`[`)),
		EventMessage(EventMetadata, []byte(`{"usage":{"inputTokens":"x"}}`)),
		EventMessage(EventMetadata, []byte(`{"usage":{"inputTokens":-1}}`)),
		EventMessage(EventMessageStop, []byte(`nope`)),
		{Payload: []byte(`no headers`)},
	}
	for i, msg := range bad {
		var m Meter
		_ = m.ObserveMessage(invokeMessages()[0])
		before := stateOf(&m)
		if err := m.ObserveMessage(msg); err == nil {
			t.Errorf("message %d: no error", i)
		}
		if diff := cmp.Diff(before, stateOf(&m)); diff != "" {
			t.Errorf("message %d changed the meter (-before +after):\n%s", i, diff)
		}
	}
	var m Meter
	if err := m.ObserveMessage(EventMessage("someFutureEvent", []byte(`garbage`))); err != nil {
		t.Errorf("unknown event type: %v, want it ignored", err)
	}
}

// TestMeterLastToolUseID: the id of the last tool_use block started, by
// both the SDK path (ObserveMessage) and the scanner path (ObserveFrame);
// the output policy remembers it when the answer was cut.
func TestMeterLastToolUseID(t *testing.T) {
	var slow Meter
	for i, msg := range invokeMessages() {
		if i == 10 && slow.LastToolUseID() != "" { // event 10 starts the tool_use block
			t.Errorf("a tool_use id before any tool_use block: %q", slow.LastToolUseID())
		}
		if err := slow.ObserveMessage(msg); err != nil {
			t.Fatal(err)
		}
	}
	var fast Meter
	var s Scanner
	_, _ = s.Write(encodeAll(t, append(invokeMessages(),
		ChunkMessage([]byte(`{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_02","name":"Write","input":{}}}`)),
		ChunkMessage([]byte(`{"type":"content_block_start","index":4,"content_block":{"type":"text","text":""}}`)))))
	for {
		f, ok, err := s.Next()
		if err != nil || !ok {
			break
		}
		if err := fast.ObserveFrame(&f); err != nil {
			t.Fatal(err)
		}
	}
	if slow.LastToolUseID() != "toolu_01" || fast.LastToolUseID() != "toolu_02" {
		t.Errorf("LastToolUseID: %q and %q, want toolu_01 and toolu_02", slow.LastToolUseID(), fast.LastToolUseID())
	}
}
