package admission

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/headroomhq/headroom/internal/quota"
)

// TPM 600 = 10 tokens/s; TPD 10,000 reset at 00:00 UTC (14 h after t0).
func testLedger() *quota.Ledger {
	return quota.NewLedger([]quota.BucketSpec{
		{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 600},
		{Name: "tpd", Kind: quota.TokensPerDay, Limit: 10000},
		{Name: "other-tpm", Kind: quota.TokensPerMinute, Limit: 600},
	}, quota.Windows{}, t0)
}

const (
	tpm   = quota.Set(1)
	tpd   = quota.Set(2)
	other = quota.Set(4)
	both  = tpm | tpd
)

var (
	alice = Key{Name: "alice"}
	bob   = Key{Name: "bob"}
	carol = Key{Name: "carol"}
)

func enqueue(t *testing.T, c *Controller, now time.Time, req Request) *Ticket {
	t.Helper()
	tk, err := c.Enqueue(now, req)
	if err != nil {
		t.Fatalf("Enqueue(%+v): %v", req, err)
	}
	return tk
}

func states(ts ...*Ticket) []State {
	var out []State
	for _, t := range ts {
		out = append(out, t.State())
	}
	return out
}

func TestGrantQueueAndWake(t *testing.T) {
	c := New(testLedger(), Options{})
	a := enqueue(t, c, t0, Request{Key: alice, Set: both, Cost: quota.Tokens(600)})
	a.Settle(t0, quota.Tokens(600)) // consumed: drains at 10 tokens/s
	b := enqueue(t, c, t0, Request{Key: bob, Set: both, Cost: quota.Tokens(100)})
	if diff := cmp.Diff([]State{Settled, Waiting}, states(a, b)); diff != "" {
		t.Fatalf("states (-want +got):\n%s", diff)
	}
	wake, ok := c.NextWake(t0)
	if want := t0.Add(10 * time.Second); !ok || !wake.Equal(want) {
		t.Errorf("NextWake = %v, %v; want %v (100 tokens at 10/s)", wake, ok, want)
	}
	if got := c.Pump(t0.Add(10*time.Second - time.Nanosecond)); len(got) != 0 {
		t.Errorf("Pump before the wake decided %d tickets", len(got))
	}
	if got := c.Pump(wake); len(got) != 1 || got[0] != b || b.State() != Granted {
		t.Fatalf("Pump at the wake = %v, b is %v", got, b.State())
	}
	if got, want := b.Waited(), 10*time.Second; got != want {
		t.Errorf("Waited() = %v, want %v", got, want)
	}
	if _, ok := c.NextWake(wake); ok {
		t.Error("NextWake with nothing queued")
	}
}

// TestHoldsWakeOnSettle: a request kept out by another's hold has no exact
// wake (the ledger's hold estimate stands in); the settlement lets it in.
func TestHoldsWakeOnSettle(t *testing.T) {
	c := New(testLedger(), Options{})
	a := enqueue(t, c, t0, Request{Key: alice, Set: tpm, Cost: quota.Tokens(600)})
	b := enqueue(t, c, t0, Request{Key: bob, Set: tpm, Cost: quota.Tokens(100)})
	if wake, ok := c.NextWake(t0); !ok || !wake.Equal(t0.Add(quota.DefaultHoldEstimate)) {
		t.Errorf("NextWake = %v, %v; want the hold estimate, %v", wake, ok, quota.DefaultHoldEstimate)
	}
	// 50 s later the hold is still whole: nothing refilled it.
	later := t0.Add(50 * time.Second)
	if got := c.Pump(later); len(got) != 0 || b.State() != Waiting {
		t.Fatalf("Pump 50 s later = %v, b %v", got, b.State())
	}
	a.Settle(later, quota.Tokens(450)) // 150 of the hold given back at once
	if got := b.State(); got != Granted {
		t.Fatalf("after the settlement b is %v", got)
	}
	if got, want := b.Waited(), 50*time.Second; got != want {
		t.Errorf("b waited %v, want %v", got, want)
	}
}

