package admission

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/headroomhq/headroom/internal/quota"
)

// roomyLedger has buckets so large that only the key's own limits bind.
func roomyLedger(now time.Time) *quota.Ledger {
	return quota.NewLedger([]quota.BucketSpec{
		{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 1 << 40},
		{Name: "tpd", Kind: quota.TokensPerDay, Limit: 1 << 50},
	}, quota.Windows{}, now)
}

// twoUpstreams returns two controllers over separate ledgers that share
// budgets when shared, as `headroom serve` builds them.
func twoUpstreams(shared bool, now time.Time) (a, b *Controller) {
	var bs *Budgets
	if shared {
		bs = NewBudgets()
	}
	return New(roomyLedger(now), Options{Budgets: bs}), New(roomyLedger(now), Options{Budgets: bs})
}

// TestBudgetsDailyAcrossUpstreams: a key with a budget of 1,000 tokens
// spends 400 on each of two upstreams; a third request of 300 is refused on
// either (Daily: the client must not retry), one of 200 still fits. With a
// controller of its own each (Budgets nil, as before), each upstream lets
// the key spend its whole budget.
func TestBudgetsDailyAcrossUpstreams(t *testing.T) {
	dev := Key{Name: "dev", DailyTokens: 1000}
	type step struct {
		on     string // "a" or "b"
		tokens int64
	}
	steps := []step{{"a", 400}, {"b", 400}, {"a", 300}, {"b", 300}, {"b", 200}, {"a", 1}}
	for _, tc := range []struct {
		name   string
		shared bool
		want   []string
	}{
		{"shared", true, []string{"settled", "settled", "refused daily=true used 800", "refused daily=true used 800", "settled", "refused daily=true used 1000"}},
		{"private", false, []string{"settled", "settled", "settled", "settled", "settled", "settled"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := twoUpstreams(tc.shared, t0)
			var got []string
			for i, s := range steps {
				c := a
				if s.on == "b" {
					c = b
				}
				now := t0.Add(time.Duration(i) * time.Second)
				tk, err := c.Enqueue(now, Request{Key: dev, Set: tpm | tpd, Cost: quota.Tokens(s.tokens)})
				var r *Refusal
				switch {
				case errors.As(err, &r):
					got = append(got, fmt.Sprintf("refused daily=%v used %d", r.Daily, r.KeyUsed))
					continue
				case err != nil:
					t.Fatalf("step %d: %v", i, err)
				}
				tk.Settle(now, quota.Tokens(s.tokens))
				got = append(got, tk.State().String())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBudgetsHeldElsewhereWakes: a request held in flight on upstream A
// keeps the key's next request on B waiting (not refused: the hold may come
// back); when A's request ends cheaper, B's request is granted at once by
// A's Settle, and B's Pump reports it. When A's request instead costs its
// whole reservation, B's request is hopeless for its deadline and refused
// at once, Daily, by A's Settle.
func TestBudgetsHeldElsewhereWakes(t *testing.T) {
	dev := Key{Name: "dev", DailyTokens: 1000}
	for _, tc := range []struct {
		name  string
		cost  int64
		state State
		daily bool
	}{
		{"cheaper", 100, Granted, false},
		{"whole", 800, Refused, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := twoUpstreams(true, t0)
			first := enqueue(t, a, t0, Request{Key: dev, Set: tpm | tpd, Cost: quota.Tokens(800)})
			second := enqueue(t, b, t0, Request{Key: dev, Set: tpm | tpd, Cost: quota.Tokens(400), Deadline: t0.Add(time.Minute)})
			if got := second.State(); got != Waiting {
				t.Fatalf("B's request is %v with 800 of 1,000 held on A, want waiting", got)
			}
			if wake, ok := b.NextWake(t0); !ok || !wake.Equal(t0.Add(time.Minute)) {
				t.Errorf("B's NextWake = %v, %v; want the deadline (the budget waits for the day's end)", wake, ok)
			}
			now := t0.Add(time.Second)
			first.Settle(now, quota.Tokens(tc.cost))
			if got := second.State(); got != tc.state {
				t.Fatalf("after A's settle at %d, B's request is %v, want %v", tc.cost, got, tc.state)
			}
			var r *Refusal
			if daily := errors.As(second.Err(), &r) && r.Daily; daily != tc.daily {
				t.Errorf("B's refusal %v: daily = %v, want %v", second.Err(), daily, tc.daily)
			}
			if got := b.Pump(now); len(got) != 1 || got[0] != second {
				t.Errorf("B's Pump reported %v, want B's request", got)
			}
			second.Settle(now, quota.Tokens(400))
		})
	}
}

// TestBudgetsConcurrencyAcrossUpstreams: a key capped at one request in
// flight has one on A; its request on B waits (with no wake of its own:
// only the end of A's request lets it in) and is granted by A's Settle.
func TestBudgetsConcurrencyAcrossUpstreams(t *testing.T) {
	one := Key{Name: "one", MaxConcurrency: 1}
	for _, tc := range []struct {
		name   string
		shared bool
		want   State
	}{
		{"shared", true, Waiting},
		{"private", false, Granted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := twoUpstreams(tc.shared, t0)
			first := enqueue(t, a, t0, Request{Key: one, Set: tpm, Cost: quota.Tokens(10)})
			second := enqueue(t, b, t0, Request{Key: one, Set: tpm, Cost: quota.Tokens(10)})
			if got := second.State(); got != tc.want {
				t.Fatalf("B's request is %v with one in flight on A, want %v", got, tc.want)
			}
			if !tc.shared {
				return
			}
			if got := b.Status(t0).Keys[0]; got.InFlight != 0 || got.Queued != 1 {
				t.Errorf("B's status of the key: %+v", got)
			}
			if wake, ok := b.NextWake(t0); !ok || !wake.Equal(t0.Add(60*time.Second)) {
				t.Errorf("B's NextWake = %v, %v; want only the deadline", wake, ok)
			}
			var r *Refusal
			if !errors.As(refusalNow(b, t0, second), &r) || r.Daily || r.Message != "Headroom: key one already has 1 requests in flight, its limit; retry when one ends" {
				t.Errorf("B's refusal if it ended now: %+v", r)
			}
			first.Settle(t0, quota.Tokens(10))
			if got := second.State(); got != Granted {
				t.Fatalf("after A's settle, B's request is %v, want granted", got)
			}
			third := enqueue(t, a, t0, Request{Key: one, Set: tpm, Cost: quota.Tokens(10)})
			second.Cancel(t0)
			if got := third.State(); got != Granted {
				t.Errorf("after B's cancel, A's request is %v, want granted", got)
			}
			third.Settle(t0, quota.Tokens(10))
		})
	}
}

// refusalNow is the refusal t would get from c at now.
func refusalNow(c *Controller, now time.Time, t *Ticket) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refusal(now, t)
}

// TestBudgetsNewDayWakes: a key whose budget a request in flight on A
// holds has a request waiting on B past midnight; the new day, seen first
// by A, lets it in, and A's request, ending on the new day, stays
// yesterday's.
func TestBudgetsNewDayWakes(t *testing.T) {
	dev := Key{Name: "dev", DailyTokens: 1000}
	a, b := twoUpstreams(true, t0)
	a.SetKeys([]Key{dev})
	b.SetKeys([]Key{dev})
	first := enqueue(t, a, t0, Request{Key: dev, Set: tpm | tpd, Cost: quota.Tokens(900)})
	late := enqueue(t, b, t0, Request{Key: dev, Set: tpm | tpd, Cost: quota.Tokens(200), Deadline: t0.Add(15 * time.Hour)})
	if got := late.State(); got != Waiting {
		t.Fatalf("B's request is %v, want waiting for the new day", got)
	}
	midnight := t0.Add(14 * time.Hour)
	if wake, ok := b.NextWake(t0); !ok || !wake.Equal(midnight) {
		t.Errorf("B's NextWake = %v, %v; want %v", wake, ok, midnight)
	}
	a.Pump(midnight)
	if got := late.State(); got != Granted {
		t.Fatalf("after the day changed on A, B's request is %v, want granted", got)
	}
	first.Settle(midnight, quota.Tokens(900))
	if got := a.Status(midnight).Keys[0]; got.UsedToday != 200 || got.HeldNow != 200 || got.InFlight != 0 {
		t.Errorf("A's status of the key on the new day: used %d, held %d, %d in flight; want B's 200, 200 and none here",
			got.UsedToday, got.HeldNow, got.InFlight)
	}
}

// TestBudgetsRestoreCountsOnce: each upstream saves the key's total (its
// use in both) and its own use of its daily bucket; restoring both into a
// new server's controllers counts the total once, and each bucket's use on
// its own upstream.
func TestBudgetsRestoreCountsOnce(t *testing.T) {
	dev := Key{Name: "dev", DailyTokens: 10000}
	a, b := twoUpstreams(true, t0)
	enqueue(t, a, t0, Request{Key: dev, Set: tpm | tpd, Cost: quota.Tokens(3000)}).Settle(t0, quota.Tokens(3000))
	enqueue(t, b, t0, Request{Key: dev, Set: tpm | tpd, Cost: quota.Tokens(2000)}).Settle(t0, quota.Tokens(2000))
	held := enqueue(t, b, t0, Request{Key: dev, Set: tpm | tpd, Cost: quota.Tokens(1000)}) // a crash must not give it back
	ua, ub := a.KeyUsage(t0), b.KeyUsage(t0)
	want := map[string]int64{"key:dev": 6000, "key:dev/tpd": 3000}
	if diff := cmp.Diff(want, ua.Used); diff != "" {
		t.Errorf("A's KeyUsage (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, ub.Used); diff != "" {
		t.Errorf("B's KeyUsage (-want +got):\n%s", diff)
	}
	held.Cancel(t0)

	later := t0.Add(time.Hour)
	a2, b2 := twoUpstreams(true, later)
	if !a2.RestoreKeys(later, ua) || !b2.RestoreKeys(later, ub) {
		t.Fatal("RestoreKeys: not today")
	}
	for name, c := range map[string]*Controller{"A": a2, "B": b2} {
		k := c.Status(later).Keys[0]
		if k.UsedToday != 6000 || len(k.Protected) != 1 || k.Protected[0].Used != 3000 {
			t.Errorf("%s after restore: used %d, protected %+v; want 6000 and 3000 of tpd", name, k.UsedToday, k.Protected)
		}
	}
	// 4,000 left: 4,001 is spent for the day on either upstream.
	if _, err := b2.Enqueue(later, Request{Key: dev, Set: tpm | tpd, Cost: quota.Tokens(4001)}); err == nil {
		t.Error("4,001 tokens admitted after 6,000 of 10,000 restored")
	}
	enqueue(t, a2, later, Request{Key: dev, Set: tpm | tpd, Cost: quota.Tokens(4000)}).Settle(later, quota.Tokens(4000))
}

// TestBudgetsAdmitWokenElsewhere: through the blocking Admit, a request of
// a key capped at one in flight waits on B while the key's request runs on
// A (B has nothing else to wake it before its deadline), and is admitted
// the moment A's request ends.
func TestBudgetsAdmitWokenElsewhere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bs := NewBudgets()
		a := New(roomyLedger(time.Now()), Options{Budgets: bs})
		b := New(roomyLedger(time.Now()), Options{Budgets: bs})
		one := Key{Name: "one", MaxConcurrency: 1}
		first, err := a.Admit(t.Context(), Request{Key: one, Set: 1, Cost: quota.Tokens(10)})
		if err != nil {
			t.Fatal(err)
		}
		checkWokenBySettle(t, first, func() (*Ticket, error) {
			return b.Admit(t.Context(), Request{Key: one, Set: 1, Cost: quota.Tokens(10)})
		})
	})
}

