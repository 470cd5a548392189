package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/claudecodetest"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
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
	ec := config.DefaultEmulator()
	ec.Regions = []config.EmulatorRegion{
		{Name: "us-east-1", Buckets: []config.Bucket{{Name: "tpm", Kind: config.KindTPM, Limit: 100_000_000}}},
		{Name: "us-west-2", Buckets: []config.Bucket{{Name: "tpm", Kind: config.KindTPM, Limit: 100_000_000}}},
	}
	ec.DefaultRegion = "us-east-1"
	emu, err := emulator.New(ec, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	// The throttling lasts 4 s from the first model call, however long
	// Claude Code takes to start on a loaded machine.
	var first atomic.Int64
	var throttled, served atomic.Int64
	es := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	}))
	t.Cleanup(es.Close)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
upstreams:
  - {name: east, region: us-east-1, endpoint: %[1]s/region/us-east-1, auth: {mode: none}, buckets: [{name: tpm, kind: tpm, limit: 100000000}]}
  - {name: west, region: us-west-2, endpoint: %[1]s/region/us-west-2, auth: {mode: none}, buckets: [{name: tpm, kind: tpm, limit: 100000000}]}
routes:
  - {upstreams: [east, west]}
`, es.URL)
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	secret := newKey(t, "dev", "--data-dir", data)
	base := startInProcess(t, []string{"serve", "--config", cfgPath, "--data-dir", data}).url(t)
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
