package gateway

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/keys"
)

// TestOverflowingUsageSettles: an upstream answer whose usage count
// overflows a cost (2e18 output tokens × 5 wraps negative) ends its reservation like any
// other. It used to wrap negative, the settled-tokens counter panicked on
// the negative add after the charge was marked ended, and the reservation
// and the in-flight slot stayed taken until restart: a key with
// max-concurrency 1 was locked out.
func TestOverflowingUsageSettles(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{
		settleDelay: -1,
		keys:        []keys.Key{{Name: "alice", Weight: 1, MaxConcurrency: 1}},
		upstream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Amzn-Bedrock-Input-Token-Count", "7")
			w.Header().Set("X-Amzn-Bedrock-Output-Token-Count", "2000000000000000000")
			fmt.Fprint(w, `{"type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn"}`)
		}),
	})
	resp, body := h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke", fmt.Sprintf(smallMsg, 100), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	waitFor(t, "the reservation to end", func() bool { return h.reserved() == 0 })
	if inflight := h.up.Admission.Status(time.Now()).InFlight; inflight != 0 {
		t.Errorf("in flight after the answer = %d, want 0", inflight)
	}
}
