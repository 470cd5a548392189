package admission

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
)

// TestBudgetHeldIsNotSpent: a key whose daily budget is reached only by
// its own requests in flight is not told its budget is spent. Its queued
// request's deadline passes while they hold 54,000 of 60,000 with 16,488
// settled: the refusal is a short one (Retry-After at most a minute, not
// Daily, so no x-should-retry: false), and once they settle low the same
// request is admitted. It used to count the holds as spent, mark the
// refusal Daily, and say to wait until the day's reset.
func TestBudgetHeldIsNotSpent(t *testing.T) {
	k := Key{Name: "alice", DailyTokens: 60000}
	l := quota.NewLedger([]quota.BucketSpec{{Name: "tpd", Kind: quota.TokensPerDay, Limit: 1_000_000}}, quota.Windows{}, t0)
	c := New(l, Options{ProtectedFraction: -1})
	done := enqueue(t, c, t0, Request{Key: k, Set: 1, Cost: quota.Tokens(20000)})
	done.Settle(t0, quota.Tokens(16488))
	var held []*Ticket
	for range 3 {
		held = append(held, enqueue(t, c, t0, Request{Key: k, Set: 1, Cost: quota.Tokens(14000)}))
	}
	w := enqueue(t, c, t0, Request{Key: k, Set: 1, Cost: quota.Tokens(14000), Deadline: t0.Add(30 * time.Second)})
	if w.State() != Waiting {
		t.Fatalf("fourth request: %v, want waiting", w.State())
	}
	c.Pump(t0.Add(31 * time.Second))
	var r *Refusal
	if !errors.As(w.Err(), &r) {
		t.Fatalf("after the deadline: %v, want a refusal", w.Err())
	}
	if r.Daily || r.RetryAfter > MaxRetryAfter || r.RetryAfter < time.Second {
		t.Fatalf("refusal Daily=%v RetryAfter=%v (%s), want a per-minute style refusal of at most %v", r.Daily, r.RetryAfter, r.Message, MaxRetryAfter)
	}
	for _, h := range held {
		h.Settle(t0.Add(40*time.Second), quota.Tokens(3000))
	}
	if tk := enqueue(t, c, t0.Add(40*time.Second), Request{Key: k, Set: 1, Cost: quota.Tokens(14000)}); tk.State() != Granted {
		t.Errorf("the same request after the holds settled: %v, want granted", tk.State())
	}
}

// TestRetryAfterAtMostAMinute is a property over random ledger states
// (fixed and rolling windows, budgets, protection, holds, refunds held
// back): every refusal that is not Daily says a Retry-After of 1-60 s,
// and every Daily one is a limit spent by settled usage, which giving back
// every hold in flight does not undo within a minute.
func TestRetryAfterAtMostAMinute(t *testing.T) {
	var short, daily int
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 13))
		w := quota.Windows{Minute: quota.MinuteMode(rng.IntN(2)), Day: quota.DayMode(rng.IntN(2))}
		l := quota.NewLedger([]quota.BucketSpec{
			{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 20000},
			{Name: "tpd", Kind: quota.TokensPerDay, Limit: 400000},
			{Name: "rpm", Kind: quota.RequestsPerMinute, Limit: 10},
		}, w, t0)
		c := New(l, Options{MaxInFlight: 1 + rng.IntN(8), ProtectedFraction: []float64{-1, 0.5}[rng.IntN(2)]})
		keys := []Key{alice, {Name: "bob", Weight: 2, MaxConcurrency: 2}, {Name: "carol", DailyTokens: 30000}}
		c.SetKeys(keys)
		now := t0
		var live []*Ticket
		for range 400 {
			now = now.Add(time.Duration(rng.Int64N(int64(5 * time.Second))))
			if len(live) > 0 && rng.IntN(3) == 0 {
				i := rng.IntN(len(live))
				live[i].SettleAfter(now, quota.Tokens(rng.Int64N(live[i].req.Cost.Tokens*2)), time.Duration(rng.IntN(2))*200*time.Millisecond)
				live = append(live[:i], live[i+1:]...)
				continue
			}
			req := Request{Key: keys[rng.IntN(3)], Set: quota.Set(1 + rng.IntN(7)), Cost: quota.Tokens(1 + rng.Int64N(9000)),
				Deadline: now.Add(time.Duration(rng.IntN(3)) * 10 * time.Second)}
			tk, err := c.Enqueue(now, req)
			if err == nil && tk.State() == Waiting {
				c.Pump(req.Deadline.Add(time.Nanosecond))
				now = req.Deadline.Add(time.Nanosecond)
				err = tk.Err()
				if tk.State() == Granted {
					err = nil
				}
			}
			if err == nil {
				live = append(live, tk)
				continue
			}
			var r *Refusal
			if !errors.As(err, &r) {
				continue // too large
			}
			if !r.Daily {
				if r.RetryAfter < time.Second || r.RetryAfter > MaxRetryAfter {
					t.Fatalf("seed %d: non-daily refusal with Retry-After %v: %s", seed, r.RetryAfter, r.Message)
				}
				short++
				continue
			}
			daily++
			// Spent: give every hold back without consuming, and the same
			// request asked a minute later is still refused as Daily.
			for _, tk := range live {
				tk.Settle(now, quota.Tokens(0))
			}
			live = live[:0]
			later := now.Add(MaxRetryAfter)
			if _, end := l.DayWindow(now); !later.Before(end) {
				continue // the day turned meanwhile
			}
			_, err = c.Enqueue(later, Request{Key: req.Key, Set: req.Set, Cost: req.Cost, Deadline: later})
			var again *Refusal
			if !errors.As(err, &again) || !again.Daily {
				t.Fatalf("seed %d: Daily refusal %q, but a minute later with no holds: %v", seed, r.Message, err)
			}
		}
	}
	t.Logf("%d short refusals, %d daily ones checked", short, daily)
	if short < 200 || daily < 20 {
		t.Fatalf("only %d short and %d daily refusals: the states explored are too few", short, daily)
	}
}
