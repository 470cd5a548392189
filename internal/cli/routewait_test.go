package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/claudecodetest"
)

// TestClaudeCodeWhileEveryRegionThrottles: both regions of the route
// throttle every model call for 4 s from the first (another client of the
// account, unseen by the mirror), and `claude -p`, its own retries off so
// that one 429 reaching it fails the run, completes through serve: the
// gateway gave each throttled call's reservation back and waited in the
// route's queues until a region took it, and handed none of Claude Code's
// calls a 429. (Before, a call got the last region's 429 after its few
// quick retries, within about 3 s: checked, a side call got one.)
func TestClaudeCodeWhileEveryRegionThrottles(t *testing.T) {
	claude := claudecodetest.Binary(t)
	t.Parallel()
	// The throttling lasts 4 s from the first model call, however long
	// Claude Code takes to start on a loaded machine.
	var first atomic.Int64
	var throttled, served atomic.Int64
	base, secret := regionsServe(t, 100_000_000, func(emu http.Handler) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/invoke") {
				now := time.Now().UnixNano()
				first.CompareAndSwap(0, now)
				if now < first.Load()+int64(4*time.Second) {
					throttled.Add(1)
					w.Header().Set("X-Amzn-ErrorType", "ThrottlingException")
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusTooManyRequests)
					fmt.Fprint(w, `{"message":"Too many tokens, please wait before trying again."}`)
					return
				}
				served.Add(1)
			}
			emu.ServeHTTP(w, r)
		}
	}, "")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	res, ok := claudecodetest.Run(ctx, t, claude, base, secret, "Say hello.", "CLAUDE_CODE_MAX_RETRIES=0")
	t.Logf("regions throttled %d calls, served %d", throttled.Load(), served.Load())
	if !ok || res.IsError {
		t.Fatalf("claude -p did not complete: ok %v, is_error %v, err %v\nstdout %.2000s\nstderr %.2000s", ok, res.IsError, res.Err, res.Stdout, res.Stderr)
	}
	if throttled.Load() < 2 || served.Load() == 0 {
		t.Fatalf("%d calls throttled, %d served: the run did not meet both regions throttling", throttled.Load(), served.Load())
	}
	// Claude Code's side calls (a title, a quota check) fail quietly:
	// none of them may have been handed a throttle either.
	for _, l := range strings.Split(get(t, base+"/metrics"), "\n") {
		if strings.HasPrefix(l, "headroom_requests_total{") && strings.Contains(l, `outcome="throttled_upstream"`) && !strings.HasSuffix(l, " 0") {
			t.Errorf("serve passed an upstream throttle on: %s", l)
		}
	}
}
