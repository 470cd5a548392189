package gateway

import (
	"net/http"
	"testing"
)

// TestOpsClosedOffLoopback: on a gateway listening off loopback with no
// operations token, /v1/status and /metrics (key names and budgets) are
// refused with a message saying how to open them; /healthz stays open.
func TestOpsClosedOffLoopback(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.gw.opsClosed = true // as serve sets it for listen: 0.0.0.0:8080, before any request
	for _, tt := range []struct {
		path string
		want int
	}{{"/v1/status", http.StatusForbidden}, {"/metrics", http.StatusForbidden}, {"/healthz", http.StatusOK}} {
		resp, err := http.Get(h.gwURL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET %s: %d, want %d", tt.path, resp.StatusCode, tt.want)
		}
	}
}
