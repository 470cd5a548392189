package gateway

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// TestUpstreamDailyThrottleStopsRetries: Bedrock's own daily throttle,
// passed on, carries x-should-retry: false, so that Claude Code stops at
// once instead of retrying for minutes against a quota that frees only
// tomorrow; a per-minute one passed on does not.
func TestUpstreamDailyThrottleStopsRetries(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		msg         string
		shouldRetry string
	}{
		{bedrock.MsgTooManyTokensPerDay, "false"},
		{bedrock.MsgTooManyTokens, ""},
	} {
		h := newHarness(t, harnessOpts{
			settleDelay: -1,
			upstream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(bedrock.HeaderErrorType, bedrock.ThrottlingException)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprintf(w, `{"message":%q}`, tt.msg)
			}),
		})
		resp, body := h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke", fmt.Sprintf(smallMsg, 100),
			map[string]string{HeaderMaxWait: "0"})
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get(HeaderThrottle) != "upstream" {
			t.Fatalf("%q: status %d, %s %q: %s", tt.msg, resp.StatusCode, HeaderThrottle, resp.Header.Get(HeaderThrottle), body)
		}
		if got := resp.Header.Get(HeaderShouldRetry); got != tt.shouldRetry {
			t.Errorf("%q passed on with %s %q, want %q", tt.msg, HeaderShouldRetry, got, tt.shouldRetry)
		}
		if h.reserved() != 0 {
			t.Errorf("%q: %d tokens still reserved", tt.msg, h.reserved())
		}
	}
}