func TestSettleLetsOthersInAndEndsOnce(t *testing.T) {
	c := New(testLedger(), Options{})
	a := enqueue(t, c, t0, Request{Key: alice, Set: tpm, Cost: quota.Tokens(600)})
	b := enqueue(t, c, t0, Request{Key: bob, Set: tpm, Cost: quota.Tokens(300)})
	if !a.Settle(t0, quota.Tokens(200)) { // 400 given back: bob's 300 fits
		t.Fatal("Settle did not end the ticket")
	}
	if a.Settle(t0, quota.Tokens(0)) || a.Cancel(t0) {
		t.Error("a second Settle or Cancel ended the ticket again")
	}
	if diff := cmp.Diff([]State{Settled, Granted}, states(a, b)); diff != "" {
		t.Fatalf("states (-want +got):\n%s", diff)
	}
	if got := c.Pump(t0); len(got) != 1 || got[0] != b {
		t.Errorf("Pump after Settle = %v, want bob's ticket granted inside Settle", got)
	}
	if got, want := c.Ledger().Available(t0, 0), int64(100); got != want {
		t.Errorf("available = %d, want %d", got, want)
	}
	b.Adjust(t0, quota.Tokens(100)) // consumed: out of the hold, into the window
	b.Adjust(t0, quota.Tokens(50))  // usage never shrinks
	if got, want := c.Ledger().Bucket(t0, 0), (quota.BucketState{Name: "tpm", Kind: quota.TokensPerMinute, KindName: "tpm",
		Limit: 600, Effective: 600, Used: 300, Reserved: 200, InFlight: 1, Available: 100}); got != want {
		t.Errorf("after adjust: %+v, want %+v", got, want)
	}
	b.Cancel(t0) // gives back the hold, not what the upstream already ran
	if got, want := c.Ledger().Available(t0, 0), int64(300); got != want {
		t.Errorf("available after cancel = %d, want %d", got, want)
	}
	if got := c.Status(t0).Keys; got[1].Name != "bob" || got[1].UsedToday != 100 {
		t.Errorf("bob's usage after cancelling an adjusted request: %+v, want 100 today", got[1])
	}
	var nilTicket *Ticket
	nilTicket.Adjust(t0, quota.Tokens(1))
	if nilTicket.Settle(t0, quota.Tokens(1)) || nilTicket.Cancel(t0) || nilTicket.State() != 0 {
		t.Error("nil ticket did something")
	}
}

func TestDeadlineRefusal(t *testing.T) {
	c := New(testLedger(), Options{})
	c.SetKeys([]Key{alice, bob})
	a := enqueue(t, c, t0, Request{Key: alice, Set: tpm, Cost: quota.Tokens(600)})
	a.Settle(t0, quota.Tokens(600)) // consumed: drains at 10 tokens/s
	b := enqueue(t, c, t0, Request{Key: bob, Set: tpm, Cost: quota.Tokens(120), Deadline: t0.Add(5 * time.Second)})
	if wake, _ := c.NextWake(t0); !wake.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("NextWake = %v, want the deadline", wake)
	}
	got := c.Pump(t0.Add(5 * time.Second))
	if len(got) != 1 || got[0] != b || b.State() != Refused {
		t.Fatalf("Pump at the deadline = %v (%v)", got, b.State())
	}
	var r *Refusal
	if !errors.As(b.Err(), &r) {
		t.Fatalf("Err() = %v, want *Refusal", b.Err())
	}
	// Alice's request ended: bob is alone, and his share is the bucket.
	want := &Refusal{Bucket: "tpm", Kind: quota.TokensPerMinute, RetryAfter: 7 * time.Second, KeyShare: 600, KeyUsed: 0,
		Message: `Headroom: tokens-per-minute bucket "tpm" is full; key bob's fair share is 600 of 600; retry in 7s`}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("refusal (-want +got):\n%s", diff)
	}
	// A request that may not wait is admitted if it fits, even with a
	// deadline read from a clock a moment behind.
	ok := enqueue(t, c, t0.Add(5*time.Second), Request{Key: carol, Set: other, Cost: quota.Tokens(1), Deadline: t0})
	if ok.State() != Granted {
		t.Errorf("no-wait request that fits: %v", ok.State())
	}
	ok.Cancel(t0.Add(5 * time.Second))
	// A request that may not wait and does not fit is refused at once.
	_, err := c.Enqueue(t0.Add(5*time.Second), Request{Key: carol, Set: tpm, Cost: quota.Tokens(120), Deadline: t0.Add(5 * time.Second)})
	if !errors.As(err, &r) || r.RetryAfter != 7*time.Second {
		t.Errorf("no-wait Enqueue = %v", err)
	}
	// A bucket held by a request in flight: the wait is the ledger's hold
	// estimate (alice's request above taught it: 20 s - 20 s/8).
	held := enqueue(t, c, t0.Add(5*time.Second), Request{Key: alice, Set: other, Cost: quota.Tokens(600)})
	_, err = c.Enqueue(t0.Add(5*time.Second), Request{Key: carol, Set: other, Cost: quota.Tokens(1), Deadline: t0})
	want = &Refusal{Bucket: "other-tpm", Kind: quota.TokensPerMinute, RetryAfter: 17500 * time.Millisecond, Holds: true, KeyShare: 300,
		Message: `Headroom: tokens-per-minute bucket "other-tpm" is full (requests in flight hold part of the quota); key carol's fair share is 300 of 600; retry in 18s`}
	if !errors.As(err, &r) {
		t.Fatalf("Enqueue behind a hold = %v", err)
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("refusal behind a hold (-want +got):\n%s", diff)
	}
	held.Cancel(t0.Add(5 * time.Second))
}

