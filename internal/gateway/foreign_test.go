package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// TestForeignUpstreamErrorIsBedrockShaped: an upstream error answer without
// x-amzn-ErrorType (an HTML page from a proxy in between) reaches the client
// as a Bedrock exception, and the reservation is given back.
func TestForeignUpstreamErrorIsBedrockShaped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{upstream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html><body>502 Bad Gateway</body></html>"))
	})})
	body := `{"anthropic_version":"bedrock-2023-05-31","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`
	resp, got := h.post(h.gwURL, h.secret["alice"], "/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke", body,
		map[string]string{HeaderMaxWait: "1"})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("x-amzn-ErrorType") != bedrock.ServiceUnavailableException {
		t.Errorf("status %d, x-amzn-ErrorType %q, body %s; want 503 ServiceUnavailableException",
			resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), got)
	}
	waitFor(t, "every reservation to end", func() bool { return h.reserved() == 0 })
}

// TestDeadline: x-headroom-max-wait can only shorten the queue's maximum
// wait; values that are not a non-negative finite number are ignored.
func TestDeadline(t *testing.T) {
	g := &Gateway{maxWait: 60 * time.Second}
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 60 * time.Second},
		{"5", 5 * time.Second},
		{"0.5", 500 * time.Millisecond},
		{"0", 0},
		{"120", 60 * time.Second},
		{"-1", 60 * time.Second},
		{"Inf", 60 * time.Second},
		{"1e300", 60 * time.Second},
		{"NaN", 60 * time.Second},
		{"soon", 60 * time.Second},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		if tt.header != "" {
			r.Header.Set(HeaderMaxWait, tt.header)
		}
		if got := g.deadline(r, start).Sub(start); got != tt.want {
			t.Errorf("x-headroom-max-wait %q: wait %v, want %v", tt.header, got, tt.want)
		}
	}
}
