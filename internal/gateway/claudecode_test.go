package gateway

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/keys"
)

// claudeBinary returns Claude Code's path from HEADROOM_CLAUDE, skipping the
// test when it is unset outside CI.
func claudeBinary(t *testing.T) string {
	claude := os.Getenv("HEADROOM_CLAUDE")
	if claude == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("HEADROOM_CLAUDE is not set in CI: install Claude Code and point it at the binary")
		}
		t.Skip("HEADROOM_CLAUDE is not set (npm install --prefix DIR @anthropic-ai/claude-code, then HEADROOM_CLAUDE=DIR/node_modules/.bin/claude)")
	}
	return claude
}

type ccResult struct {
	ok  bool
	out string
}

// runClaude runs `claude -p` in Bedrock mode against base with key. Retries
// are off, so a throttle fails the run instead of hiding in a backoff, and
// so is the non-streaming fallback, so a broken stream cannot hide either.
func runClaude(ctx context.Context, t *testing.T, claude, base, key string) ccResult {
	cmd := exec.CommandContext(ctx, claude, "-p", "Say hello.", "--output-format", "json")
	cmd.Env = []string{
		"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"),
		"CLAUDE_CODE_USE_BEDROCK=1", "AWS_REGION=us-east-1",
		"ANTHROPIC_BEDROCK_BASE_URL=" + base, "AWS_BEARER_TOKEN_BEDROCK=" + key,
		"CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK=1", "CLAUDE_CODE_MAX_RETRIES=0",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1",
	}
	out, err := cmd.Output()
	var v struct {
		IsError bool   `json:"is_error"`
		Result  string `json:"result"`
	}
	if json.Unmarshal(out, &v) != nil {
		return ccResult{false, string(out)}
	}
	return ccResult{err == nil && !v.IsError && strings.Contains(v.Result, "headroom emulate"), string(out)}
}

func runTwo(ctx context.Context, t *testing.T, claude, base string, secrets [2]string) [2]ccResult {
	var res [2]ccResult
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { res[i] = runClaude(ctx, t, claude, base, secrets[i]) })
	}
	wg.Wait()
	return res
}

// TestClaudeCodeTwoAtOnce: with a TPM that holds one Claude Code call's
// reservation but not two, two Claude Codes started together straight at
// the emulator get throttled; through the gateway both finish, one of them
// queued, and the emulator throttles nothing.
func TestClaudeCodeTwoAtOnce(t *testing.T) {
	t.Parallel()
	claude := claudeBinary(t)
	// A Claude Code call reserves its ~21,000 input tokens + 4,096 × 5
	// (the seed profile, after the gateway's cap; the emulator's own
	// accounting sees the rewritten max_tokens too): one fits in 70,000,
	// two do not.
	h := newHarness(t, harnessOpts{
		buckets: testBuckets(70_000, 100_000_000),
		keys:    []keys.Key{{Name: "ann", Weight: 1}, {Name: "ben", Weight: 1}},
		emu: func(c *config.Emulator) {
			c.Generation.OutputTokens = config.Distribution{Distribution: config.DistFixed, Mean: 40, Min: 1, Max: 100}
			c.Generation.TimeToFirstToken = config.Duration{Duration: 300 * time.Millisecond}
			c.Generation.TokensPerSecond = 150 // a call lasts about 0.6 s: the two overlap
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Straight at the emulator, Claude Code's own max_tokens (32,000)
	// reserves even more: the second call is throttled.
	start := time.Now()
	direct := runTwo(ctx, t, claude, h.emuURL, [2]string{"emulator", "emulator"})
	t.Logf("direct: %v", time.Since(start))
	if h.throttle.Load() == 0 || direct[0].ok && direct[1].ok {
		t.Fatalf("straight at the emulator nothing was throttled (429s: %d): the test proves nothing\n%s\n%s",
			h.throttle.Load(), direct[0].out, direct[1].out)
	}

	h.emu.Reset()
	h.throttle.Store(0)
	start = time.Now()
	through := runTwo(ctx, t, claude, h.gwURL, [2]string{h.secret["ann"], h.secret["ben"]})
	t.Logf("through the gateway: %v", time.Since(start))
	for i, r := range through {
		if !r.ok {
			t.Errorf("Claude Code %d through the gateway failed:\n%s", i, r.out)
		}
	}
	if n := h.throttle.Load(); n != 0 {
		t.Errorf("the emulator throttled %d calls from the gateway, want 0", n)
	}
	if waited := queuedCount(t, h); waited == 0 {
		t.Error("no request waited in the queue: the two Claude Codes did not contend")
	}
}

// queuedCount is the number of admitted requests that waited at least 10 ms.
func queuedCount(t *testing.T, h *harness) uint64 {
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "headroom_queue_wait_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() != "admitted" {
				continue
			}
			hist := m.GetHistogram()
			var fast uint64
			for _, b := range hist.GetBucket() {
				if b.GetUpperBound() == 0.01 {
					fast = b.GetCumulativeCount()
				}
			}
			return hist.GetSampleCount() - fast
		}
	}
	return 0
}
