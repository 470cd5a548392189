package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/gateway"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/metrics"
	"github.com/headroomhq/headroom/internal/store/memstore"
	"github.com/headroomhq/headroom/internal/upstream"
)

// The fidelity scenario: three developers, one short task each, on one
// account with a 300,000-token daily quota. Claude Code's defaults
// reserve 160,000 per call, so their calls collide; at 4,096 they do not.
// Only a daily bucket: its window does not depend on how fast time runs,
// so the real run below may compress time.
const fidelityScenario = `
name: fidelity
seed: 2
hours: 1
buckets: [{name: daily-tokens, kind: tpd, limit: 300000}]
team: 3
strategies: [direct-defaults, direct-4096, headroom-4096]
workload:
  prompt_caching: false
  tasks_per_day: 1
  start_within_minutes: 1
  calls_per_task: {min: 5, max: 7}
  initial_context: 2000
  context_growth: {median: 300, p95: 1200}
  context_limit: 20000
  output: {median: 150, p95: 2500, max: 9000}
  tool_calls: {probability: 0.15, size: {min: 600, alpha: 1.5, max: 9000}, retries: 3}
  thinking: {probability: 0}
  parallel: {probability: 0.15, calls: {min: 2, max: 3}, input: 1500}
  background: {probability: 0.3, input: 400, output: {median: 20, p95: 60}}
  think_seconds: {median: 2, p95: 6}
  task_gap_seconds: {median: 60, p95: 60}
  latency:
    main: {first_token_seconds: 0.5, tokens_per_second: 100}
    small: {first_token_seconds: 0.5, tokens_per_second: 100}
    throttle_seconds: 0
`

// speedup compresses the real run's time: think times, pauses, backoffs
// and the emulator's pace all run this many times faster than simulated.
const speedup = 250

// TestFidelity runs the same workload twice: in the simulator, and for
// real through HTTP, with Claude Code-like clients (the same task plans,
// retry rules and continuation calls, written independently of the
// simulator's event loop) calling an in-process `headroom emulate`
// directly or through an in-process `headroom serve` gateway. Time in
// the real run is compressed by speedup.
//
// Tolerances. Where calls do not contend (direct-4096, headroom) the
// outcome does not depend on timing and must match exactly: the same tasks
// completed, no 429 on either side, and the daily bucket's settled tokens
// equal within 1%. Where Claude Code's 160,000-token reservations collide
// (direct-defaults), which call loses depends on timing within a few
// milliseconds of real time, so both must see 429s, completed tasks may
// differ by one, and settled tokens by 25%.
func TestFidelity(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("real HTTP run")
	}
	sc, err := ParseScenario([]byte(fidelityScenario))
	if err != nil {
		t.Fatal(err)
	}
	// A fixed daily reset far from now, so the real run cannot cross it.
	sc.Windows.DayResetHourUTC = (time.Now().UTC().Hour() + 12) % 24
	sim, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sim.Strategies {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			st, _ := ParseStrategies(s.Name)
			real := realRun(t, &sc, st[0])
			t.Logf("simulated: %d/%d tasks, %d 429s, %.0f tokens settled", s.TasksCompleted, s.TasksStarted, s.Client429s, s.Buckets[0].Used)
			t.Logf("real:      %d/%d tasks, %d 429s (%d from Bedrock), %d tokens settled", real.completed, real.started, real.client429, real.bedrock429, real.settled)
			if s.Name == "direct-defaults" {
				if s.Client429s == 0 || real.client429 == 0 {
					t.Errorf("429s: simulated %d, real %d; want some on both sides", s.Client429s, real.client429)
				}
				if d := s.TasksCompleted - real.completed; d < -1 || d > 1 {
					t.Errorf("completed: simulated %d, real %d; want within 1", s.TasksCompleted, real.completed)
				}
				if !within(s.Buckets[0].Used, float64(real.settled), 0.25) {
					t.Errorf("settled: simulated %.0f, real %d; want within 25%%", s.Buckets[0].Used, real.settled)
				}
				return
			}
			if s.TasksCompleted != real.completed || s.TasksStarted != real.started {
				t.Errorf("tasks: simulated %d/%d, real %d/%d", s.TasksCompleted, s.TasksStarted, real.completed, real.started)
			}
			if s.Client429s != 0 || real.client429 != 0 || real.bedrock429 != 0 {
				t.Errorf("429s: simulated %d, real %d (%d from Bedrock); want none", s.Client429s, real.client429, real.bedrock429)
			}
			if !within(s.Buckets[0].Used, float64(real.settled), 0.01) {
				t.Errorf("settled: simulated %.0f, real %d; want within 1%%", s.Buckets[0].Used, real.settled)
			}
		})
	}
}

