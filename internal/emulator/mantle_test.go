package emulator

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
)

const opus47 = "anthropic.claude-opus-4-7"

func inputTPM(name string, limit int64, models ...string) config.Bucket {
	return config.Bucket{Name: name, Kind: config.KindInputTPM, Limit: limit, Scope: bedrock.Scope{Models: models}}
}

func outputTPM(name string, limit int64, models ...string) config.Bucket {
	return config.Bucket{Name: name, Kind: config.KindOutputTPM, Limit: limit, Scope: bedrock.Scope{Models: models}}
}

// mantleRegion1 is one region us-east-1 with Mantle buckets only.
func mantleOnly(buckets ...config.Bucket) config.Emulator {
	cfg := oneRegion()
	cfg.Regions[0].Mantle = buckets
	return cfg
}

// mantleLedger is what a test reads of one region's Mantle buckets.
type mantleLedger map[string][3]int64 // bucket name: used, held, available

func ledgerOf(t *testing.T, a *Account, now time.Time) mantleLedger {
	t.Helper()
	l := mantleLedger{}
	for _, b := range a.State(now).Regions[0].Mantle {
		l[b.Name] = [3]int64{b.Used, b.Reserved, b.Available}
	}
	return l
}

// mantleStep is one event of a table: at a time after t0, admit request id
// (with demand), count output generated so far, or settle it.
type mantleStep struct {
	at     time.Duration
	op     string // "admit", "adjust", "settle"
	id     string
	demand bedrock.Demand
	output int // adjust, settle: output tokens so far

	wantRefused string        // admit: the bucket that refuses, "" for admitted
	wantRefill  time.Duration // admit refused: ThrottleError.Refill
	want        mantleLedger  // after the step; nil: not checked
}

func runMantleSteps(t *testing.T, cfg config.Emulator, model string, steps []mantleStep) {
	t.Helper()
	a, err := NewAccount(cfg, t0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := bedrock.ParseModel(model)
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]*MantleReservation{}
	for i, st := range steps {
		now := t0.Add(st.at)
		switch st.op {
		case "admit":
			r, err := a.AdmitMantle(now, Call{ID: st.id, Region: "us-east-1", Model: m, Demand: st.demand})
			var te *ThrottleError
			switch {
			case st.wantRefused == "" && err != nil:
				t.Fatalf("step %d: admit %s: %v", i, st.id, err)
			case st.wantRefused != "" && !errors.As(err, &te):
				t.Fatalf("step %d: admit %s: got %v, want refused by %s", i, st.id, err, st.wantRefused)
			case st.wantRefused != "":
				if te.Bucket != st.wantRefused || te.Refill != st.wantRefill {
					t.Errorf("step %d: refused by %s, refill %v; want %s, refill %v (%v)", i, te.Bucket, te.Refill, st.wantRefused, st.wantRefill, te)
				}
			default:
				live[st.id] = r
			}
		case "adjust":
			live[st.id].Adjust(now, bedrock.Usage{OutputTokens: st.output})
		case "settle":
			live[st.id].Settle(now, bedrock.Usage{OutputTokens: st.output})
		}
		if st.want != nil {
			if d := cmp.Diff(st.want, ledgerOf(t, a, now)); d != "" {
				t.Errorf("step %d (%s %s at %v): ledger [used held available] (-want +got):\n%s", i, st.op, st.id, st.at, d)
			}
		}
	}
}