func TestTooLarge(t *testing.T) {
	l := quota.NewLedger([]quota.BucketSpec{
		{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 600},
		{Name: "zero", Kind: quota.TokensPerDay, Limit: 0},
	}, quota.Windows{}, t0)
	c := New(l, Options{})
	tests := []struct {
		req  Request
		want *TooLarge
	}{
		{Request{Key: alice, Set: 1, Cost: quota.Tokens(601)}, &TooLarge{Bucket: "tpm", Kind: quota.TokensPerMinute, Capacity: 600, Cost: 601}},
		{Request{Key: alice, Set: 3, Cost: quota.Tokens(1)}, &TooLarge{Bucket: "zero", Kind: quota.TokensPerDay, Capacity: 0, Cost: 1}},
		{Request{Key: Key{Name: "x", DailyTokens: 500}, Set: 1, Cost: quota.Tokens(501)}, &TooLarge{Budget: true, Capacity: 500, Cost: 501}},
	}
	for _, tt := range tests {
		_, err := c.Enqueue(t0, tt.req)
		var got *TooLarge
		if !errors.As(err, &got) {
			t.Fatalf("Enqueue(%+v) = %v, want *TooLarge", tt.req, err)
		}
		if got.Hint == "" {
			t.Errorf("%+v: no hint", tt.req)
		}
		if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(TooLarge{}, "Hint")); diff != "" {
			t.Errorf("Enqueue(%+v) (-want +got):\n%s", tt.req, diff)
		}
	}
	if got := c.Status(t0); got.Queued != 0 || got.InFlight != 0 || got.Buckets[0].Available != 600 {
		t.Errorf("a too-large request changed state: %+v", got)
	}
}

func TestFairOrderAcrossKeys(t *testing.T) {
	c := New(testLedger(), Options{})
	enqueue(t, c, t0, Request{Key: carol, Set: tpm, Cost: quota.Tokens(600)}).Settle(t0, quota.Tokens(600)) // fills the minute
	var as []*Ticket
	for range 3 {
		as = append(as, enqueue(t, c, t0, Request{Key: alice, Set: tpm, Cost: quota.Tokens(100)}))
	}
	b := enqueue(t, c, t0.Add(time.Second), Request{Key: bob, Set: tpm, Cost: quota.Tokens(100)})
	var order []*Ticket
	for now := t0; now.Before(t0.Add(time.Minute)); now = now.Add(time.Second) {
		order = append(order, c.Pump(now)...)
	}
	// Alice queued first, so her first request goes first; then bob's, whose
	// start tag is lower than alice's second.
	want := []*Ticket{as[0], b, as[1], as[2]}
	if diff := cmp.Diff(want, order, cmp.Comparer(func(x, y *Ticket) bool { return x == y })); diff != "" {
		names := func(ts []*Ticket) (s []string) {
			for _, t := range ts {
				s = append(s, t.req.Key.Name)
			}
			return s
		}
		t.Errorf("grant order = %v, want %v", names(order), names(want))
	}
}