func within(a, b, rel float64) bool { return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b)) }

// realOutcome is what the real run counted.
type realOutcome struct {
	started, completed int
	client429          int
	bedrock429         int
	settled            int64
}

// realRun runs the scenario's workload through HTTP under one strategy.
func realRun(t *testing.T, sc *Scenario, st Strategy) realOutcome {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	ec := emulatorConfig(sc)
	sp := sc.Workload.Latency.Main
	ec.Generation.TimeToFirstToken = config.Duration{Duration: seconds(sp.FirstTokenSeconds / speedup)}
	ec.Generation.TokensPerSecond = sp.TokensPerSecond * speedup
	emu, err := emulator.New(ec, logger, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	var bedrock429 atomic.Int64
	es := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		emu.ServeHTTP(&count429{ResponseWriter: w, n: &bedrock429}, r)
	}))
	t.Cleanup(es.Close)

	base, secrets := es.URL, make([]string, sc.Size())
	if st.Topology == Gateway {
		base, secrets = startGateway(t, sc, es.URL, logger)
	}
	rc := &realClient{base: base, http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, st: st, sc: sc}
	t.Cleanup(rc.http.CloseIdleConnections)
	var wg sync.WaitGroup
	for i := range sc.Size() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc.developer(t, i, secrets[i])
		}()
	}
	wg.Wait()
	rc.bg.Wait()

	resp, err := http.Get(es.URL + emulator.PathState)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var state emulator.State
	if err := json.NewDecoder(resp.Body).Decode(&state); err != nil {
		t.Fatal(err)
	}
	return realOutcome{
		started: int(rc.started.Load()), completed: int(rc.completed.Load()),
		client429: int(rc.client429.Load()), bedrock429: int(bedrock429.Load()),
		settled: state.Regions[0].Buckets[0].Used,
	}
}

type count429 struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *count429) WriteHeader(code int) {
	if code == http.StatusTooManyRequests {
		c.n.Add(1)
	}
	c.ResponseWriter.WriteHeader(code)
}

