package simulate

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAgendaOrder(t *testing.T) {
	var a agenda
	r := rand.New(rand.NewPCG(1, 2))
	type key struct {
		at  int64
		seq uint64
	}
	for range 5000 {
		a.push(event{at: int64(r.IntN(100))})
	}
	var prev key
	for i := 0; a.len() > 0; i++ {
		e := a.pop()
		k := key{e.at, e.seq}
		if i > 0 && (k.at < prev.at || k.at == prev.at && k.seq < prev.seq) {
			t.Fatalf("event %d %+v came after %+v", i, k, prev)
		}
		prev = k
	}
}

func TestBackoff(t *testing.T) {
	// Claude Code: 500 ms doubling, capped at 32 s, up to 25% jitter; ten
	// retries wait about three minutes in all.
	r := rand.New(rand.NewPCG(1, 1))
	var total time.Duration
	for attempt := 1; attempt <= 10; attempt++ {
		d := backoff(attempt, r)
		base := min(500*time.Millisecond<<(attempt-1), 32*time.Second)
		if d < base || d > base+base/4 {
			t.Errorf("attempt %d: %v outside [%v, %v]", attempt, d, base, base+base/4)
		}
		total += d
	}
	if total < 159*time.Second || total > 200*time.Second {
		t.Errorf("ten retries wait %v, want about three minutes", total)
	}
}

