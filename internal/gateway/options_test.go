package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/keys"
)

// TestOptionHeadersAllowlisted: X-Amzn-Bedrock-* request options reach
// the upstream (with the gateway's credentials) only when the route allows
// them; the service tier header always passes, and a tier the route does
// not allow is refused with a message saying why. Before, every such
// header went upstream.
func TestOptionHeadersAllowlisted(t *testing.T) {
	t.Parallel()
	var guardrails, tiers atomic.Int64
	h := newHarness(t, harnessOpts{keys: []keys.Key{{Name: "alice", Weight: 1}, {Name: "bob", Weight: 1}}, upstream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amzn-Bedrock-Guardrailidentifier") != "" {
			guardrails.Add(1)
		}
		if r.Header.Get(bedrock.HeaderServiceTier) != "" {
			tiers.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(bedrock.HeaderInputTokens, "7")
		w.Header().Set(bedrock.HeaderOutputTokens, "5")
		fmt.Fprint(w, `{"type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn"}`)
	})})
	// As config.Serve.OptionsFor with one route for bob allowing a
	// guardrail and the standard and flex tiers; alice's route allows none.
	h.gw.options = func(model, key string) ([]string, []string) {
		if key == "bob" {
			return []string{"X-Amzn-Bedrock-GuardrailIdentifier"}, []string{"standard", "flex"}
		}
		return nil, nil
	}
	invoke := "/model/" + sonnet + "/invoke"
	body := fmt.Sprintf(smallMsg, 100)
	for _, tt := range []struct {
		key    string
		hdr    map[string]string
		status int
		says   string
	}{
		{"alice", map[string]string{"X-Amzn-Bedrock-GuardrailIdentifier": "gr-1"}, 400, "X-Amzn-Bedrock-Guardrailidentifier"},
		{"alice", map[string]string{"X-Amzn-Bedrock-Trace": "ENABLED"}, 400, "X-Amzn-Bedrock-Trace"},
		{"alice", map[string]string{bedrock.HeaderServiceTier: "priority"}, 200, ""},
		{"bob", map[string]string{"X-Amzn-Bedrock-GuardrailIdentifier": "gr-1"}, 200, ""},
		{"bob", map[string]string{bedrock.HeaderServiceTier: "flex"}, 200, ""},
		{"bob", map[string]string{bedrock.HeaderServiceTier: "priority"}, 400, "may not use the priority service tier"},
	} {
		resp, b := h.post(h.gwURL, h.secret[tt.key], invoke, body, tt.hdr)
		if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.says) {
			t.Errorf("%s %v: %d %s, want %d saying %q", tt.key, tt.hdr, resp.StatusCode, b, tt.status, tt.says)
		}
	}
	if g, ti := guardrails.Load(), tiers.Load(); g != 1 || ti != 2 {
		t.Errorf("upstream saw %d guardrail and %d tier headers, want 1 (bob's) and 2", g, ti)
	}
}
