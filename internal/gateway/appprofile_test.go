package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// profileUpstream answers GetInferenceProfile for the profile ID "abc123"
// (a copy of the US cross-region Sonnet 4 profile), counting the lookups,
// and holds every model call until release is closed, so that the test
// can look at the ledger while the calls are in flight.
func profileUpstream(lookups *atomic.Int64, release chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/inference-profiles/abc123" {
			lookups.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"inferenceProfileId":"abc123","type":"APPLICATION","models":[`+
				`{"modelArn":"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0"},`+
				`{"modelArn":"arn:aws:bedrock:us-east-2::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0"},`+
				`{"modelArn":"arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0"}]}`)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		<-release
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(bedrock.HeaderInputTokens, "7")
		w.Header().Set(bedrock.HeaderOutputTokens, "5")
		fmt.Fprint(w, `{"type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn"}`)
	})
}

// TestApplicationProfileMirrored: a call through an application inference
// profile draws on the quota of the model the profile runs, found through
// the control plane once (or the configuration), so the mirror reserves for
// it and queues what does not fit. It used to match no bucket and be
// admitted with 0 reserved, any number at once.
func TestApplicationProfileMirrored(t *testing.T) {
	t.Parallel()
	const arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"
	for _, viaConfig := range []bool{false, true} {
		var lookups atomic.Int64
		release := make(chan struct{})
		// 50,000 TPM: two reservations of 20,487 fit, a third does not.
		h := newHarness(t, harnessOpts{buckets: testBuckets(50_000, 100_000_000), settleDelay: -1, upstream: profileUpstream(&lookups, release)})
		if viaConfig {
			h.up.Profiles = map[string]string{"abc123": "us.anthropic.claude-sonnet-4-20250514-v1:0"}
			h.up.profiles.static = h.up.Profiles
		}
		done := make(chan int, 3)
		for range 3 {
			go func() {
				resp, _ := h.post(h.gwURL, h.secret["alice"], "/model/"+strings.ReplaceAll(arn, "/", "%2F")+"/invoke", fmt.Sprintf(smallMsg, 100),
					map[string]string{HeaderMaxWait: "10"})
				done <- resp.StatusCode
			}()
		}
		waitFor(t, "two calls to be reserved", func() bool { return h.reserved() == 2*20_487*2 })
		time.Sleep(100 * time.Millisecond)
		if st := h.up.Admission.Status(time.Now()); st.InFlight != 2 || st.Queued != 1 {
			t.Errorf("config %v: in flight %d, queued %d; want 2 and 1 (the third does not fit)", viaConfig, st.InFlight, st.Queued)
		}
		close(release)
		for range 3 {
			if code := <-done; code != http.StatusOK {
				t.Errorf("config %v: status %d", viaConfig, code)
			}
		}
		want := int64(1)
		if viaConfig {
			want = 0
		}
		if got := lookups.Load(); got != want {
			t.Errorf("config %v: %d GetInferenceProfile lookups, want %d", viaConfig, got, want)
		}
	}
}

// TestUnmatchedModelRefused: a model no bucket matches is refused with a
// message naming it, unless the upstream allows unmatched models.
func TestUnmatchedModelRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	const haiku = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
	resp, body := h.post(h.gwURL, h.secret["alice"], "/model/"+haiku+"/invoke", fmt.Sprintf(smallMsg, 100), nil)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get(bedrock.HeaderErrorType) != bedrock.ValidationException ||
		!strings.Contains(string(body), haiku) {
		t.Errorf("unmatched model: %d %s: %s, want a ValidationException naming the model", resp.StatusCode, resp.Header.Get(bedrock.HeaderErrorType), body)
	}
	h = newHarness(t, harnessOpts{})
	h.up.AllowUnmatched = true // before any request
	if resp, body := h.post(h.gwURL, h.secret["alice"], "/model/"+haiku+"/invoke", fmt.Sprintf(smallMsg, 100), nil); resp.StatusCode != http.StatusOK {
		t.Errorf("unmatched model with unmatched: unlimited: %d %s", resp.StatusCode, body)
	}
}