func TestGenerate(t *testing.T) {
	tests := []struct {
		name                   string
		output, thinking, tool int
		maxTokens, budget      int
		adaptive               bool
		wantThink, wantText    int
		wantTruncated          bool
	}{
		{"fits", 500, 0, 0, 32000, 31999, false, 0, 500, false},
		{"thinking fits", 500, 300, 0, 32000, 31999, false, 300, 500, false},
		{"answer cut at the cap", 5000, 0, 0, 4096, 4095, false, 0, 4096, true},
		{"thinking capped by budget", 500, 3000, 0, 4096, 1024, false, 1024, 500, false},
		{"thinking and answer cut", 4000, 1000, 0, 4096, 4095, false, 1000, 3096, true},
		{"thinking leaves one token", 10, 5000, 0, 4096, 4095, false, 4095, 1, true},
		{"tool call fits", 0, 0, 6000, 16000, 15999, false, 0, 6000, false},
		{"tool call cut", 0, 0, 6000, 4096, 4095, false, 0, 4096, true},
		{"adaptive thinking has no budget", 500, 3000, 0, 128000, 0, true, 3000, 500, false},
		{"adaptive thinking fills max_tokens", 500, 5000, 0, 4096, 0, true, 4096, 0, true},
		{"adaptive thinking and a tool call cut", 0, 1000, 3500, 4096, 0, true, 1000, 3096, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &call{plan: callPlan{output: tc.output, thinking: tc.thinking, tool: tc.tool}}
			c.generate(tc.maxTokens, tc.budget, tc.adaptive)
			got := []any{c.thinkingOut, c.textOut, c.truncated}
			want := []any{tc.wantThink, tc.wantText, tc.wantTruncated}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// scriptDoor answers each attempt from a script of outcomes, in order,
// and records when attempts arrive. The last outcome repeats.
type scriptDoor struct {
	script []outcome
	sent   []time.Duration
}

type outcome struct {
	answer     bool
	retryAfter time.Duration
	noRetry    bool
}

func (d *scriptDoor) send(w *world, c *call) {
	d.sent = append(d.sent, time.Duration(w.now))
	o := d.script[min(len(d.sent), len(d.script))-1]
	c.generateAt(c.clientAsk(w.st))
	if o.answer {
		w.answer(c, w.profile.Admission(c.demand(), c.m.burndown))
		return
	}
	w.refuse(c, o.retryAfter, o.noRetry, o.retryAfter > 0)
}
func (d *scriptDoor) done(*world, *call) {}
func (d *scriptDoor) wake(*world, *call) {}

// oneCallScenario is one developer running one task of one call, with no
// background calls, so that the script decides its fate.
func oneCallScenario(t *testing.T) *Scenario {
	t.Helper()
	sc, err := ParseScenario([]byte(`
name: one-call
buckets: [{name: d, kind: tpd, limit: 1000000}]
team: 1
workload:
  tasks_per_day: 1
  start_within_minutes: 0
  calls_per_task: {min: 1, max: 1}
  output: {median: 100, p95: 100}
  thinking: {probability: 0}
  background: {probability: 0}
  latency: {throttle_seconds: 0}
`))
	if err != nil {
		t.Fatal(err)
	}
	return &sc
}

func runScript(t *testing.T, sc *Scenario, script []outcome) (*world, *scriptDoor) {
	t.Helper()
	d := &scriptDoor{script: script}
	st, _ := ParseStrategies("direct-defaults")
	w, err := newWorld(sc, st[0], 1, func(*world) (frontDoor, error) { return d, nil })
	if err != nil {
		t.Fatal(err)
	}
	w.run()
	return w, d
}

func TestClientRetries(t *testing.T) {
	sc := oneCallScenario(t)
	t.Run("gives up after max_retries", func(t *testing.T) {
		w, d := runScript(t, sc, []outcome{{}})
		if got, want := len(d.sent), 1+sc.Workload.MaxRetries; got != want {
			t.Errorf("attempts %d, want %d", got, want)
		}
		if got := []int{w.stats.completed, w.stats.failed, w.stats.client429}; !cmp.Equal(got, []int{0, 1, 11}) {
			t.Errorf("completed, failed, 429s = %v, want [0 1 11]", got)
		}
		waited := d.sent[len(d.sent)-1] - d.sent[0]
		if waited < 159*time.Second || waited > 200*time.Second {
			t.Errorf("retried for %v, want about three minutes", waited)
		}
	})
	t.Run("honours Retry-After exactly", func(t *testing.T) {
		w, d := runScript(t, sc, []outcome{{retryAfter: 7 * time.Second}, {retryAfter: 3 * time.Second}, {answer: true}})
		gaps := []time.Duration{d.sent[1] - d.sent[0], d.sent[2] - d.sent[1]}
		if diff := cmp.Diff([]time.Duration{7 * time.Second, 3 * time.Second}, gaps); diff != "" {
			t.Errorf("retry gaps (-want +got):\n%s", diff)
		}
		if w.stats.completed != 1 {
			t.Errorf("completed %d, want 1", w.stats.completed)
		}
	})
	t.Run("x-should-retry false gives up at once", func(t *testing.T) {
		w, d := runScript(t, sc, []outcome{{retryAfter: time.Hour, noRetry: true}})
		if got := []int{len(d.sent), w.stats.failed, w.stats.gaveUpNoRetry}; !cmp.Equal(got, []int{1, 1, 1}) {
			t.Errorf("attempts, failed, gave up = %v, want [1 1 1]", got)
		}
	})
}

// runStrategy runs the scenario under the named strategy with every call
// answered at once.
func runStrategy(t *testing.T, sc *Scenario, name string) (*world, *scriptDoor) {
	t.Helper()
	st, err := ParseStrategies(name)
	if err != nil {
		t.Fatal(err)
	}
	d := &scriptDoor{script: []outcome{{answer: true}}}
	w, err := newWorld(sc, st[0], 1, func(*world) (frontDoor, error) { return d, nil })
	if err != nil {
		t.Fatal(err)
	}
	w.run()
	return w, d
}

func TestCutTextTakesRecoveryTurns(t *testing.T) {
	sc := oneCallScenario(t)
	sc.Workload.Output = Spread{Median: 10000, P95: 10000}
	sc.Workload.PromptCaching = false
	// 10,000 tokens at max_tokens 32,000: one call.
	if _, d := runStrategy(t, sc, "direct-defaults"); len(d.sent) != 1 {
		t.Fatalf("defaults: %d calls, want 1", len(d.sent))
	}
	// 10,000 tokens at 4,096: 4,096 + 4,096 + 1,808, three calls, two
	// cut, each recovery turn re-reading the answer so far.
	w, d := runStrategy(t, sc, "direct-4096")
	got := []int{len(d.sent), w.stats.truncated, w.stats.recoveryTurns, w.stats.completed, int(w.stats.cutOutput)}
	if diff := cmp.Diff([]int{3, 2, 2, 1, 8192}, got); diff != "" {
		t.Errorf("calls, cut, recovery turns, completed, cut tokens (-want +got):\n%s", diff)
	}
}

func TestTextStillCutAfterThreeRecoveryTurnsFailsTheTask(t *testing.T) {
	sc := oneCallScenario(t)
	sc.Workload.Output = Spread{Median: 20000, P95: 20000}
	// 20,000 tokens at 4,096: the first call and three recovery turns
	// write 16,384; the turn fails, as Claude Code fails it.
	w, d := runStrategy(t, sc, "direct-4096")
	got := []int{len(d.sent), w.stats.failed, w.stats.capFailedText, w.stats.completed}
	if diff := cmp.Diff([]int{4, 1, 1, 0}, got); diff != "" {
		t.Errorf("calls, failed, failed by the cap, completed (-want +got):\n%s", diff)
	}
	sc.Workload.RecoveryTurns = 4
	if w, _ := runStrategy(t, sc, "direct-4096"); w.stats.completed != 1 {
		t.Errorf("with 4 recovery turns: completed %d, want 1", w.stats.completed)
	}
}

func TestCutToolCallIsRepeatedWholeThenFails(t *testing.T) {
	sc := oneCallScenario(t)
	sc.Workload.ToolCalls = ToolCalls{Probability: 1, Size: Pareto{Min: 6000, Alpha: 100, Max: 6000}, Retries: 3}
	sc.Workload.PromptCaching = false
	// A 6,000-token Write at 4,096: cut, repeated whole three times, cut
	// each time; 4 × 4,096 output tokens burned, no file, the task fails.
	w, d := runStrategy(t, sc, "direct-4096")
	got := []int{len(d.sent), w.stats.toolRetries, w.stats.failed, w.stats.capFailedTool, int(w.stats.cutOutput)}
	if diff := cmp.Diff([]int{4, 3, 1, 1, 4 * 4096}, got); diff != "" {
		t.Errorf("calls, repeats, failed, failed by the cap, cut tokens (-want +got):\n%s", diff)
	}
	// Each repeat re-reads the conversation: the cut call and the error.
	// At 32,000 the same task completes in one call.
	w, d = runStrategy(t, sc, "direct-defaults")
	if got := []int{len(d.sent), w.stats.completed, w.stats.truncated}; !cmp.Equal(got, []int{1, 1, 0}) {
		t.Errorf("defaults: calls, completed, cut = %v, want [1 1 0]", got)
	}
}

func TestJain(t *testing.T) {
	tests := []struct {
		xs     []float64
		want   float64
		wantOK bool
	}{
		{[]float64{1, 1, 1, 1}, 1, true},
		{[]float64{1, 0, 0, 0}, 0.25, true},
		{[]float64{2, 1}, 0.9, true},
		{[]float64{0, 0}, 0, false},
		{nil, 0, false},
	}
	for _, tc := range tests {
		got, ok := jain(tc.xs)
		if ok != tc.wantOK || got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("jain(%v) = %v, %v; want %v, %v", tc.xs, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestSpread(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	s := Spread{Median: 250, P95: 3000}
	xs := make([]float64, 20000)
	for i := range xs {
		xs[i] = s.draw(r)
	}
	if got := quantile(xs, 0.5); got < 235 || got > 265 {
		t.Errorf("median %v, want about 250", got)
	}
	if got := quantile(xs, 0.95); got < 2700 || got > 3300 {
		t.Errorf("p95 %v, want about 3000", got)
	}
	if got := (Spread{Median: 5, P95: 50, Max: 10}).draw(r); got > 10 {
		t.Errorf("max not applied: %v", got)
	}
}

// TestNoTaskIsLost runs a busy day under every strategy and checks that
// every task still open at the end started late in the day: a call that
// never got an answer or a 429 (a lost gateway decision) would leave its
// task stuck for hours.
func TestNoTaskIsLost(t *testing.T) {
	sc, err := Builtin("heavy-user")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range strategies {
		t.Run(st.Name, func(t *testing.T) {
			w, err := newWorld(&sc, st, sc.Seed, doorFor(st))
			if err != nil {
				t.Fatal(err)
			}
			w.run()
			if w.err != nil {
				t.Fatal(w.err)
			}
			for _, d := range w.devs {
				if d.task != nil && time.Duration(w.end-d.task.start) > 2*time.Hour {
					t.Errorf("%s: task started at %v still open at the end of the day", d.name, time.Duration(d.task.start))
				}
			}
			if st.Topology == Gateway {
				gd := w.door.(*gatewayDoor)
				if len(gd.waiting) > 0 && gd.wakeAt < 0 {
					t.Errorf("%d calls wait in the gateway with no wake scheduled", len(gd.waiting))
				}
			}
		})
	}
}