// startGateway runs `headroom serve`'s handler in front of the emulator,
// configured from the scenario, with one key per developer.
func startGateway(t *testing.T, sc *Scenario, emuURL string, logger *slog.Logger) (string, []string) {
	t.Helper()
	client, err := upstream.New(context.Background(), upstream.Options{Name: "bedrock", Region: sc.Region, Endpoint: emuURL, Auth: upstream.AuthNone})
	if err != nil {
		t.Fatal(err)
	}
	up, err := gateway.NewUpstream("bedrock", client, sc.Buckets, sc.Windows,
		admission.Options{ProtectedFraction: sc.Headroom.ProtectedFraction}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	var aks []admission.Key
	secrets := make([]string, sc.Size())
	for i := range secrets {
		s := keys.NewSecret()
		k := keys.Key{Name: fmt.Sprintf("dev-%d", i), Hash: keys.Hash(s), Weight: 1, CreatedAt: time.Now()}
		if err := store.Create(context.Background(), k); err != nil {
			t.Fatal(err)
		}
		secrets[i] = s
		aks = append(aks, admission.Key{Name: k.Name, Weight: k.Weight})
	}
	up.Admission.SetKeys(aks)
	reg := keys.NewRegistry(store, logger)
	if err := reg.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	profile, burndown, err := sc.Accounting.ProfileAndBurndown()
	if err != nil {
		t.Fatal(err)
	}
	pr := prometheus.NewRegistry()
	policy := config.Policy{MaxTokensCap: sc.Headroom.MaxTokensCap, ThinkingBudgetCap: sc.Headroom.ThinkingBudgetCap}
	gw, err := gateway.New(gateway.Options{
		Logger: logger, Metrics: metrics.New(pr), Gatherer: pr, Keys: reg,
		Upstreams: []*gateway.Upstream{up}, Route: func(string, string) []string { return []string{"bedrock"} },
		Caps: policy.Caps, Profile: profile, Burndown: burndown,
		MaxWait: seconds(sc.Headroom.MaxWaitSeconds / speedup),
		// The refund delay runs on the compressed clock too (unscaled, its
		// 200 ms would be 50 simulated seconds of a hold the simulator
		// gives back after 200 ms).
		SettleDelay: gatewaySettleDelay / speedup,
	})
	if err != nil {
		t.Fatal(err)
	}
	gs := httptest.NewServer(gw)
	t.Cleanup(gs.Close)
	return gs.URL, secrets
}

// realClient plays Claude Code for every developer: each runs its task
// plans (drawn by the simulator's planner, so the workload is the same)
// with blocking HTTP calls, sleeps for think times, and retries 429s as
// Claude Code does.
type realClient struct {
	base string
	http *http.Client
	st   Strategy
	sc   *Scenario
	bg   sync.WaitGroup

	started, completed, client429 atomic.Int64
}

func sleepScaled(d time.Duration) { time.Sleep(d / speedup) }

func (rc *realClient) developer(t *testing.T, i int, secret string) {
	wl := &rc.sc.Workload
	p := newPlanner(wl, rc.sc.Seed, i)
	jitter := rand.New(rand.NewPCG(rc.sc.Seed, uint64(i)))
	sleepScaled(p.startOffset())
	for range wl.TasksPerDay {
		var plan taskPlan
		p.next(&plan)
		rc.started.Add(1)
		if rc.task(t, &plan, secret, jitter) {
			rc.completed.Add(1)
		}
		sleepScaled(plan.gap)
	}
}

// task runs one task; false when a call failed finally.
func (rc *realClient) task(t *testing.T, plan *taskPlan, secret string, jitter *rand.Rand) bool {
	wl := &rc.sc.Workload
	context := wl.InitialContext
	for _, st := range plan.steps {
		context = min(context+st.growth, wl.ContextLimit)
		var out int
		ok := true
		if st.calls[0].kind == kindMain {
			out, ok = rc.call(t, wl.MainModel, context, st.calls[0], secret, jitter)
		} else {
			var mu sync.Mutex
			var wg sync.WaitGroup
			sem := make(chan struct{}, wl.MaxToolUseConcurrency)
			for _, c := range st.calls {
				wg.Add(1)
				sem <- struct{}{}
				r := rand.New(rand.NewPCG(jitter.Uint64(), 0))
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					n, k := rc.call(t, wl.MainModel, c.input, c, secret, r)
					mu.Lock()
					out, ok = out+n, ok && k
					mu.Unlock()
				}()
			}
			wg.Wait()
		}
		if st.hasBg {
			bg := st.background
			r := rand.New(rand.NewPCG(jitter.Uint64(), 1))
			rc.bg.Add(1)
			go func() {
				defer rc.bg.Done()
				rc.call(t, wl.SmallModel, bg.input, bg, secret, r)
			}()
		}
		if !ok {
			return false
		}
		context = min(context+out, wl.ContextLimit)
		sleepScaled(st.think)
	}
	return true
}

