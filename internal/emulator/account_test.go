package emulator

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
)

func model(t *testing.T, id string) bedrock.Model {
	t.Helper()
	m, err := bedrock.ParseModel(id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newAccount(t *testing.T, cfg config.Emulator) *Account {
	t.Helper()
	a, err := NewAccount(cfg, t0)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// usedReserved is a bucket's (used, reserved) in a State.
type usedReserved struct{ Used, Reserved int64 }

func bucketsOf(st State, region string) map[string]usedReserved {
	out := map[string]usedReserved{}
	for _, r := range st.Regions {
		if r.Name == region {
			for _, b := range r.Buckets {
				out[b.Name] = usedReserved{b.Used, b.Reserved}
			}
		}
	}
	return out
}

// TestSeedFigures: the seed profile reproduces the user story's numbers
// (BEDROCK.md section 1) for Sonnet 4.
func TestSeedFigures(t *testing.T) {
	a := newAccount(t, config.DefaultEmulator())
	m := model(t, sonnet4)
	tests := []struct {
		name   string
		demand bedrock.Demand
		want   int64
	}{
		{"max_tokens unset (64,000)", bedrock.Demand{InputTokens: 1000, MaxTokens: bedrock.DefaultMaxOutput(m)}, 321_000},
		{"Claude Code default 32,000", bedrock.Demand{MaxTokens: 32_000}, 160_000},
		{"4,096", bedrock.Demand{MaxTokens: 4096}, 20_480},
		{"below the 4,096 floor", bedrock.Demand{MaxTokens: 1}, 20_480},
	}
	for _, tt := range tests {
		if got := a.Charge(m, tt.demand); got != tt.want {
			t.Errorf("%s: charge = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestReservationLifecycle replays admit, adjust and settle steps and checks
// the bucket after each, under both profiles.
func TestReservationLifecycle(t *testing.T) {
	type step struct {
		do     string // admit, adjust, settle
		output int    // output tokens so far (adjust, settle)
		want   usedReserved
		charge int64 // settle's return
	}
	tests := []struct {
		profile string
		steps   []step
	}{
		{"seed", []step{
			// 1,000 + 4,096 × 5 reserved.
			{do: "admit", want: usedReserved{0, 21_480}},
			// 1,000 + 100 × 5 moves from reserved to used.
			{do: "adjust", output: 100, want: usedReserved{1_500, 19_980}},
			// A smaller figure changes nothing: usage never shrinks.
			{do: "adjust", output: 50, want: usedReserved{1_500, 19_980}},
			// Settling at 200 output: 2,000 used, the rest given back.
			{do: "settle", output: 200, want: usedReserved{2_000, 0}, charge: 2_000},
			// A second settle does nothing.
			{do: "settle", output: 4000, want: usedReserved{2_000, 0}, charge: 2_000},
		}},
		{"aws", []step{
			// 1,000 + 4,096 reserved.
			{do: "admit", want: usedReserved{0, 5_096}},
			{do: "adjust", output: 100, want: usedReserved{1_500, 3_596}},
			// 1,000 + 1,000 × 5 = 6,000 exceeds the reservation: charged anyway.
			{do: "adjust", output: 1_000, want: usedReserved{6_000, 0}},
			{do: "settle", output: 1_200, want: usedReserved{7_000, 0}, charge: 7_000},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.profile, func(t *testing.T) {
			cfg := oneRegion(tpm(1_000_000))
			cfg.Accounting.Profile = tt.profile
			a := newAccount(t, cfg)
			var res *Reservation
			for i, s := range tt.steps {
				u := bedrock.Usage{InputTokens: 1000, OutputTokens: s.output}
				switch s.do {
				case "admit":
					var err error
					res, err = a.Admit(t0, Call{ID: "r", Region: "us-east-1", Model: model(t, sonnet4), Demand: bedrock.Demand{InputTokens: 1000, MaxTokens: 4096}})
					if err != nil {
						t.Fatal(err)
					}
				case "adjust":
					res.Adjust(t0, u)
				case "settle":
					if got := res.Settle(t0, u); got != s.charge {
						t.Errorf("step %d: settle = %d, want %d", i, got, s.charge)
					}
				}
				if got := bucketsOf(a.State(t0), "us-east-1")["tpm"]; got != s.want {
					t.Errorf("step %d (%s %d): got %+v, want %+v", i, s.do, s.output, got, s.want)
				}
			}
			if n := a.State(t0).inFlight("us-east-1"); n != 0 {
				t.Errorf("%d requests still in flight after settling", n)
			}
		})
	}
}

// TestAdmitAllOrNothing: a request one bucket refuses takes nothing from
// the others, and the message names the daily limit first.
func TestAdmitAllOrNothing(t *testing.T) {
	a := newAccount(t, oneRegion(tpm(30_000), tpd(25_000), rpm(100)))
	m := model(t, sonnet4)
	call := func(maxTokens int) error {
		_, err := a.Admit(t0, Call{Region: "us-east-1", Model: m, Demand: bedrock.Demand{InputTokens: 100, MaxTokens: maxTokens}})
		return err
	}
	if err := call(4096); err != nil { // 20,580 fits both
		t.Fatal(err)
	}
	before := bucketsOf(a.State(t0), "us-east-1")
	err := call(4096) // needs 20,580: 9,420 left in tpm, 4,420 in tpd
	var te *ThrottleError
	if !errors.As(err, &te) {
		t.Fatalf("got %v, want *ThrottleError", err)
	}
	if got, want := [2]string{te.Bucket, te.Message()}, [2]string{"tpd", bedrock.MsgTooManyTokensPerDay}; got != want {
		t.Errorf("refused by %v, want %v", got, want)
	}
	if d := cmp.Diff(before, bucketsOf(a.State(t0), "us-east-1")); d != "" {
		t.Errorf("a refused request changed the buckets (-before +after):\n%s", d)
	}
}

func TestRequestsPerMinute(t *testing.T) {
	a := newAccount(t, oneRegion(rpm(2)))
	m := model(t, sonnet4)
	var got []string
	// Refill gives back 2 requests per minute: 1 after 30 s.
	for _, now := range []time.Time{t0, t0, t0, t0.Add(30 * time.Second)} {
		_, err := a.Admit(now, Call{Region: "us-east-1", Model: m, Demand: bedrock.Demand{InputTokens: 1_000_000, MaxTokens: 64_000}})
		var te *ThrottleError
		switch {
		case err == nil:
			got = append(got, "ok")
		case errors.As(err, &te):
			got = append(got, te.Message())
		default:
			t.Fatal(err)
		}
	}
	want := []string{"ok", "ok", bedrock.MsgTooManyRequests, "ok"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("requests-per-minute counts requests, not tokens (-want +got):\n%s", d)
	}
}

// TestWindows: how used expires under each window mode. Each case consumes
// 60,000 at its start time and reads used at later times.
func TestWindows(t *testing.T) {
	tests := []struct {
		name    string
		kind    string
		windows config.Windows
		start   time.Time
		reads   []time.Duration // after start
		want    []int64
	}{
		{"minute refill drains at limit/minute", config.KindTPM, config.Windows{Minute: config.MinuteRefill, Day: config.DayFixed},
			t0, []time.Duration{0, 15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute}, []int64{60_000, 45_000, 30_000, 0, 0}},
		{"clock minute resets on the minute", config.KindTPM, config.Windows{Minute: config.MinuteClock, Day: config.DayFixed},
			t0.Add(30 * time.Second), []time.Duration{0, 29 * time.Second, 30 * time.Second}, []int64{60_000, 60_000, 0}},
		{"fixed day resets at 00 UTC", config.KindTPD, config.Windows{Minute: config.MinuteRefill, Day: config.DayFixed},
			t0, []time.Duration{0, 13*time.Hour + 59*time.Minute, 14 * time.Hour}, []int64{60_000, 60_000, 0}},
		{"fixed day resets at the configured hour", config.KindTPD, config.Windows{Minute: config.MinuteRefill, Day: config.DayFixed, DayResetHourUTC: 11},
			t0, []time.Duration{59 * time.Minute, time.Hour}, []int64{60_000, 0}},
		{"rolling day keeps 24 hours", config.KindTPD, config.Windows{Minute: config.MinuteRefill, Day: config.DayRolling},
			t0, []time.Duration{14 * time.Hour, 23*time.Hour + 59*time.Minute, 24 * time.Hour, 72 * time.Hour}, []int64{60_000, 60_000, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := oneRegion(config.Bucket{Name: "b", Kind: tt.kind, Limit: 60_000})
			cfg.Windows = tt.windows
			cfg.Accounting.Profile = "aws" // no 4,096 floor: the charge is the input
			a, err := NewAccount(cfg, tt.start)
			if err != nil {
				t.Fatal(err)
			}
			res, err := a.Admit(tt.start, Call{Region: "us-east-1", Model: model(t, "meta.llama3-70b"), Demand: bedrock.Demand{InputTokens: 60_000}})
			if err != nil {
				t.Fatal(err)
			}
			res.Settle(tt.start, bedrock.Usage{InputTokens: 60_000})
			var got []int64
			for _, d := range tt.reads {
				got = append(got, bucketsOf(a.State(tt.start.Add(d)), "us-east-1")["b"].Used)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("used over time (-want +got):\n%s", d)
			}
		})
	}
}

// TestRollingDayPartial: with a rolling day, only consumption older than 24
// hours expires.
func TestRollingDayPartial(t *testing.T) {
	cfg := oneRegion(tpd(1_000_000))
	cfg.Windows.Day = config.DayRolling
	a := newAccount(t, cfg)
	m := model(t, "meta.llama3-70b")
	for _, at := range []time.Duration{0, 6 * time.Hour} {
		res, err := a.Admit(t0.Add(at), Call{Region: "us-east-1", Model: m, Demand: bedrock.Demand{InputTokens: 1000}})
		if err != nil {
			t.Fatal(err)
		}
		res.Settle(t0.Add(at), bedrock.Usage{InputTokens: 1000})
	}
	var got []int64
	for _, at := range []time.Duration{23 * time.Hour, 24 * time.Hour, 30 * time.Hour} {
		got = append(got, bucketsOf(a.State(t0.Add(at)), "us-east-1")["tpd"].Used)
	}
	if d := cmp.Diff([]int64{2000, 1000, 0}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// TestScopes: a request draws from the buckets whose scope matches it.
func TestScopes(t *testing.T) {
	cfg := oneRegion(
		config.Bucket{Name: "cross", Kind: config.KindTPM, Limit: 1e6, Scope: bedrock.Scope{Models: []string{"claude-sonnet-4-2025"}, Inference: bedrock.InferenceCrossRegion}},
		config.Bucket{Name: "on-demand", Kind: config.KindTPM, Limit: 1e6, Scope: bedrock.Scope{Models: []string{"claude-sonnet-4-2025"}, Inference: bedrock.InferenceOnDemand}},
		config.Bucket{Name: "haiku", Kind: config.KindTPM, Limit: 1e6, Scope: bedrock.Scope{Models: []string{"claude-haiku-4-5"}}},
		config.Bucket{Name: "account", Kind: config.KindTPD, Limit: 1e9},
	)
	cfg.Accounting.Profile = "aws"
	tests := []struct {
		model string
		want  []string
	}{
		{"us.anthropic.claude-sonnet-4-20250514-v1:0", []string{"cross", "account"}},
		{"arn:aws:bedrock:us-east-1:123456789012:inference-profile%2Feu.anthropic.claude-sonnet-4-20250514-v1%3A0", []string{"cross", "account"}},
		{"anthropic.claude-sonnet-4-20250514-v1:0", []string{"on-demand", "account"}},
		{"global.anthropic.claude-haiku-4-5-20251001-v1:0", []string{"haiku", "account"}},
		{"anthropic.claude-sonnet-4-5-20250929-v1:0", []string{"account"}},
	}
	for _, tt := range tests {
		a := newAccount(t, cfg)
		if _, err := a.Admit(t0, Call{Region: "us-east-1", Model: model(t, tt.model), Demand: bedrock.Demand{MaxTokens: 10}}); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range a.State(t0).Regions[0].Buckets {
			if b.Reserved > 0 {
				got = append(got, b.Name)
			}
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s draws from (-want +got):\n%s", tt.model, d)
		}
	}
}

func TestUnknownRegion(t *testing.T) {
	a := newAccount(t, config.DefaultEmulator())
	_, err := a.Admit(t0, Call{Region: "ap-south-1", Model: model(t, sonnet4)})
	var ue *UnknownRegionError
	if !errors.As(err, &ue) || ue.Region != "ap-south-1" {
		t.Errorf("got %v, want *UnknownRegionError for ap-south-1", err)
	}
}

// TestChargeLargerThanLimit: a charge above a bucket's whole capacity never
// fits, even in an idle account (the seed's 321,000 against 200,000 TPM).
func TestChargeLargerThanLimit(t *testing.T) {
	a := newAccount(t, config.DefaultEmulator())
	m := model(t, sonnet4)
	_, err := a.Admit(t0, Call{Region: "us-east-1", Model: m, Demand: bedrock.Demand{InputTokens: 1000, MaxTokens: 64_000}})
	var te *ThrottleError
	if !errors.As(err, &te) || te.Charge != 321_000 || te.Message() != bedrock.MsgTooManyTokens {
		t.Errorf("got %v, want a per-minute throttle of a 321,000 charge", err)
	}
}

func TestScenarioProvisioningBug(t *testing.T) {
	cfg := config.DefaultEmulator()
	cfg.Scenario = config.ScenarioProvisioningBug
	a := newAccount(t, cfg)
	// Every region, and models with no bucket of their own too.
	for _, region := range a.Regions() {
		for _, id := range []string{sonnet4, "anthropic.claude-3-5-haiku-20241022-v1:0"} {
			_, err := a.Admit(t0, Call{Region: region, Model: model(t, id), Demand: bedrock.Demand{InputTokens: 10, MaxTokens: 1}})
			var te *ThrottleError
			if !errors.As(err, &te) || te.Message() != bedrock.MsgTooManyTokensPerDay {
				t.Errorf("%s %s: got %v, want Too many tokens per day", region, id, err)
			}
		}
	}
}

func TestScenarioSaturated(t *testing.T) {
	cfg := oneRegion(tpm(200_000), tpd(1e9))
	cfg.Scenario = config.ScenarioSaturated
	cfg.Accounting.Profile = "aws"
	a := newAccount(t, cfg)
	c := Call{Region: "us-east-1", Model: model(t, sonnet4), Demand: bedrock.Demand{InputTokens: 10, MaxTokens: 1}}
	_, err := a.Admit(t0.Add(time.Hour), c)
	var te *ThrottleError
	if !errors.As(err, &te) || te.Message() != bedrock.MsgTooManyTokens {
		t.Fatalf("got %v, want Too many tokens", err)
	}
	if got := a.State(t0).inFlight("us-east-1"); got != 1 {
		t.Errorf("in flight = %d, want the other client's 1", got)
	}
	a.Reset(t0)
	if _, err := a.Admit(t0, c); err != nil {
		t.Errorf("after reset: %v", err)
	}
}

// TestResetKeepsInFlight: a reset empties windows but a request in flight
// keeps its reservation, and settles normally.
func TestResetKeepsInFlight(t *testing.T) {
	a := newAccount(t, oneRegion(tpm(100_000)))
	m := model(t, sonnet4)
	done, _ := a.Admit(t0, Call{Region: "us-east-1", Model: m, Demand: bedrock.Demand{MaxTokens: 4096}})
	done.Settle(t0, bedrock.Usage{OutputTokens: 1000})
	open, _ := a.Admit(t0, Call{Region: "us-east-1", Model: m, Demand: bedrock.Demand{MaxTokens: 4096}})
	a.Reset(t0)
	if got, want := bucketsOf(a.State(t0), "us-east-1")["tpm"], (usedReserved{0, 20_480}); got != want {
		t.Errorf("after reset: %+v, want %+v", got, want)
	}
	open.Settle(t0, bedrock.Usage{OutputTokens: 10})
	if got, want := bucketsOf(a.State(t0), "us-east-1")["tpm"], (usedReserved{50, 0}); got != want {
		t.Errorf("after settle: %+v, want %+v", got, want)
	}
}

// BenchmarkAdmitSettle is the accounting of one request, without HTTP.
func BenchmarkAdmitSettle(b *testing.B) {
	a, err := NewAccount(config.DefaultEmulator(), t0)
	if err != nil {
		b.Fatal(err)
	}
	m, _ := bedrock.ParseModel(sonnet4)
	c := Call{Region: "us-east-1", Model: m, Demand: bedrock.Demand{InputTokens: 100, MaxTokens: 100}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		r, err := a.Admit(now, c)
		if err != nil {
			b.Fatal(err)
		}
		r.Settle(now, bedrock.Usage{InputTokens: 100, OutputTokens: 10})
	}
}
