package quota

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// checkInvariants compares the ledger's running totals with the live
// reservations, and the snapshot's arithmetic.
func checkInvariants(t *testing.T, l *Ledger, now time.Time) {
	t.Helper()
	snap := l.Snapshot(now)
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.b {
		b := &l.b[i]
		var held int64
		var inflight int
		for _, s := range l.slots {
			if !s.live || !s.set.Has(i) {
				continue
			}
			inflight++
			if b.part != partNone {
				held += s.held[b.part]
			}
		}
		if b.reserved != held || b.inflight != inflight {
			t.Fatalf("bucket %s: reserved %d inflight %d, live reservations say %d and %d", b.name, b.reserved, b.inflight, held, inflight)
		}
		if b.used < 0 || b.frac >= uint64(b.period) || b.used == 0 && b.frac != 0 {
			t.Fatalf("bucket %s: used %d and %d/%d drained", b.name, b.used, b.frac, b.period)
		}
		if b.roll != nil {
			var sum int64
			for _, n := range b.roll.slots {
				sum += n
			}
			if sum != b.used {
				t.Fatalf("bucket %s: used %d, the minutes of the day say %d", b.name, b.used, sum)
			}
		}
		st := snap[i]
		if st.Used+st.Reserved+st.Available != st.Effective || st.Available > st.Effective {
			t.Fatalf("bucket %s: used %d + reserved %d + available %d != effective %d", b.name, st.Used, st.Reserved, st.Available, st.Effective)
		}
		if st.Effective < st.Limit/10 || st.Effective > st.Limit {
			t.Fatalf("bucket %s: effective %d outside [limit/10, limit] of %d", b.name, st.Effective, st.Limit)
		}
	}
}

// TestRetryAfterProperty: a refused reservation fits at exactly now+RetryAfter
// and not a nanosecond earlier, under random traffic, windows and throttles;
// Never only when the cost exceeds a limit; the running totals always agree
// with the live reservations.
func TestRetryAfterProperty(t *testing.T) {
	var refused, nevers, holds int
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		w := Windows{Minute: MinuteMode(rng.IntN(2)), Day: DayMode(rng.IntN(2)), DayResetHour: rng.IntN(24)}
		specs := []BucketSpec{
			{Name: "tpm", Kind: TokensPerMinute, Limit: 1000 + rng.Int64N(100000)},
			{Name: "tpd", Kind: TokensPerDay, Limit: 100000 + rng.Int64N(10000000)},
			{Name: "rpm", Kind: RequestsPerMinute, Limit: 1 + rng.Int64N(20)},
			{Name: "tpm2", Kind: TokensPerMinute, Limit: 1000 + rng.Int64N(100000)},
			{Name: "input", Kind: InputTokensPerMinute, Limit: 1000 + rng.Int64N(100000)},
			{Name: "output", Kind: OutputTokensPerMinute, Limit: 1000 + rng.Int64N(30000)},
		}
		now := t0.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
		l := NewLedger(specs, w, now)
		var live []Reservation
		for range 400 {
			switch r := rng.IntN(100); {
			case r < 5:
				now = now.Add(time.Duration(rng.Int64N(int64(6 * time.Hour))))
			default:
				now = now.Add(time.Duration(rng.Int64N(int64(5 * time.Second))))
			}
			set := Set(1 + rng.IntN(63))
			// A cost in every part (runtime and Mantle buckets share the
			// ledger here to cover every mix); the output part is
			// usually 0 at admission, as the gateway reserves it.
			cost := func(scale int64) Cost {
				c := Cost{Tokens: rng.Int64N(scale), Input: rng.Int64N(scale)}
				if rng.IntN(4) == 0 {
					c.Output = rng.Int64N(scale / 4)
				}
				return c
			}
			switch op := rng.IntN(100); {
			case op < 45:
				tokens := cost(specs[0].Limit / 2)
				if rng.IntN(20) == 0 {
					tokens = cost(2 * specs[1].Limit)
				}
				res, err := l.Reserve(now, set, tokens)
				if err == nil {
					live = append(live, res)
					break
				}
				var le *LimitError
				if !errors.As(err, &le) {
					t.Fatalf("seed %d: %v is not a *LimitError", seed, err)
				}
				refused++
				if le.Never {
					nevers++
					if le.Need <= le.Limit {
						t.Fatalf("seed %d: Never for need %d within limit %d", seed, le.Need, le.Limit)
					}
					break
				}
				if le.RetryAfter <= 0 {
					t.Fatalf("seed %d: refused with RetryAfter %v", seed, le.RetryAfter)
				}
				if le.Holds {
					// The window alone cannot make room: some bucket's
					// holds leave less than the need even at its limit.
					holds++
					if !holdsBind(l, now, set, tokens) {
						t.Fatalf("seed %d: %v: flagged Holds, but no bucket's holds keep it out", seed, le)
					}
					if est := l.HoldEstimate(); le.RetryAfter < est {
						t.Fatalf("seed %d: %v: waits on holds less than the hold estimate %v", seed, le, est)
					}
					// Once the holds end (here at once: every live request
					// settles at its hold, so nothing more is consumed),
					// it fits at RetryAfter, which is then at least the
					// exact wait.
					for _, r := range live {
						r.Settle(now, Cost{})
					}
					live = live[:0]
					exact, never := l.Wait(now, set, tokens)
					if never || exact > le.RetryAfter {
						t.Fatalf("seed %d: %v: with the holds gone the wait is %v (never %v), more than RetryAfter", seed, le, exact, never)
					}
				} else if err := l.Fits(now.Add(le.RetryAfter-1), set, tokens); err == nil {
					t.Fatalf("seed %d: fits at RetryAfter-1ns (%v): RetryAfter is not the earliest", seed, le.RetryAfter)
				}
				now = now.Add(le.RetryAfter)
				if err := l.Fits(now, set, tokens); err != nil {
					t.Fatalf("seed %d: refused %v, retried after %v: %v", seed, le, le.RetryAfter, err)
				}
			case op < 60 && len(live) > 0:
				live[rng.IntN(len(live))].Adjust(now, cost(specs[0].Limit))
			case op < 80 && len(live) > 0:
				i := rng.IntN(len(live))
				live[i].Settle(now, cost(specs[0].Limit))
				live = append(live[:i], live[i+1:]...)
			case op < 95 && len(live) > 0:
				i := rng.IntN(len(live))
				live[i].Cancel(now)
				live = append(live[:i], live[i+1:]...)
			default:
				l.Throttled(now, set)
			}
			checkInvariants(t, l, now)
		}
		for _, r := range live {
			if !r.Cancel(now) {
				t.Fatalf("seed %d: a live reservation was already ended", seed)
			}
		}
		for _, st := range l.Snapshot(now) {
			if st.InFlight != 0 || st.Reserved != 0 {
				t.Fatalf("seed %d: bucket %s after cancelling all: in flight %d, reserved %d", seed, st.Name, st.InFlight, st.Reserved)
			}
		}
	}
	t.Logf("%d refusals, %d of them never, %d on holds", refused, nevers, holds)
	if refused-nevers-holds < 100 || nevers == 0 || holds < 20 {
		t.Fatalf("too few refusals (%d, %d never, %d on holds) for the property to mean anything", refused, nevers, holds)
	}
}