// TestBudgetsAdmitConcurrencyNoLostWakeup: clients of a key capped at two
// requests in flight hammer two upstreams through the blocking Admit;
// never more than two are in flight across both, and every request is
// admitted (a lost wakeup would leave one waiting until its deadline and
// refused).
func TestBudgetsAdmitConcurrencyNoLostWakeup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bs := NewBudgets()
		ups := []*Controller{
			New(roomyLedger(time.Now()), Options{Budgets: bs, DefaultMaxWait: time.Minute}),
			New(roomyLedger(time.Now()), Options{Budgets: bs, DefaultMaxWait: time.Minute}),
		}
		two := Key{Name: "two", MaxConcurrency: 2}
		var inflight, most atomic.Int32
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 20 {
					c := ups[(w+i)%2]
					tk, err := c.Admit(t.Context(), Request{Key: two, Set: 1, Cost: quota.Tokens(100)})
					if err != nil {
						t.Errorf("worker %d request %d: %v", w, i, err)
						return
					}
					n := inflight.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					time.Sleep(time.Duration(1+w%3) * time.Millisecond)
					inflight.Add(-1)
					tk.Settle(time.Now(), quota.Tokens(50))
				}
			})
		}
		wg.Wait()
		if got := most.Load(); got != 2 {
			t.Errorf("most in flight at once = %d, want 2 (the key's cap, across upstreams)", got)
		}
		for i, c := range ups {
			if st := c.Status(time.Now()); st.InFlight != 0 || st.Queued != 0 {
				t.Errorf("upstream %d ends with %d in flight, %d queued", i, st.InFlight, st.Queued)
			}
		}
	})
}

