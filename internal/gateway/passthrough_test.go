package gateway

import "testing"

func TestStopReason(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"content":[{"type":"text","text":"x"}],"stop_reason":"max_tokens","usage":{}}`, "max_tokens"},
		{`{"content":[{"type":"tool_use","input":{"stop_reason":"end_turn"}}],"stop_reason":"max_tokens"}`, "max_tokens"},
		{`{"content":[{"type":"text","text":"say \"stop_reason\":\"x\""}],"stop_reason":"end_turn"}`, "end_turn"},
		{`{"output":{},"stopReason":"max_tokens","usage":{}}`, "max_tokens"},
		{`{"stop_reason":null}`, ""},
		{`not json`, ""},
	}
	for _, tt := range tests {
		if got := stopReason([]byte(tt.body)); got != tt.want {
			t.Errorf("stopReason(%s) = %q, want %q", tt.body, got, tt.want)
		}
	}
}