// holdsBind reports whether some bucket of set could not take cost even
// with its window empty and its effective limit back at the limit: only
// live reservations ending can make room.
func holdsBind(l *Ledger, now time.Time, set Set, cost Cost) bool {
	for _, st := range l.Snapshot(now) {
		i, _ := l.Index(st.Name)
		n := cost.Of(st.Kind)
		if set.Has(i) && n <= st.Limit && n > st.Limit-st.Reserved {
			return true
		}
	}
	return false
}

// TestConcurrent hammers one ledger from many goroutines (run with -race):
// every reservation ends exactly once and nothing leaks.
func TestConcurrent(t *testing.T) {
	specs := []BucketSpec{
		{Name: "tpm", Kind: TokensPerMinute, Limit: 50000},
		{Name: "tpd", Kind: TokensPerDay, Limit: 10000000},
		{Name: "rpm", Kind: RequestsPerMinute, Limit: 100},
	}
	l := NewLedger(specs, Windows{}, t0)
	var mu sync.Mutex
	ended := 0
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 2000 {
				now := t0.Add(time.Duration(i) * 10 * time.Millisecond)
				res, err := l.Reserve(now, l.All(), Tokens(rng.Int64N(2000)))
				if err != nil {
					continue
				}
				res.Adjust(now, Tokens(rng.Int64N(3000)))
				n := 0
				if res.Settle(now, Tokens(rng.Int64N(3000))) {
					n++
				}
				if res.Cancel(now) || res.Settle(now, Tokens(1)) {
					n++
				}
				mu.Lock()
				ended += n
				mu.Unlock()
				if n != 1 {
					t.Errorf("reservation ended %d times", n)
				}
			}
		})
	}
	wg.Wait()
	end := t0.Add(time.Hour)
	checkInvariants(t, l, end)
	for _, st := range l.Snapshot(end) {
		if st.InFlight != 0 || st.Reserved != 0 {
			t.Errorf("bucket %s: in flight %d, reserved %d after all ended", st.Name, st.InFlight, st.Reserved)
		}
	}
	if ended == 0 {
		t.Fatal("no reservation succeeded")
	}
}
