package gateway

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/claudecodetest"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/upstream"
)

type ccResult struct {
	ok  bool
	out string
}

// runClaude runs Claude Code against base with key, in Bedrock mode or
// in Mantle mode. Retries are off, so a throttle fails the run instead of
// hiding in a backoff.
func runClaude(ctx context.Context, t *testing.T, claude, base, key string, mantle bool) ccResult {
	res, ok := claudecodetest.RunWith(ctx, t, claude, base, key, "Say hello.",
		claudecodetest.Options{Env: []string{"CLAUDE_CODE_MAX_RETRIES=0"}, Mantle: mantle})
	ok = ok && res.Err == nil && !res.IsError && strings.Contains(res.Result, "headroom emulate")
	return ccResult{ok, res.Stdout + res.Stderr}
}

func runTwo(ctx context.Context, t *testing.T, claude, base string, secrets [2]string, mantle bool) [2]ccResult {
	var res [2]ccResult
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { res[i] = runClaude(ctx, t, claude, base, secrets[i], mantle) })
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
	claude := claudecodetest.Binary(t)
	// Claude Code 2.1.332 calls Opus 5.5 (burndown 10). A call reserves
	// its ~12,000 input tokens + 4,096 × 10 (the seed profile, after the
	// gateway's cap; the emulator's own accounting sees the rewritten
	// max_tokens too): one fits in 70,000, two do not.
	scope := bedrock.Scope{Models: []string{"claude-opus-5-5"}, Inference: bedrock.InferenceCrossRegion}
	h := newHarness(t, harnessOpts{
		buckets: []config.Bucket{
			{Name: "opus-5-5-tpm", Kind: config.KindTPM, Limit: 70_000, Scope: scope},
			{Name: "opus-5-5-tpd", Kind: config.KindTPD, Limit: 100_000_000, Scope: scope},
		},
		keys: []keys.Key{{Name: "ann", Weight: 1}, {Name: "ben", Weight: 1}},
		emu: func(c *config.Emulator) {
			c.Generation.OutputTokens = config.Distribution{Distribution: config.DistFixed, Mean: 40, Min: 1, Max: 100}
			c.Generation.TimeToFirstToken = config.Duration{Duration: 2 * time.Second}
			c.Generation.TokensPerSecond = 150 // a call lasts over 2 s: the two overlap even when one Claude Code starts late on a loaded machine
		},
	})
	// Each phase has its own minute: on a loaded machine Claude Code takes
	// seconds to start, and a shared deadline let a slow first phase kill
	// the second.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Straight at the emulator, Claude Code's own max_tokens (128,000)
	// reserves far more: the calls are throttled.
	start := time.Now()
	direct := runTwo(ctx, t, claude, h.emuURL, [2]string{"emulator", "emulator"}, false)
	t.Logf("direct: %v", time.Since(start))
	if h.throttle.Load() == 0 || direct[0].ok && direct[1].ok {
		t.Fatalf("straight at the emulator nothing was throttled (429s: %d): the test proves nothing\n%s\n%s",
			h.throttle.Load(), direct[0].out, direct[1].out)
	}

	h.emu.Reset()
	h.throttle.Store(0)
	start = time.Now()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel2()
	through := runTwo(ctx2, t, claude, h.gwURL, [2]string{h.secret["ann"], h.secret["ben"]}, false)
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
	// Who used the day, and the OpenTelemetry token usage, as Claude Code's
	// calls left them.
	waitFor(t, "settlement", func() bool { return h.reserved() == 0 })
	tpd := bucketUsage(t, h.status(), "opus-5-5-tpd")
	if len(tpd.TopToday) != 2 || tpd.Forecast == nil || tpd.Forecast.Rates.Hour <= 0 {
		t.Errorf("opus-5-5-tpd after two Claude Codes: top today %+v, forecast %+v; want ann and ben and a rate", tpd.TopToday, tpd.Forecast)
	}
	in, out := genAITokens(t, h, "input"), genAITokens(t, h, "output")
	if in.GetSampleCount() < 2 || in.GetSampleSum() < 2*5000 || out.GetSampleCount() != in.GetSampleCount() || out.GetSampleSum() < 2 {
		t.Errorf("gen_ai_client_token_usage: input %d calls %v tokens, output %d calls %v tokens; want Claude Code's calls",
			in.GetSampleCount(), in.GetSampleSum(), out.GetSampleCount(), out.GetSampleSum())
	}
}

