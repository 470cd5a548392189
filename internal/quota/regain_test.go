package quota

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRegains(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
	spec := []BucketSpec{{Name: "tpd", Kind: TokensPerDay, Limit: 1000}}
	use := func(l *Ledger, at time.Time, n int64) {
		r, err := l.Reserve(at, Bit(0), Tokens(n))
		if err != nil {
			t.Fatal(err)
		}
		r.Settle(at, Tokens(n))
	}

	rolling := NewLedger(spec, Windows{Day: Rolling}, t0)
	use(rolling, t0.Add(30*time.Second), 100)
	use(rolling, t0.Add(90*time.Minute), 50)
	now := t0.Add(23 * time.Hour) // 09:00 the next day
	got := rolling.Regains(now, now.Add(2*time.Hour), 0)
	want := []Regain{{t0.Add(24 * time.Hour), 100}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rolling, 2 h ahead (-want +got):\n%s", diff)
	}
	got = rolling.Regains(now, now.Add(3*time.Hour), 0)
	want = append(want, Regain{t0.Add(25*time.Hour + 30*time.Minute), 50})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rolling, 3 h ahead (-want +got):\n%s", diff)
	}

	fixed := NewLedger(spec, Windows{DayResetHour: 6}, t0)
	use(fixed, t0, 300)
	reset := time.Date(2026, 3, 11, 6, 0, 0, 0, time.UTC)
	if got := fixed.Regains(t0, reset.Add(-time.Second), 0); got != nil {
		t.Errorf("fixed, before the reset: %v, want nothing", got)
	}
	if diff := cmp.Diff([]Regain{{reset, 300}}, fixed.Regains(t0, reset, 0)); diff != "" {
		t.Errorf("fixed, to the reset (-want +got):\n%s", diff)
	}
}
