package quota

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestZeroReservationIsNoOp(t *testing.T) {
	var r Reservation
	r.Adjust(t0, Tokens(10))
	if r.Settle(t0, Tokens(10)) || r.Cancel(t0) || r.Live() || r.Held() != (Cost{}) {
		t.Fatal("zero Reservation did something")
	}
}

func TestDeferCancelAfterSettle(t *testing.T) {
	l := NewLedger([]BucketSpec{{Name: "tpm", Kind: TokensPerMinute, Limit: 100}}, Windows{}, t0)
	func() {
		res, err := l.Reserve(t0, l.All(), Tokens(60))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Cancel(t0)
		if got, want := res.Held(), Tokens(60); got != want {
			t.Errorf("Held() = %+v, want %+v", got, want)
		}
		res.Settle(t0, Tokens(30))
	}()
	if got, want := l.Available(t0, 0), int64(70); got != want {
		t.Errorf("available after settle then deferred cancel = %d, want %d", got, want)
	}
}

func TestTimeNeverRunsBackwards(t *testing.T) {
	l := NewLedger([]BucketSpec{{Name: "tpm", Kind: TokensPerMinute, Limit: 600}}, Windows{}, t0)
	r, err := l.Reserve(t0.Add(time.Minute), l.All(), Tokens(600))
	if err != nil {
		t.Fatal(err)
	}
	r.Settle(t0.Add(time.Minute), Tokens(600))
	// A caller with an older clock reading must not see (or cause) refill in reverse.
	if got, want := l.Available(t0, 0), int64(0); got != want {
		t.Errorf("available at an earlier time = %d, want %d", got, want)
	}
	if got, want := l.Available(t0.Add(time.Minute+time.Second), 0), int64(10); got != want {
		t.Errorf("available a second later = %d, want %d", got, want)
	}
}

func TestSnapshot(t *testing.T) {
	specs := []BucketSpec{
		{Name: "tpm", Kind: TokensPerMinute, Limit: 600},
		{Name: "tpd", Kind: TokensPerDay, Limit: 1000},
	}
	l := NewLedger(specs, Windows{}, t0)
	a, _ := l.Reserve(t0, l.All(), Tokens(100))
	b, _ := l.Reserve(t0, l.All(), Tokens(200))
	a.Settle(t0, Tokens(50))
	_ = b
	got := l.Snapshot(t0)
	want := []BucketState{
		{Name: "tpm", Kind: TokensPerMinute, KindName: "tpm", Limit: 600, Effective: 600, Used: 50, Reserved: 200, InFlight: 1, Available: 350},
		{Name: "tpd", Kind: TokensPerDay, KindName: "tpd", Limit: 1000, Effective: 1000, Used: 50, Reserved: 200, InFlight: 1, Available: 750},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Snapshot (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[1], l.Bucket(t0, 1)); diff != "" {
		t.Errorf("Bucket(1) (-want +got):\n%s", diff)
	}
}

func TestDayUsageRestore(t *testing.T) {
	specs := []BucketSpec{
		{Name: "tpm", Kind: TokensPerMinute, Limit: 600},
		{Name: "fixed", Kind: TokensPerDay, Limit: 1000},
	}
	for _, w := range []Windows{{Day: Fixed, DayResetHour: 2}, {Day: Rolling}} {
		l := NewLedger(specs, w, t0)
		done, _ := l.Reserve(t0, l.All(), Tokens(300))
		done.Settle(t0, Tokens(200))
		if _, err := l.Reserve(t0, l.All(), Tokens(100)); err != nil { // in flight at the crash
			t.Fatal(err)
		}
		u := l.DayUsage(t0)
		want := DayUsage{Day: "2026-05-01", Used: map[string]int64{"fixed": 300}}
		if diff := cmp.Diff(want, u); diff != "" {
			t.Errorf("%+v: DayUsage (-want +got):\n%s", w, diff)
		}

		restarted := NewLedger(specs, w, t0)
		for range 2 { // restoring twice is harmless
			if !restarted.RestoreDay(t0, u) {
				t.Fatalf("%+v: RestoreDay refused today's usage", w)
			}
		}
		if got, want := restarted.Available(t0, 1), int64(700); got != want {
			t.Errorf("%+v: restored available = %d, want %d", w, got, want)
		}
		if got, want := restarted.Available(t0, 0), int64(600); got != want {
			t.Errorf("%+v: minute bucket touched by restore: %d, want %d", w, got, want)
		}
		tomorrow := NewLedger(specs, w, t0.Add(24*time.Hour))
		if tomorrow.RestoreDay(t0.Add(24*time.Hour), u) {
			t.Errorf("%+v: restored yesterday's usage", w)
		}
	}
}

func TestDayWindow(t *testing.T) {
	tests := []struct {
		hour       int
		now        time.Time
		start, end string
	}{
		{0, t0, "2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z"},
		{11, t0, "2026-04-30T11:00:00Z", "2026-05-01T11:00:00Z"},
		{10, t0, "2026-05-01T10:00:00Z", "2026-05-02T10:00:00Z"},
	}
	for _, tt := range tests {
		l := NewLedger(nil, Windows{DayResetHour: tt.hour}, tt.now)
		s, e := l.DayWindow(tt.now)
		got := []string{s.Format(time.RFC3339), e.Format(time.RFC3339), l.Day(tt.now)}
		want := []string{tt.start, tt.end, tt.start[:10]}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("hour %d: (-want +got):\n%s", tt.hour, diff)
		}
	}
}

func TestParse(t *testing.T) {
	for _, s := range []string{"tpm", "tpd", "rpm"} {
		k, err := ParseKind(s)
		if err != nil || k.String() != s {
			t.Errorf("ParseKind(%q) = %v, %v", s, k, err)
		}
	}
	if _, err := ParseKind("tps"); err == nil {
		t.Error("ParseKind accepted tps")
	}
	got, err := ParseWindows("clock", "rolling", 5)
	if want := (Windows{Minute: Clock, Day: Rolling, DayResetHour: 5}); err != nil || got != want {
		t.Errorf("ParseWindows = %+v, %v; want %+v", got, err, want)
	}
	if got, err := ParseWindows("", "", 0); err != nil || got != (Windows{}) {
		t.Errorf("ParseWindows defaults = %+v, %v", got, err)
	}
	for _, bad := range [][3]any{{"hourly", "", 0}, {"", "weekly", 0}, {"", "", 24}} {
		if _, err := ParseWindows(bad[0].(string), bad[1].(string), bad[2].(int)); err == nil {
			t.Errorf("ParseWindows%v accepted", bad)
		}
	}
}

func TestSet(t *testing.T) {
	s := Bit(0) | Bit(3) | Bit(63)
	var got []int
	s.Each(func(i int) { got = append(got, i) })
	if diff := cmp.Diff([]int{0, 3, 63}, got); diff != "" || s.Len() != 3 || !s.Has(63) || s.Has(1) {
		t.Errorf("Set %b: Each (-want +got):\n%s", s, diff)
	}
}