// genAITokens is the gen_ai_client_token_usage histogram of a token type,
// summed over models.
func genAITokens(t *testing.T, h *harness, tokenType string) *dto.Histogram {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum dto.Histogram
	var n uint64
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != "gen_ai_client_token_usage" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["gen_ai_token_type"] != tokenType || labels["gen_ai_provider_name"] != "aws.bedrock" || labels["gen_ai_operation_name"] != "chat" {
				continue
			}
			n += m.GetHistogram().GetSampleCount()
			total += m.GetHistogram().GetSampleSum()
		}
	}
	sum.SampleCount, sum.SampleSum = &n, &total
	return &sum
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

// TestClaudeCodeTwoAtOnceMantle is TestClaudeCodeTwoAtOnce in Claude Code's
// Mantle mode, through a bedrock-mantle upstream: with an input TPM that
// holds one Claude Code call's admission charge (input + max_tokens) but
// not two, two Claude Codes started together straight at the emulator's
// Mantle endpoint get throttled; through the gateway both finish, one of
// them queued, and the emulator throttles nothing.
func TestClaudeCodeTwoAtOnceMantle(t *testing.T) {
	t.Parallel()
	claude := claudecodetest.Binary(t)
	// Claude Code 2.1.332 calls Opus 5.5 with some 12,500 input tokens.
	// Straight at the emulator it asks max_tokens 128,000, more than the
	// whole input bucket: refused at once. Through the gateway the cap
	// (4,096) makes a call's charge ~16,600: one fits in 24,000, two do
	// not, and the second still does not fit by refill (400 a second)
	// until ~11 s after the first began, so it queues even if its Claude
	// Code starts seconds late.
	scope := bedrock.Scope{Models: []string{"claude-opus-5-5"}}
	buckets := []config.Bucket{
		{Name: "opus-5-5-input-tpm", Kind: config.KindInputTPM, Limit: 24_000, Scope: scope},
		{Name: "opus-5-5-output-tpm", Kind: config.KindOutputTPM, Limit: 2_000_000, Scope: scope},
	}
	h := newHarness(t, harnessOpts{
		buckets: buckets, service: upstream.ServiceMantle, endpointPath: "/mantle",
		keys: []keys.Key{{Name: "ann", Weight: 1}, {Name: "ben", Weight: 1}},
		emu: func(c *config.Emulator) {
			c.Regions[0].Buckets, c.Regions[0].Mantle = nil, buckets
			c.Generation.OutputTokens = config.Distribution{Distribution: config.DistFixed, Mean: 40, Min: 1, Max: 100}
			c.Generation.ThinkingShare = 0
			// A call streams for 8 s: the two overlap even when one
			// Claude Code starts seconds late on a loaded machine.
			c.Generation.TokensPerSecond, c.Generation.ChunkTokens = 5, 1
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	direct := runTwo(ctx, t, claude, h.emuURL+"/mantle", [2]string{"emulator", "emulator"}, true)
	t.Logf("direct: %v", time.Since(start))
	if h.throttle.Load() == 0 || direct[0].ok && direct[1].ok {
		t.Fatalf("straight at the emulator nothing was throttled (429s: %d): the test proves nothing\n%s\n%s",
			h.throttle.Load(), direct[0].out, direct[1].out)
	}

	h.emu.Reset()
	h.throttle.Store(0)
	start = time.Now()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel2()
	through := runTwo(ctx2, t, claude, h.gwURL, [2]string{h.secret["ann"], h.secret["ben"]}, true)
	waitFor(t, "settlement", func() bool { return h.reserved() == 0 })
	t.Logf("through the gateway: %v; gateway's ledger %+v; emulator's %+v", time.Since(start), h.ledger(), h.emuState().Regions[0].Mantle)
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
