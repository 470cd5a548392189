package eventstream

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
)

func TestParseChunk(t *testing.T) {
	tests := []struct {
		name  string
		event string
		want  AnthropicEvent
	}{
		{"message_start", invokeEvents[0], AnthropicEvent{
			Type: "message_start", HasUsage: true,
			Usage: bedrock.Usage{InputTokens: 1200, OutputTokens: 1, CacheReadInputTokens: 4000, CacheWriteInputTokens: 300},
		}},
		{"thinking delta", invokeEvents[2], AnthropicEvent{Type: "content_block_delta", DeltaBytes: 22}},
		{"signature delta is not output", invokeEvents[3], AnthropicEvent{Type: "content_block_delta"}},
		{"text delta", invokeEvents[7], AnthropicEvent{Type: "content_block_delta", DeltaBytes: 19}},
		{"tool input delta", invokeEvents[11], AnthropicEvent{Type: "content_block_delta", DeltaBytes: 17}},
		{"text delta with escapes counts decoded bytes", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\u00e9\n"}}`,
			AnthropicEvent{Type: "content_block_delta", DeltaBytes: 3}},
		{"message_delta", invokeEvents[13], AnthropicEvent{
			Type: "message_delta", HasUsage: true, Usage: bedrock.Usage{OutputTokens: 57}, StopReason: "tool_use",
		}},
		{"message_stop with metrics", invokeEvents[14], AnthropicEvent{
			Type:    "message_stop",
			Metrics: &InvocationMetrics{InputTokenCount: 1200, OutputTokenCount: 57, InvocationLatency: 2100, FirstByteLatency: 400},
		}},
		{"metrics with cache counts", `{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":5,"outputTokenCount":6,"invocationLatency":7,"firstByteLatency":8,"cacheReadInputTokenCount":9,"cacheWriteInputTokenCount":10}}`,
			AnthropicEvent{Type: "message_stop", Metrics: &InvocationMetrics{5, 6, 7, 8, 9, 10}}},
		{"ping", invokeEvents[5], AnthropicEvent{Type: "ping"}},
		{"message_start without usage", `{"type":"message_start","message":{"id":"x"}}`, AnthropicEvent{Type: "message_start"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChunk(ChunkMessage([]byte(tt.event)).Payload)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Real Bedrock pads chunk payloads with a "p" field; it must be ignored.
func TestParseChunkIgnoresPadding(t *testing.T) {
	got, err := ParseChunk([]byte(`{"bytes":"eyJ0eXBlIjoicGluZyJ9","p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"}`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(AnthropicEvent{Type: "ping"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseChunkErrors(t *testing.T) {
	tests := []struct{ name, payload string }{
		{"not JSON", `bytes`},
		{"no bytes", `{"p":"x"}`},
		{"bad base64", `{"bytes":"!!!"}`},
		{"inner not JSON", `{"bytes":"bm90IGpzb24="}`}, // "not json"
		{"inner without type", `{"bytes":"e30="}`},     // "{}"
		{"negative output", string(ChunkMessage([]byte(`{"type":"message_delta","usage":{"output_tokens":-3}}`)).Payload)},
		{"negative metrics", string(ChunkMessage([]byte(`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":-1}}`)).Payload)},
		{"usage of wrong type", string(ChunkMessage([]byte(`{"type":"message_delta","usage":{"output_tokens":"many"}}`)).Payload)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := ParseChunk([]byte(tt.payload)); err == nil {
				t.Errorf("ParseChunk = %+v, want an error", got)
			}
		})
	}
}

func TestParseConverseMetadata(t *testing.T) {
	got, err := ParseConverseMetadata([]byte(converseEvents[10].payload))
	if err != nil {
		t.Fatal(err)
	}
	want := ConverseMetadata{
		Usage:    bedrock.Usage{InputTokens: 900, OutputTokens: 31, CacheReadInputTokens: 50, CacheWriteInputTokens: 7},
		HasUsage: true, LatencyMs: 812,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// The hand-cut shapes and encoding/json agree; other shapes fall back.
func TestChunkBytesShapes(t *testing.T) {
	tests := []struct {
		name, payload string
		want          string // "" means an error
	}{
		{"plain", `{"bytes":"//8="}`, "\xff\xff"},
		{"padded", `{"bytes":"//8=","p":"abcXYZ019"}`, "\xff\xff"},
		{"escaped slash", `{"bytes":"\/\/8="}`, "\xff\xff"},
		{"spaces", `{ "bytes" : "//8=" }`, "\xff\xff"},
		{"padding first", `{"p":"abc","bytes":"//8="}`, "\xff\xff"},
		{"duplicate key, last wins", `{"bytes":"//8=","bytes":"YQ=="}`, "a"},
		{"newline inside string is not JSON", "{\"bytes\":\"//\n8=\"}", ""},
		{"empty", `{"bytes":""}`, ""},
		{"trailing garbage", `{"bytes":"//8="}x`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chunkBytes([]byte(tt.payload))
			if tt.want == "" {
				if err == nil {
					t.Errorf("chunkBytes = %q, want an error", got)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("chunkBytes = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
