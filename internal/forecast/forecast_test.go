package forecast

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var day0 = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)

func at(h, m int) time.Time {
	return day0.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

// feed records perMin tokens of key in series s at the start of every
// minute in [from, to).
func feed(tr *Tracker, s int, key string, from, to time.Time, perMin int64) {
	for t := from; t.Before(to); t = t.Add(time.Minute) {
		tr.Record(t, key, perMin, []Part{{Series: s, Tokens: perMin}})
	}
}

func seriesRates(t *testing.T, tr *Tracker, now time.Time, s int) Rates {
	t.Helper()
	return tr.Snapshot(now, 3).Series[s].Rates
}

func TestNoTrafficNeverRunsOut(t *testing.T) {
	tr := NewTracker(at(9, 0), 0)
	s := tr.Series("us", "sonnet-tpd")
	now := at(12, 0)
	f := Project(Input{Name: "bucket sonnet-tpd", Now: now, Left: 1000, Limit: 1000, DayEnd: at(24, 0), Rates: seriesRates(t, tr, now, s)})
	if f.Status != Never || f.At != nil || f.Earliest != nil || f.Latest != nil {
		t.Fatalf("no traffic: got %+v, want never with no times", f)
	}
	if low, high := f.Seconds(now); !math.IsInf(low, 1) || !math.IsInf(high, 1) {
		t.Errorf("no traffic: seconds = %v, %v, want +Inf", low, high)
	}
}

func TestSteadyRate(t *testing.T) {
	tr := NewTracker(at(9, 0), 0)
	s := tr.Series("us", "sonnet-tpd")
	feed(tr, s, "alice", at(10, 0), at(11, 0), 1000)
	now := at(11, 0)
	r := seriesRates(t, tr, now, s)
	if diff := cmp.Diff(Rates{1000, 1000, 1000}, r); diff != "" {
		t.Fatalf("rates (-want +got):\n%s", diff)
	}
	// 500,000 left at 1,000 a minute: 500 minutes, 19:20.
	f := Project(Input{Name: "bucket sonnet-tpd", Now: now, Left: 500_000, Limit: 1_000_000, DayEnd: at(24, 0), Rates: r})
	want := at(19, 20)
	if f.Status != RunsOut || !f.At.Equal(want) || !f.Earliest.Equal(want) || !f.Latest.Equal(want) {
		t.Fatalf("got %+v, want runs out at %v", f, want)
	}
	if !strings.Contains(f.Text, "runs out at 19:20 UTC") {
		t.Errorf("text %q does not say 19:20 UTC", f.Text)
	}
	low, high := f.Seconds(now)
	if low != 500*60 || high != 500*60 {
		t.Errorf("seconds = %v, %v, want 30000", low, high)
	}
}

// A burst in the last minutes makes the short rates fast: the range opens
// toward earlier times, while the last hour's rate stays the headline.
func TestBurstWidensTheRange(t *testing.T) {
	tr := NewTracker(at(9, 0), 0)
	s := tr.Series("us", "sonnet-tpd")
	feed(tr, s, "alice", at(10, 0), at(10, 59), 100)
	tr.Record(at(10, 59), "bob", 10_000, []Part{{s, 10_000}})
	now := at(11, 0)
	r := seriesRates(t, tr, now, s)
	// Hour: (59×100 + 10,000)/60; 15 min: (14×100 + 10,000)/15; 5 min: (4×100 + 10,000)/5.
	want := Rates{15_900.0 / 60, 11_400.0 / 15, 10_400.0 / 5}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Fatalf("rates (-want +got):\n%s", diff)
	}
	f := Project(Input{Name: "bucket sonnet-tpd", Now: now, Left: 100_000, Limit: 1_000_000, DayEnd: at(24, 0), Rates: r})
	if f.Status != RunsOut {
		t.Fatalf("status %s, want runs_out", f.Status)
	}
	early := now.Add(time.Duration(100_000 / want.Five * float64(time.Minute)))
	late := now.Add(time.Duration(100_000 / want.Hour * float64(time.Minute)))
	if !f.Earliest.Equal(early) || !f.Latest.Equal(late) || !f.At.Equal(late) {
		t.Errorf("earliest %v latest %v at %v; want %v, %v, %v", f.Earliest, f.Latest, f.At, early, late, late)
	}
	if !strings.Contains(f.Text, hhmm(early)+"-"+clock(late)) {
		t.Errorf("text %q lacks the range %s-%s", f.Text, hhmm(early), clock(late))
	}
}