func TestNoBypassOnSharedBucketButOthersFlow(t *testing.T) {
	c := New(testLedger(), Options{})
	enqueue(t, c, t0, Request{Key: carol, Set: tpm, Cost: quota.Tokens(500)}).Settle(t0, quota.Tokens(500)) // 100 left
	big := enqueue(t, c, t0, Request{Key: alice, Set: tpm, Cost: quota.Tokens(400)})
	small := enqueue(t, c, t0, Request{Key: bob, Set: tpm, Cost: quota.Tokens(50)})       // fits, but alice is fairer
	elsewhere := enqueue(t, c, t0, Request{Key: bob, Set: other, Cost: quota.Tokens(50)}) // behind bob's own FIFO
	indep := enqueue(t, c, t0, Request{Key: Key{Name: "dave"}, Set: other, Cost: quota.Tokens(50)})
	if diff := cmp.Diff([]State{Waiting, Waiting, Waiting, Granted}, states(big, small, elsewhere, indep)); diff != "" {
		t.Fatalf("states (-want +got):\n%s", diff)
	}
	c.Pump(t0.Add(30 * time.Second)) // 400 refilled: alice, then bob's two
	if diff := cmp.Diff([]State{Granted, Waiting, Waiting}, states(big, small, elsewhere)); diff != "" {
		t.Fatalf("after refill (-want +got):\n%s", diff)
	}
	c.Pump(t0.Add(35 * time.Second))
	if diff := cmp.Diff([]State{Granted, Granted}, states(small, elsewhere)); diff != "" {
		t.Fatalf("later (-want +got):\n%s", diff)
	}
}

func TestConcurrencyAndInFlightCaps(t *testing.T) {
	c := New(testLedger(), Options{MaxInFlight: 3})
	k := Key{Name: "alice", MaxConcurrency: 2}
	a1 := enqueue(t, c, t0, Request{Key: k, Set: tpm, Cost: quota.Tokens(10)})
	a2 := enqueue(t, c, t0, Request{Key: k, Set: tpm, Cost: quota.Tokens(10)})
	a3 := enqueue(t, c, t0, Request{Key: k, Set: tpm, Cost: quota.Tokens(10)})
	b1 := enqueue(t, c, t0, Request{Key: bob, Set: tpm, Cost: quota.Tokens(10)}) // alice's cap must not block bob
	b2 := enqueue(t, c, t0, Request{Key: bob, Set: tpm, Cost: quota.Tokens(10)}) // upstream cap of 3
	if diff := cmp.Diff([]State{Granted, Granted, Waiting, Granted, Waiting}, states(a1, a2, a3, b1, b2)); diff != "" {
		t.Fatalf("states (-want +got):\n%s", diff)
	}
	if _, ok := c.NextWake(t0); !ok {
		t.Error("NextWake lost the deadlines")
	}
	b1.Settle(t0, quota.Tokens(10)) // frees the upstream slot: alice still capped, bob goes
	if diff := cmp.Diff([]State{Waiting, Granted}, states(a3, b2)); diff != "" {
		t.Fatalf("after bob settles (-want +got):\n%s", diff)
	}
	a1.Cancel(t0)
	if a3.State() != Granted {
		t.Fatalf("a3 = %v after alice's cancel", a3.State())
	}
	st := c.Status(t0)
	if st.InFlight != 3 || st.Queued != 0 {
		t.Errorf("status in flight %d queued %d", st.InFlight, st.Queued)
	}
}

func TestDailyBudget(t *testing.T) {
	c := New(testLedger(), Options{ProtectedFraction: -1})
	k := Key{Name: "alice", DailyTokens: 1000}
	a := enqueue(t, c, t0, Request{Key: k, Set: tpd, Cost: quota.Tokens(500)})
	b := enqueue(t, c, t0, Request{Key: k, Set: tpd, Cost: quota.Tokens(400)})
	w := enqueue(t, c, t0, Request{Key: k, Set: tpd, Cost: quota.Tokens(300)}) // 1,200 held: waits for a refund
	if w.State() != Waiting {
		t.Fatalf("third = %v", w.State())
	}
	a.Settle(t0, quota.Tokens(200)) // 600 charged now
	if w.State() != Granted {
		t.Fatalf("after refund third = %v", w.State())
	}
	b.Settle(t0, quota.Tokens(400))
	w.Settle(t0, quota.Tokens(300)) // 900 spent
	_, err := c.Enqueue(t0.Add(time.Minute), Request{Key: k, Set: tpd, Cost: quota.Tokens(200)})
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("over budget: %v", err)
	}
	want := &Refusal{Daily: true, Budget: true, RetryAfter: 14*time.Hour - time.Minute, KeyShare: 1000, KeyUsed: 900,
		Message: "Headroom: key alice's daily budget of 1,000 tokens is spent (used 900, this request reserves 200); it resets in 13h59m"}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("refusal (-want +got):\n%s", diff)
	}
	// Tomorrow the budget is back.
	if tk := enqueue(t, c, t0.Add(14*time.Hour), Request{Key: k, Set: tpd, Cost: quota.Tokens(1000)}); tk.State() != Granted {
		t.Errorf("next day: %v", tk.State())
	}
}