// TestRaiseKeysTodayKeepsHolds: the pooled settlements of every replica
// raise a key's usage today without swallowing what its requests in flight
// on this replica hold: settled 100 and 50 held, the pool says 300 settled,
// and the request then settles at 40: 340 today, not 290.
func TestRaiseKeysTodayKeepsHolds(t *testing.T) {
	dev := Key{Name: "dev", DailyTokens: 1_000_000}
	c := New(roomyLedger(t0), Options{Budgets: NewBudgets()})
	tk, err := c.Enqueue(t0, Request{Key: dev, Set: tpm | tpd, Cost: quota.Tokens(100)})
	if err != nil {
		t.Fatal(err)
	}
	tk.Settle(t0, quota.Tokens(100))
	flying, err := c.Enqueue(t0, Request{Key: dev, Set: tpm | tpd, Cost: quota.Tokens(50)})
	if err != nil {
		t.Fatal(err)
	}
	c.RaiseKeysToday(t0, map[string]int64{"dev": 300})
	if got := c.KeyUsage(t0).Used["key:dev"]; got != 350 {
		t.Errorf("after the raise: %d today, want 350 (300 settled across replicas, 50 held here)", got)
	}
	flying.Settle(t0, quota.Tokens(40))
	if got := c.KeyUsage(t0).Used["key:dev"]; got != 340 {
		t.Errorf("after the request in flight settled at 40: %d today, want 340", got)
	}
}
