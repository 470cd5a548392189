package gateway

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// panicWriter panics on the first body write, as a bug in the pass-through
// would, after the upstream has run the request.
type panicWriter struct{ *httptest.ResponseRecorder }

func (panicWriter) Write([]byte) (int, error) { panic("boom") }

// TestPanicSettles: a handler that panics after the upstream ran the
// request still ends its reservation exactly once, keeping the charge (the
// model ran; nothing is refunded wholesale), and the panic does not escape.
func TestPanicSettles(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{settleDelay: -1})
	req := httptest.NewRequest(http.MethodPost, "/model/"+sonnet+"/invoke", bytes.NewReader([]byte(fmt.Sprintf(smallMsg, 100))))
	req.Header.Set("Authorization", "Bearer "+h.secret["alice"])
	w := panicWriter{httptest.NewRecorder()}
	h.gw.ServeHTTP(w, req)
	if got := h.reserved(); got != 0 {
		t.Errorf("reserved after a panic = %d, want 0", got)
	}
	// The seed profile reserved 7 + max(100, 4,096) × 5.
	if used := tpdUsed(h); used != 7+4096*5 {
		t.Errorf("charged %d after a panic, want the reservation (20,487) kept", used)
	}
}