func TestDailyProtection(t *testing.T) {
	c := New(testLedger(), Options{}) // 0.5 × 10,000 split by weight: alice 1,250, bob 3,750
	c.SetKeys([]Key{alice, {Name: "bob", Weight: 3}})
	a := enqueue(t, c, t0, Request{Key: alice, Set: tpd, Cost: quota.Tokens(6250)})
	if a.State() != Granted {
		t.Fatal("alice could not use the unprotected half and her own share")
	}
	// Only bob's 3,750 is left, all protected for him. Her own 6,250 in
	// flight may come back, so the day is not spent: she is told to retry
	// within a minute, not that the day is over.
	_, err := c.Enqueue(t0, Request{Key: alice, Set: tpd, Cost: quota.Tokens(1), Deadline: t0})
	var r *Refusal
	if !errors.As(err, &r) || r.Daily || r.RetryAfter > MaxRetryAfter || r.Bucket != "tpd" || r.KeyShare != 1250 || r.KeyUsed != 6250 {
		t.Fatalf("alice over her share, held in flight: %v %+v", err, r)
	}
	bt := enqueue(t, c, t0, Request{Key: Key{Name: "bob", Weight: 3}, Set: tpd, Cost: quota.Tokens(3750)})
	if bt.State() != Granted {
		t.Fatalf("bob could not use his protected share: %v", bt.State())
	}
	st := c.Status(t0)
	want := []KeyStatus{
		{Name: "alice", Weight: 1, UsedToday: 6250, HeldNow: 6250, Requests: 1, InFlight: 1, Protected: []KeyShare{{Bucket: "tpd", Share: 1250, Used: 6250}}},
		{Name: "bob", Weight: 3, UsedToday: 3750, HeldNow: 3750, Requests: 1, InFlight: 1, Protected: []KeyShare{{Bucket: "tpd", Share: 3750, Used: 3750}}},
	}
	if diff := cmp.Diff(want, st.Keys); diff != "" {
		t.Errorf("Status keys (-want +got):\n%s", diff)
	}
	// Alice settling lower gives room back: to her too.
	a.Settle(t0, quota.Tokens(1000))
	a2 := enqueue(t, c, t0, Request{Key: alice, Set: tpd, Cost: quota.Tokens(5250)})
	if a2.State() != Granted {
		t.Errorf("after alice's refund: %v", a2.State())
	}
	// Once both have consumed what they hold, her day is spent.
	a2.Settle(t0, quota.Tokens(5250))
	bt.Settle(t0, quota.Tokens(2750))
	_, err = c.Enqueue(t0, Request{Key: alice, Set: tpd, Cost: quota.Tokens(1), Deadline: t0})
	if !errors.As(err, &r) || !r.Daily || r.RetryAfter != 14*time.Hour {
		t.Fatalf("alice over her share, settled: %v %+v", err, r)
	}
}

func TestKeyUsageRestore(t *testing.T) {
	c := New(testLedger(), Options{})
	a := enqueue(t, c, t0, Request{Key: alice, Set: both, Cost: quota.Tokens(500)})
	a.Settle(t0, quota.Tokens(300))
	enqueue(t, c, t0, Request{Key: bob, Set: tpm, Cost: quota.Tokens(100)}) // in flight at the crash
	u := c.KeyUsage(t0)
	want := quota.DayUsage{Day: "2026-05-01", Used: map[string]int64{"key:alice": 300, "key:alice/tpd": 300, "key:bob": 100}}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Fatalf("KeyUsage (-want +got):\n%s", diff)
	}
	restarted := New(testLedger(), Options{})
	u.Used["ledger/tpd"] = 5 // other entries of the stored day are ignored
	for range 2 {            // restoring twice is harmless
		if !restarted.RestoreKeys(t0, u) {
			t.Fatal("RestoreKeys refused today")
		}
	}
	delete(u.Used, "ledger/tpd")
	if diff := cmp.Diff(want, restarted.KeyUsage(t0)); diff != "" {
		t.Errorf("after restore (-want +got):\n%s", diff)
	}
	if restarted.RestoreKeys(t0.Add(24*time.Hour), u) {
		t.Error("restored yesterday")
	}
}