// call makes one call, with Claude Code's follow-ups while max_tokens cuts
// the answer: a recovery turn for the rest of cut text (at most
// RecoveryTurns), or the model's repeat of a whole cut tool call (at most
// ToolCalls.Retries), and returns the output in the conversation.
func (rc *realClient) call(t *testing.T, modelID string, input int, p callPlan, secret string, jitter *rand.Rand) (int, bool) {
	m, err := bedrock.ParseModel(modelID)
	if err != nil {
		t.Error(err)
		return 0, false
	}
	wl := &rc.sc.Workload
	maxTokens := bedrock.DefaultMaxOutput(m)
	switch {
	case rc.st.ClientMaxTokens == clientDefault:
		maxTokens = min(wl.MaxTokens, maxTokens)
	case rc.st.ClientMaxTokens > 0:
		maxTokens = min(rc.st.ClientMaxTokens, maxTokens)
	}
	want := p.output
	if p.tool > 0 {
		want = p.tool
	}
	total := 0
	for n := 0; ; n++ {
		got, cut, ok := rc.attempts(t, modelID, maxTokens, input, want, secret, jitter)
		if !ok {
			return total, false
		}
		total += got
		if !cut {
			return total, true
		}
		if p.tool > 0 {
			if n >= wl.ToolCalls.Retries {
				return total, false
			}
			input += got + toolErrorTokens
			continue
		}
		if n >= wl.RecoveryTurns {
			return total, false
		}
		input, want = input+got+recoveryPromptTokens, want-got
	}
}

// attempts sends a request until it is answered or Claude Code gives up:
// on 429 it waits Retry-After exactly when given, else its backoff, at
// most MaxRetries times, and stops at once on x-should-retry: false.
func (rc *realClient) attempts(t *testing.T, modelID string, maxTokens, input, want int, secret string, jitter *rand.Rand) (out int, cut, ok bool) {
	body := invokeBody(maxTokens, input)
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequest(http.MethodPost, rc.base+"/model/"+modelID+"/invoke", bytes.NewReader(body))
		if err != nil {
			t.Error(err)
			return 0, false, false
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(emulator.HeaderOutputTokens, strconv.Itoa(want))
		if secret != "" {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		resp, err := rc.http.Do(req)
		if err != nil {
			t.Error(err)
			return 0, false, false
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			var v struct {
				StopReason string `json:"stop_reason"`
				Usage      struct {
					OutputTokens int `json:"output_tokens"`
				} `json:"usage"`
			}
			if err := json.Unmarshal(data, &v); err != nil {
				t.Error(err)
				return 0, false, false
			}
			return v.Usage.OutputTokens, v.StopReason == "max_tokens", true
		case http.StatusTooManyRequests:
			rc.client429.Add(1)
			if resp.Header.Get(gateway.HeaderShouldRetry) == "false" || attempt >= rc.sc.Workload.MaxRetries {
				return 0, false, false
			}
			if s := resp.Header.Get("Retry-After"); s != "" {
				n, err := strconv.Atoi(s)
				if err != nil {
					t.Errorf("Retry-After %q", s)
					return 0, false, false
				}
				// Honoured exactly; the gateway's clock is real, not compressed.
				time.Sleep(time.Duration(n) * time.Second)
				continue
			}
			sleepScaled(backoff(attempt+1, jitter))
		default:
			t.Errorf("status %d: %s", resp.StatusCode, data)
			return 0, false, false
		}
	}
}

// invokeBody is an InvokeModel body whose input Bedrock's estimator (the
// one the emulator and the gateway use) counts as exactly input tokens.
func invokeBody(maxTokens, input int) []byte {
	build := func(n int) []byte {
		return fmt.Appendf(nil, `{"anthropic_version":"bedrock-2023-05-31","max_tokens":%d,"messages":[{"role":"user","content":"%s"}]}`,
			maxTokens, strings.Repeat("x", n))
	}
	n := max(0, 4*(input-bedrock.EstimateTokens(build(0))))
	for bedrock.EstimateTokens(build(n)) < input {
		n++
	}
	for n > 0 && bedrock.EstimateTokens(build(n-1)) >= input {
		n--
	}
	return build(n)
}