// A burst followed by silence: the hour's rate still runs the bucket out,
// the last 5 and 15 minutes' rates (zero) do not, and the range says so.
func TestBurstThenSilence(t *testing.T) {
	tr := NewTracker(at(9, 0), 0)
	s := tr.Series("us", "sonnet-tpd")
	tr.Record(at(10, 10), "alice", 60_000, []Part{{s, 60_000}})
	now := at(10, 30)
	r := seriesRates(t, tr, now, s)
	if r.Five != 0 || r.Quarter != 0 || r.Hour != 1000 {
		t.Fatalf("rates %+v, want hour 1000 and zero since", r)
	}
	f := Project(Input{Name: "bucket sonnet-tpd", Now: now, Left: 60_000, Limit: 1_000_000, DayEnd: at(24, 0), Rates: r})
	if f.Status != RunsOut || !f.At.Equal(at(11, 30)) || f.Latest != nil {
		t.Fatalf("got %+v, want runs out at 11:30 with no latest", f)
	}
	if low, high := f.Seconds(now); low != 3600 || !math.IsInf(high, 1) {
		t.Errorf("seconds = %v, %v; want 3600, +Inf", low, high)
	}
	if !strings.Contains(f.Text, "not today at the last 15 minutes' rate") && !strings.Contains(f.Text, "not today at the last 5 minutes' rate") {
		t.Errorf("text %q does not say the slow rate does not run it out", f.Text)
	}
	// An hour later the burst has left the window: never.
	if f := Project(Input{Name: "b", Now: at(11, 11), Left: 60_000, Limit: 1_000_000, DayEnd: at(24, 0), Rates: seriesRates(t, tr, at(11, 11), s)}); f.Status != Never {
		t.Errorf("an hour after the burst: %s, want never", f.Status)
	}
}

// A fixed day ends at its reset hour: a run-out after it is "not today",
// and the same rate runs out today when the day ends later.
func TestFixedDayRollover(t *testing.T) {
	r := Rates{100, 100, 100}
	now := at(23, 0)
	// 12,000 left at 100 a minute: 120 minutes, 01:00 tomorrow.
	f := Project(Input{Name: "bucket sonnet-tpd", Now: now, Left: 12_000, Limit: 50_000, DayEnd: at(24, 0), Rates: r})
	if f.Status != NotToday || f.At != nil || f.Earliest != nil || f.Latest != nil {
		t.Fatalf("day ends at 00:00: got %+v, want not today", f)
	}
	if !strings.Contains(f.Text, "does not run out today") || !strings.Contains(f.Text, "00:00 UTC") {
		t.Errorf("text %q", f.Text)
	}
	// Days that reset at 06:00 UTC: the same use runs out at 01:00.
	f = Project(Input{Name: "bucket sonnet-tpd", Now: now, Left: 12_000, Limit: 50_000, DayEnd: at(30, 0), Rates: r})
	if f.Status != RunsOut || !f.At.Equal(at(25, 0)) {
		t.Fatalf("day ends at 06:00: got %+v, want runs out at 01:00", f)
	}
	// A faster recent rate that would run out today is named.
	f = Project(Input{Name: "b", Now: now, Left: 12_000, Limit: 50_000, DayEnd: at(24, 0), Rates: Rates{100, 100, 400}})
	if f.Status != NotToday || f.Earliest == nil || !f.Earliest.Equal(at(23, 30)) {
		t.Fatalf("fast 5-minute rate: got %+v, want not today, earliest 23:30", f)
	}
	if !strings.Contains(f.Text, "the last 5 minutes' rate it would at 23:30 UTC") {
		t.Errorf("text %q", f.Text)
	}
}

// A rolling day gives back what was used 24 hours earlier: the run-out
// moves past a regain that comes before it.
func TestRollingDayRegains(t *testing.T) {
	now := at(12, 0)
	r := Rates{10, 10, 10}
	in := Input{Name: "bucket tpd", Now: now, Left: 100, Limit: 1000, DayEnd: at(24, 0), Rates: r,
		Regains: []Regain{{at(12, 30), 800}}}
	// 100 left at 10 a minute: 12:10, before the regain.
	if f := Project(in); !f.At.Equal(at(12, 10)) {
		t.Fatalf("run-out before the regain: %v, want 12:10", f.At)
	}
	// 400 left: 300 used by 12:30, then 800 back: 900 left, 90 minutes: 14:00.
	in.Left = 400
	if f := Project(in); f.Status != RunsOut || !f.At.Equal(at(14, 0)) {
		t.Fatalf("run-out after the regain: %+v, want 14:00", f)
	}
	// Enough regained that the day ends first.
	in.Regains = append(in.Regains, Regain{at(13, 0), 100_000})
	if f := Project(in); f.Status != NotToday {
		t.Fatalf("large regain: %s, want not today", f.Status)
	}
	// A regain at or before now only adds to what is left.
	in.Regains = []Regain{{now, 200}}
	in.Left = 100
	if f := Project(in); !f.At.Equal(at(12, 30)) {
		t.Fatalf("regain now: %v, want 12:30", f.At)
	}
}

func TestSpent(t *testing.T) {
	now := at(15, 0)
	f := Project(Input{Name: "key alice's budget", Now: now, Left: 0, Limit: 1000, DayEnd: at(24, 0), Rates: Rates{}})
	if f.Status != Spent || !f.At.Equal(now) {
		t.Fatalf("got %+v, want spent now", f)
	}
	if low, high := f.Seconds(now); low != 0 || high != 0 {
		t.Errorf("seconds %v %v, want 0", low, high)
	}
}

// Tiny rates against large remainders must not overflow a Duration.
func TestTinyRateDoesNotOverflow(t *testing.T) {
	now := at(1, 0)
	f := Project(Input{Name: "b", Now: now, Left: math.MaxInt64 / 2, Limit: math.MaxInt64, DayEnd: at(24, 0), Rates: Rates{1e-9, 1e-9, 1e-9},
		Regains: []Regain{{at(2, 0), 5}}})
	if f.Status != NotToday {
		t.Fatalf("got %+v, want not today", f)
	}
}