// TestRetryAfterProperty: on a fake clock, a refused request retried at
// now+RetryAfter (with nothing else happening) is admitted.
func TestRetryAfterProperty(t *testing.T) {
	checked, holds := 0, 0
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 3))
		w := quota.Windows{Minute: quota.MinuteMode(rng.IntN(2)), Day: quota.DayMode(rng.IntN(2))}
		rolling := w.Day == quota.Rolling
		l := quota.NewLedger([]quota.BucketSpec{
			{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 10000},
			{Name: "tpd", Kind: quota.TokensPerDay, Limit: 200000},
			{Name: "rpm", Kind: quota.RequestsPerMinute, Limit: 10},
		}, w, t0)
		c := New(l, Options{})
		keys := []Key{alice, bob, {Name: "carol", DailyTokens: 50000}}
		c.SetKeys(keys)
		now := t0
		var live []*Ticket
		for range 300 {
			now = now.Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
			if len(live) > 0 && rng.IntN(3) == 0 {
				i := rng.IntN(len(live))
				live[i].Settle(now, quota.Tokens(rng.Int64N(live[i].req.Cost.Tokens*2)))
				live = append(live[:i], live[i+1:]...)
				continue
			}
			req := Request{Key: keys[rng.IntN(3)], Set: quota.Set(1 + rng.IntN(7)), Cost: quota.Tokens(1 + rng.Int64N(5000)), Deadline: now}
			tk, err := c.Enqueue(now, req)
			if err == nil {
				live = append(live, tk)
				continue
			}
			var r *Refusal
			if !errors.As(err, &r) {
				continue // too large
			}
			// Retry at now+RetryAfter, from a quiet controller: in-flight
			// requests ended meanwhile only if the refusal did not count on them.
			later := now.Add(r.RetryAfter)
			if r.Bucket == "" && !r.Daily {
				continue // key concurrency or queue: depends on others ending
			}
			if r.Daily && rolling {
				// Budgets and protected shares reset with the day's label,
				// but a rolling day bucket still counts the last 24 hours,
				// and the other keys' protected shares are whole again.
				continue
			}
			if r.Holds || r.RetryAfter > time.Hour {
				// The wait counts on holds ending (or is so long that they
				// would have): end them now, without consuming anything,
				// and the estimate must suffice.
				for _, tk := range live {
					tk.Settle(now, quota.Tokens(0))
				}
				live = live[:0]
				holds++
			}
			tk, err = c.Enqueue(later, Request{Key: req.Key, Set: req.Set, Cost: req.Cost, Deadline: later})
			if err != nil {
				t.Fatalf("seed %d: refused %q; retried after %v: %v", seed, r.Message, r.RetryAfter, err)
			}
			checked++
			live = append(live, tk)
			now = later
		}
	}
	t.Logf("%d retries checked, %d of them after holds ended", checked, holds)
	if checked < 100 || holds < 10 {
		t.Fatalf("only %d retries checked, %d after holds ended", checked, holds)
	}
}

// TestStatusQueuedPerBucket: a bucket's queued count is the waiting
// requests that need it, not the upstream's whole queue.
func TestStatusQueuedPerBucket(t *testing.T) {
	c := New(testLedger(), Options{})
	enqueue(t, c, t0, Request{Key: alice, Set: tpm, Cost: quota.Tokens(600)}) // fills tpm
	later := t0.Add(time.Minute)
	enqueue(t, c, t0, Request{Key: bob, Set: tpm, Cost: quota.Tokens(100), Deadline: later})
	enqueue(t, c, t0, Request{Key: carol, Set: both, Cost: quota.Tokens(100), Deadline: later})
	st := c.Status(t0)
	var got []int
	for _, b := range st.Buckets {
		got = append(got, b.Queued)
	}
	if st.Queued != 2 || !cmp.Equal(got, []int{2, 1, 0}) {
		t.Errorf("queued %d, by bucket %v; want 2, [tpm 2, tpd 1, other 0]", st.Queued, got)
	}
}
