package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/claudecodetest"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
)

// TestClaudeCodeLongAnswerRecovers is issue 10's first case (a text answer
// longer than the cap) with the real Claude Code: every answer is 6,000
// tokens and serve's learned policy starts at a 2,048 cap (a configured
// floor and prior, and no room rule, so that the first answer is cut). Claude
// Code sends its recovery turn ("Output token limit hit..."); serve
// recognises it and gives the turn 4 × 2,048, so the answer fits and the
// task ends without an error. With the fixed 2,048 cap (mode: fixed) the
// same run fails the turn after three recovery turns, so the check can
// fail.
func TestClaudeCodeLongAnswerRecovers(t *testing.T) {
	claude := claudecodetest.Binary(t)
	for _, mode := range []string{"learned", "fixed"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			served := &servedLog{}
			cfg := config.DefaultEmulator()
			cfg.Generation.OutputTokens = config.Distribution{Distribution: config.DistFixed, Mean: 6000, Min: 1, Max: 8000}
			emu, err := emulator.New(cfg, slog.New(served), time.Now)
			if err != nil {
				t.Fatal(err)
			}
			es := httptest.NewServer(emu)
			t.Cleanup(es.Close)

			args, data := serveYAML(t, fmt.Sprintf(`listen: 127.0.0.1:0
upstreams:
  - name: emu
    region: us-east-1
    endpoint: %s
    auth: {mode: none}
    buckets:
      - {name: tpm, kind: tpm, limit: 100000000}
policy:
  mode: %s
  max_tokens_cap: 2048
  floor: 2048
  priors: [{match: "", median: 300, p99: 1500}]
  prior_weight: 1000
  room_fraction: 0
`, es.URL, mode))
			secret := newKey(t, "dev", "--data-dir", data)
			base := startInProcess(t, args).url(t)

			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			res, ok := claudecodetest.RunWith(ctx, t, claude, base, secret, "Write me a long essay.",
				claudecodetest.Options{Env: []string{"CLAUDE_CODE_MAX_RETRIES=0"}})
			if !ok {
				t.Fatalf("claude: %v; stdout %q; stderr %q", res.Err, res.Stdout, res.Stderr)
			}
			escalations := counter(t, base, `headroom_escalations_total\{key="dev",signal="escalated_recovery"\} (\d+)`)
			t.Logf("%s: %s; escalations %d; is_error %v; result %.120q", mode, served, escalations, res.IsError, res.Result)
			switch mode {
			case "learned":
				if res.IsError || escalations == 0 || served.cuts() == 0 {
					t.Errorf("learned: is_error %v, %d escalations, %d cuts; want a cut, an escalated recovery turn and success\n%.2000s",
						res.IsError, escalations, served.cuts(), res.Stdout)
				}
			case "fixed":
				if !res.IsError || escalations != 0 {
					t.Errorf("fixed: is_error %v, %d escalations; want the turn to fail (so the learned run proves something)", res.IsError, escalations)
				}
			}
		})
	}
}

// counter reads one Prometheus counter from serve's /metrics (0 if absent).
func counter(t *testing.T, base, pattern string) int {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(pattern).FindSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