func TestMantleLedger(t *testing.T) {
	buckets := []config.Bucket{inputTPM("in", 1000), outputTPM("out", 100)}
	d := func(input, cacheWrite, cacheRead, maxTokens int) bedrock.Demand {
		return bedrock.Demand{InputTokens: input, CacheWriteTokens: cacheWrite, CacheReadTokens: cacheRead, MaxTokens: maxTokens}
	}
	tests := []struct {
		name    string
		windows string
		steps   []mantleStep
	}{
		{"input: admission charges input + cacheWrite + max_tokens, settles to input + cacheWrite", config.MinuteRefill, []mantleStep{
			{op: "admit", id: "a", demand: d(100, 50, 0, 500), want: mantleLedger{"in": {150, 500, 350}, "out": {0, 0, 100}}},
			// 150 + 200 = 350 fits exactly.
			{op: "admit", id: "b", demand: d(150, 0, 0, 200), want: mantleLedger{"in": {300, 700, 0}, "out": {0, 0, 100}}},
			{op: "admit", id: "c", demand: d(1, 0, 0, 0), wantRefused: "in", wantRefill: 60 * time.Millisecond},
			// Output goes to the output bucket only; max_tokens comes back.
			{op: "settle", id: "a", output: 40, want: mantleLedger{"in": {300, 200, 500}, "out": {40, 0, 60}}},
			// 6 s refill 100 of the 300 used.
			{at: 6 * time.Second, op: "settle", id: "b", output: 10, want: mantleLedger{"in": {200, 0, 800}, "out": {40, 0, 60}}}, // out: 40 - 10 refilled + 10
		}},
		{"input: cache reads never count", config.MinuteRefill, []mantleStep{
			{op: "admit", id: "a", demand: d(100, 0, 1_000_000, 900), want: mantleLedger{"in": {100, 900, 0}, "out": {0, 0, 100}}},
			{op: "settle", id: "a", output: 0, want: mantleLedger{"in": {100, 0, 900}, "out": {0, 0, 100}}},
		}},
		{"input: refused until the window refills what is used", config.MinuteRefill, []mantleStep{
			{op: "admit", id: "a", demand: d(600, 0, 0, 100)},
			{op: "settle", id: "a", want: mantleLedger{"in": {600, 0, 400}, "out": {0, 0, 100}}},
			// 700 needs 300 more than the 400 free: 300/1000 of a minute.
			{op: "admit", id: "b", demand: d(600, 0, 0, 100), wantRefused: "in", wantRefill: 18 * time.Second},
			{at: 18*time.Second - time.Millisecond, op: "admit", id: "b", demand: d(600, 0, 0, 100), wantRefused: "in", wantRefill: time.Millisecond},
			{at: 18 * time.Second, op: "admit", id: "b", demand: d(600, 0, 0, 100), want: mantleLedger{"in": {900, 100, 0}, "out": {0, 0, 100}}},
		}},
		{"input: what is held comes back only when its request ends", config.MinuteRefill, []mantleStep{
			{op: "admit", id: "a", demand: d(0, 0, 0, 900)},
			{op: "admit", id: "b", demand: d(200, 0, 0, 0), wantRefused: "in", wantRefill: 0},
			{at: time.Hour, op: "admit", id: "b", demand: d(200, 0, 0, 0), wantRefused: "in", wantRefill: 0},
			{at: time.Hour, op: "settle", id: "a"},
			{at: time.Hour, op: "admit", id: "b", demand: d(200, 0, 0, 0), want: mantleLedger{"in": {200, 0, 800}, "out": {0, 0, 100}}},
		}},
		{"input: a charge above the limit never fits", config.MinuteRefill, []mantleStep{
			{op: "admit", id: "a", demand: d(1, 0, 0, 1000), wantRefused: "in", wantRefill: 0, want: mantleLedger{"in": {0, 0, 1000}, "out": {0, 0, 100}}},
			{op: "admit", id: "a", demand: d(0, 0, 0, 1000), want: mantleLedger{"in": {0, 1000, 0}, "out": {0, 0, 100}}},
		}},
		{"output: charged as generated, refused only in debt", config.MinuteRefill, []mantleStep{
			{op: "admit", id: "a", demand: d(10, 0, 0, 300)},
			{op: "adjust", id: "a", output: 60, want: mantleLedger{"in": {10, 300, 690}, "out": {60, 0, 40}}},
			{op: "adjust", id: "a", output: 50, want: mantleLedger{"in": {10, 300, 690}, "out": {60, 0, 40}}}, // never shrinks
			{op: "adjust", id: "a", output: 100},
			// used == limit is not debt.
			{op: "admit", id: "b", demand: d(10, 0, 0, 10)},
			{op: "settle", id: "a", output: 150, want: mantleLedger{"in": {20, 10, 970}, "out": {150, 0, 0}}},
			// 50 in debt: 50/100 of a minute to repay.
			{op: "admit", id: "c", demand: d(10, 0, 0, 10), wantRefused: "out", wantRefill: 30 * time.Second},
			// A refused request took nothing from the input bucket.
			{at: time.Second, op: "settle", id: "b", output: 0},
			{at: 30 * time.Second, op: "admit", id: "c", demand: d(10, 0, 0, 10), want: mantleLedger{"in": {10, 10, 980}, "out": {100, 0, 0}}},
		}},
		{"clock minutes", config.MinuteClock, []mantleStep{
			{at: 10 * time.Second, op: "admit", id: "a", demand: d(900, 0, 0, 0)},
			{at: 10 * time.Second, op: "settle", id: "a", output: 200},
			{at: 20 * time.Second, op: "admit", id: "b", demand: d(50, 0, 0, 0), wantRefused: "out", wantRefill: 40 * time.Second},
			{at: 20 * time.Second, op: "admit", id: "b", demand: d(0, 0, 0, 0), wantRefused: "out", wantRefill: 40 * time.Second},
			{at: 60 * time.Second, op: "admit", id: "b", demand: d(950, 0, 0, 0), want: mantleLedger{"in": {950, 0, 50}, "out": {0, 0, 100}}},
		}},
		{"settle twice counts once", config.MinuteRefill, []mantleStep{
			{op: "admit", id: "a", demand: d(10, 0, 0, 90)},
			{op: "settle", id: "a", output: 20},
			{op: "settle", id: "a", output: 70, want: mantleLedger{"in": {10, 0, 990}, "out": {20, 0, 80}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mantleOnly(buckets...)
			cfg.Windows.Minute = tt.windows
			runMantleSteps(t, cfg, opus47, tt.steps)
		})
	}
}

// TestMantleMatch: a model draws from the first bucket of each kind that
// matches it; other models are not limited; runtime buckets are untouched.
func TestMantleMatch(t *testing.T) {
	cfg := mantleOnly(
		inputTPM("opus-5-5-in", 100, "claude-opus-5-5"),
		inputTPM("opus-5-in", 1000, "claude-opus-5"),
		outputTPM("opus-5-out", 1000, "claude-opus-5"),
	)
	cfg.Regions[0].Buckets = []config.Bucket{tpm(50)}
	a, err := NewAccount(cfg, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		model       string
		maxTokens   int
		wantRefused string
	}{
		{"anthropic.claude-opus-5-5", 101, "opus-5-5-in"},
		{"anthropic.claude-opus-5-5", 100, ""},
		{"anthropic.claude-opus-5", 1001, "opus-5-in"},
		{"us.anthropic.claude-opus-5", 1000, ""},
		{"anthropic.claude-sonnet-5", 1_000_000, ""},
	} {
		m, _ := bedrock.ParseModel(tt.model)
		r, err := a.AdmitMantle(t0, Call{ID: "x", Region: "us-east-1", Model: m, Demand: bedrock.Demand{MaxTokens: tt.maxTokens}})
		var te *ThrottleError
		if tt.wantRefused != "" {
			if !errors.As(err, &te) || te.Bucket != tt.wantRefused {
				t.Errorf("%s with %d: got %v, want refused by %s", tt.model, tt.maxTokens, err, tt.wantRefused)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s with %d: %v", tt.model, tt.maxTokens, err)
			continue
		}
		r.Settle(t0, bedrock.Usage{})
	}
	st := a.State(t0).Regions[0]
	if got := st.Buckets[0].Used + st.Buckets[0].Reserved; got != 0 {
		t.Errorf("the runtime bucket took %d from Mantle requests", got)
	}
	if _, err := a.AdmitMantle(t0, Call{Region: "mars-west-1"}); !errors.As(err, new(*UnknownRegionError)) {
		t.Errorf("unknown region: got %v", err)
	}
}

func TestMantleScenarios(t *testing.T) {
	m, _ := bedrock.ParseModel("anthropic.claude-opus-5-5")
	t.Run("new-account", func(t *testing.T) {
		cfg := config.DefaultEmulator()
		cfg.Scenario = config.ScenarioNewAccount
		a, err := NewAccount(cfg, t0)
		if err != nil {
			t.Fatal(err)
		}
		// Claude Code's call: about 12,000 input tokens and max_tokens 128,000.
		call := Call{ID: "claude", Region: "us-west-2", Model: m, Demand: bedrock.Demand{InputTokens: 12_000, MaxTokens: 128_000}}
		r, err := a.AdmitMantle(t0, call)
		if err != nil {
			t.Fatalf("first call: %v", err)
		}
		var te *ThrottleError
		if _, err := a.AdmitMantle(t0, call); !errors.As(err, &te) || te.Kind != config.KindInputTPM || te.Limit != newAccountInputTPM {
			t.Errorf("second call at once: got %v, want refused by the %d input bucket", err, newAccountInputTPM)
		}
		r.Settle(t0, bedrock.Usage{OutputTokens: 50_000})
		if _, err := a.AdmitMantle(t0, call); !errors.As(err, &te) || te.Kind != config.KindOutputTPM || te.Limit != newAccountOutputTPM {
			t.Errorf("after 50,000 output: got %v, want refused by the %d output bucket", err, newAccountOutputTPM)
		}
	})
	t.Run("default limits", func(t *testing.T) {
		a, err := NewAccount(config.DefaultEmulator(), t0)
		if err != nil {
			t.Fatal(err)
		}
		for _, rs := range a.State(t0).Regions {
			limits := map[string]int64{}
			for _, b := range rs.Mantle {
				limits[b.Kind] += b.Limit
			}
			// Eight models, BEDROCK.md section 6: 10M input, 2M output each.
			if d := cmp.Diff(map[string]int64{config.KindInputTPM: 80_000_000, config.KindOutputTPM: 16_000_000}, limits); d != "" {
				t.Errorf("%s: Mantle limits (-want +got):\n%s", rs.Name, d)
			}
		}
	})
	t.Run("saturated", func(t *testing.T) {
		cfg := mantleOnly(inputTPM("in", 1000), outputTPM("out", 1000))
		cfg.Scenario = config.ScenarioSaturated
		a, err := NewAccount(cfg, t0)
		if err != nil {
			t.Fatal(err)
		}
		call := Call{ID: "x", Region: "us-east-1", Model: m, Demand: bedrock.Demand{InputTokens: 1}}
		if _, err := a.AdmitMantle(t0, call); !errors.As(err, new(*ThrottleError)) {
			t.Errorf("saturated: got %v, want throttled", err)
		}
		a.Reset(t0)
		if _, err := a.AdmitMantle(t0, call); err != nil {
			t.Errorf("after reset: %v", err)
		}
	})
}

// TestMantleQueue: in queue mode a request that does not fit waits up to
// max_wait for a request to end or the window to refill (synctest's clock).
func TestMantleQueue(t *testing.T) {
	m, _ := bedrock.ParseModel(opus47)
	call := func(id string, input, maxTokens int) Call {
		return Call{ID: id, Region: "us-east-1", Model: m, Demand: bedrock.Demand{InputTokens: input, MaxTokens: maxTokens}}
	}
	newServer := func(t *testing.T, maxWait time.Duration) *Server {
		cfg := mantleOnly(inputTPM("in", 1000), outputTPM("out", 100))
		cfg.Mantle.Queue.MaxWait = config.Duration{Duration: maxWait}
		s, err := New(cfg, slog.New(slog.DiscardHandler), time.Now)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// admitAfter admits c and reports how long it waited and how it ended.
	admitAfter := func(s *Server, c Call) (time.Duration, *MantleReservation, error) {
		start := time.Now()
		r, err := s.admitMantle(context.Background(), c)
		return time.Since(start), r, err
	}

	tests := []struct {
		name       string
		maxWait    time.Duration
		hold       Call          // admitted first, holding the bucket
		settleAt   time.Duration // when hold ends (0: never)
		next       Call
		wantWait   time.Duration
		wantRefuse bool
	}{
		{"refused at once without a queue", 0, call("a", 0, 1000), time.Second, call("b", 0, 10), 0, true},
		{"admitted when the holder ends", 2 * time.Second, call("a", 0, 1000), time.Second, call("b", 0, 10), time.Second, false},
		{"refused when the wait is over", 2 * time.Second, call("a", 0, 1000), 3 * time.Second, call("b", 0, 10), 2 * time.Second, true},
		{"admitted when the window refills", 30 * time.Second, call("a", 900, 0), 0, call("b", 300, 0), 12 * time.Second, false},
		{"refill too late", 2 * time.Second, call("a", 900, 0), 0, call("b", 300, 0), 2 * time.Second, true},
		{"above the limit: refused at once", 2 * time.Second, call("a", 0, 0), 0, call("b", 1, 1000), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newServer(t, tt.maxWait)
				hold, err := s.account.AdmitMantle(time.Now(), tt.hold)
				if err != nil {
					t.Fatal(err)
				}
				settled := make(chan struct{})
				go func() {
					defer close(settled)
					if tt.settleAt > 0 {
						time.Sleep(tt.settleAt)
						hold.Settle(time.Now(), bedrock.Usage{})
					}
				}()
				wait, r, err := admitAfter(s, tt.next)
				if refused := errors.As(err, new(*ThrottleError)); refused != tt.wantRefuse || (!refused && err != nil) {
					t.Errorf("got %v, want refused %v", err, tt.wantRefuse)
				}
				if wait != tt.wantWait {
					t.Errorf("waited %v, want %v", wait, tt.wantWait)
				}
				if r != nil {
					r.Settle(time.Now(), bedrock.Usage{})
				}
				<-settled
			})
		})
	}

	t.Run("a client that leaves stops waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newServer(t, time.Minute)
			if _, err := s.account.AdmitMantle(time.Now(), call("a", 0, 1000)); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if _, err := s.admitMantle(ctx, call("b", 0, 1)); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got %v, want the context's error", err)
			}
		})
	})
}
