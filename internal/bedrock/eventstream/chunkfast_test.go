package eventstream

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Events that probe how encoding/json decodes into anthropicJSON: name
// folding, escapes, duplicates, nulls, wrong types, integers, odd strings.
var trickyEvents = []string{
	`{"TYPE":"message_delta","Usage":{"OUTPUT_TOKENS":5},"DELTA":{"Stop_Reason":"end_turn"}}`,
	`{"type":"content_block_delta","delta":{"text":"a\u00e9\ud83d\ude00\n\"x"}}`,
	`{"type":"content_block_delta","delta":{"text":"\ud83d \udc00 \udc00\ud83d"}}`,
	"{\"type\":\"content_block_delta\",\"delta\":{\"thinking\":\"bad \xff\xfe utf8 \xe2\x82\"}}",
	"{\"typ\xe2\x84\xaa\":\"x\",\"type\":\"ping\",\"thin\xe2\x84\xaaing\":1}",
	"{\"type\":\"content_block_delta\",\"delta\":{\"thin\xe2\x84\xaaing\":\"kelvin\",\"partial_json\":\"\xc5\xbf\"}}",
	`{"t\u0079pe":"message_stop","amazon-bedrock-invocationmetrics":{"INPUTTOKENCOUNT":3}}`,
	`{"type":"message_start","message":{"usage":{"input_tokens":1}},"message":{"id":"x"},"message":{"usage":{"output_tokens":2}}}`,
	`{"type":"message_start","message":{"usage":{"input_tokens":1}},"message":null,"message":{"usage":{"output_tokens":2}}}`,
	`{"type":"message_start","usage":{"input_tokens":9},"message":{}}`,
	`{"type":"message_delta","usage":{"output_tokens":1},"usage":null}`,
	`{"type":"message_delta","delta":{"text":"abc"},"delta":{"stop_reason":"max_tokens"},"delta":{"text":null}}`,
	`{"type":"message_delta","delta":{"text":"abc"},"delta":null,"delta":{}}`,
	`{"type":null,"type":"ping","type":null}`,
	`{"type":""}`, `{"type":5}`, `{"type":"ping","usage":5}`, `{"type":"ping","usage":[]}`, `{"type":"ping","delta":"x"}`,
	`{"type":"ping","usage":{"input_tokens":"5"}}`, `{"type":"ping","usage":{"input_tokens":1.0}}`,
	`{"type":"ping","usage":{"input_tokens":1e2}}`, `{"type":"ping","usage":{"input_tokens":-0}}`,
	`{"type":"ping","usage":{"input_tokens":-1}}`, `{"type":"ping","usage":{"input_tokens":true}}`,
	`{"type":"ping","usage":{"input_tokens":9223372036854775807}}`, `{"type":"ping","usage":{"input_tokens":9223372036854775808}}`,
	`{"type":"ping","usage":{"input_tokens":-9223372036854775808}}`, `{"type":"ping","usage":{"input_tokens":null}}`,
	`{"type":"ping","amazon-bedrock-invocationMetrics":{"inputTokenCount":-9223372036854775809}}`,
	`{"type":"ping","x":[1,{"a":[true,false,null,"s",-0.5e+3]}],"y":{}}`,
	`{"type":"ping"} `, ` {"type":"ping"}x`, `{"type":"ping",}`, `{"type":"ping"`, `{"type" "ping"}`, `{"type":"ping\x01"}`,
	`{"type":"ping","z":01}`, `{"type":"ping","z":1.}`, `{"type":"ping","z":"\x"}`, `{"type":"ping","z":"\u12g4"}`,
	`null`, `[]`, `"ping"`, `5`, ``, `{}`, `{"type":"\u0070ing"}`, `{"type":"future_event"}`,
	`{"type":"message_delta","delta":{"stop_reason":"brand_new"}}`, `{"type":"message_delta","delta":{"stop_reason":"end\u005fturn"}}`,
	`{"type":"message_delta","delta":{"stop_reason":5}}`,
	// content_block: a tool_use's id, as encoding/json decodes it.
	`{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_bdrk_01","name":"Write","input":{}}}`,
	`{"type":"content_block_start","content_block":{"id":"toolu_\u0041","TYPE":"tool_\u0075se"}}`,
	`{"type":"content_block_start","content_block":{"type":"tool_use","id":"a"},"content_block":{"id":"b"}}`,
	`{"type":"content_block_start","content_block":{"type":"tool_use","id":"a"},"content_block":null,"content_block":{"id":"b"}}`,
	`{"type":"content_block_start","content_block":{"type":"tool_use","id":""}}`,
	`{"type":"content_block_start","content_block":{"type":"tool_use","id":null}}`,
	`{"type":"content_block_start","content_block":{"type":"tool_use","id":5}}`,
	`{"type":"content_block_start","content_block":{"type":"text","id":"x","text":""}}`,
	`{"type":"content_block_start","content_block":"tool_use"}`,
	`{"type":"content_block_delta","content_block":{"type":"tool_use","id":"x"}}`,
}

func TestChunkFastTricky(t *testing.T) {
	for _, e := range append(trickyEvents, invokeEvents...) {
		checkChunkFast(t, []byte(e))
	}
}

// TestChunkFastDepth: encoding/json's nesting limit, 10,000, holds in
// members the reader picks out and in those it skips.
func TestChunkFastDepth(t *testing.T) {
	for _, depth := range []int{9998, 9999, 10000} {
		for _, at := range []string{`"x"`, `"message"`, `"delta"`} {
			// depth 1 is the event object; the member value adds depth.
			open := strings.Repeat(`{"a":`, depth-1)
			body := `{"type":"ping",` + at + `:` + open + `1` + strings.Repeat(`}`, depth-1) + `}`
			checkChunkFast(t, []byte(body))
			arr := `{"type":"ping",` + at + `:{"a":` + strings.Repeat(`[`, depth-1) + strings.Repeat(`]`, depth-1) + `}}`
			checkChunkFast(t, []byte(arr))
		}
	}
}

// checkChunkFast holds the one-pass readers to their encoding/json
// counterparts on one input.
func checkChunkFast(t *testing.T, b []byte) {
	t.Helper()
	want, wantErr := ParseAnthropicEvent(b)
	got, gotErr := readAnthropic(b)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("%.200q: encoding/json error %v, one-pass error %v", b, wantErr, gotErr)
	}
	if diff := cmp.Diff(want, got.event()); wantErr == nil && diff != "" {
		t.Fatalf("%.200q (-encoding/json +one-pass):\n%s", b, diff)
	}
	var buf []byte
	for _, payload := range [][]byte{b, ChunkMessage(b).Payload} {
		want, wantErr := ParseChunk(payload)
		got, gotErr := parseChunkInto(payload, &buf)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("chunk %.200q: ParseChunk error %v, parseChunkInto error %v", payload, wantErr, gotErr)
		}
		if diff := cmp.Diff(want, got.event()); wantErr == nil && diff != "" {
			t.Fatalf("chunk %.200q (-ParseChunk +parseChunkInto):\n%s", payload, diff)
		}
	}
}

// FuzzChunkFast: the one-pass chunk reader agrees with encoding/json on
// every input, as the event itself and wrapped in a chunk.
func FuzzChunkFast(f *testing.F) {
	for _, e := range append(trickyEvents, invokeEvents...) {
		f.Add([]byte(e))
	}
	f.Add([]byte(`{"bytes":"e30=","p":"abc"}`))
	f.Add([]byte(`{"bytes":"e3\n0="}`))
	f.Fuzz(func(t *testing.T, b []byte) { checkChunkFast(t, b) })
}
