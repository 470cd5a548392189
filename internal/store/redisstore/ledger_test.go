package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/store/redistest"
)

// The differential test of the shared ledger: ledger.lua and quota.Ledger
// are two implementations of the same accounting (as internal/simulate's
// mirror test pits quota.Ledger against the emulator). One replica driving
// the shared ledger must admit and refuse exactly what one process's
// ledger does, and leave every bucket with the same effective limit, use
// and holds, whatever the windows (shadow mode's overdrafts included).
// Adjustments, settlements, cancellations and throttles go as Shared sends
// them: two thirds at once in a batch of their own, a third carried by the
// next call (ReserveArgs.Before, or a Batch in place of a beat); a batch is
// sometimes sent twice (a retry after a lost reply), which must change
// nothing. After every call, Redis holds exactly the holds that are live,
// counting those whose end is still to be carried.

type diffLive struct {
	id    string
	local quota.Reservation
	cost  quota.Cost
	used  quota.Cost
}

func TestSharedLedgerMatchesQuotaLedger(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	for seed := range uint64(24) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			diffRun(t, rdb, seed, 400)
		})
	}
}

func diffRun(t *testing.T, rdb *redis.Client, seed uint64, steps int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 0x736861726564))
	w := quota.Windows{Minute: quota.MinuteMode(rng.IntN(2)), Day: quota.DayMode(rng.IntN(2)), DayResetHour: rng.IntN(24)}
	var specs []quota.BucketSpec
	for i := range 1 + rng.IntN(5) {
		k := quota.Kind(rng.IntN(5))
		lim := 2000 + rng.Int64N(40000)
		switch k {
		case quota.TokensPerDay:
			lim = 50000 + rng.Int64N(400000)
		case quota.RequestsPerMinute:
			lim = 1 + rng.Int64N(12)
		}
		if rng.IntN(20) == 0 {
			lim = 0
		}
		specs = append(specs, quota.BucketSpec{Name: fmt.Sprintf("b%d", i), Kind: k, Limit: lim})
	}
	// A time on whole microseconds: the shared ledger's unit.
	now := time.Date(2026, 3, 1, rng.IntN(24), rng.IntN(60), 0, 0, time.UTC).Add(time.Duration(rng.Int64N(60e6)) * time.Microsecond)
	local := quota.NewLedger(specs, w, now)
	shared, err := NewLedger(rdb, specs, w, LedgerOptions{Upstream: fmt.Sprintf("diff%d-%d", seed, time.Now().UnixNano()),
		Replica: "r1", Lease: 1000 * time.Hour, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	desc := fmt.Sprintf("windows %+v, buckets %+v", w, specs)
	rep, err := shared.Beat(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var live []*diffLive
	// carried: operations applied to the local ledger (do) and sent to
	// the shared one (op) with the next call.
	type carriedOp struct {
		do func()
		op Op
	}
	var carried []carriedOp
	carry := func() []Op {
		var ops []Op
		for _, c := range carried {
			c.do()
			ops = append(ops, c.op)
		}
		carried = nil
		return ops
	}
	// one sends op at once, in a batch of its own.
	one := func(op Op) (Reply, error) { return shared.Batch(ctx, "d", []Op{op}) }
	holds := shared.up + ":hs:r1" // the replica's holds (ledger.lua)
	check := func(step int, what string, rep Reply) {
		t.Helper()
		want := len(live)
		for _, c := range carried {
			if c.op.Kind == OpSettle || c.op.Kind == OpCancel {
				want++
			}
		}
		if n, err := rdb.HLen(ctx, holds).Result(); err != nil || n != int64(want) {
			t.Fatalf("%s\nstep %d (%s): Redis has %d holds (%v), want %d", desc, step, what, n, err, want)
		}
		snap := local.Snapshot(now)
		for i, b := range snap {
			got := rep.Buckets[i]
			if got.Effective != b.Effective || got.Used != b.Used || got.Reserved != b.Reserved {
				t.Fatalf("%s\nstep %d (%s) at %v: bucket %s (%s): shared eff/used/reserved %d/%d/%d, local %d/%d/%d",
					desc, step, what, now, b.Name, b.KindName, got.Effective, got.Used, got.Reserved, b.Effective, b.Used, b.Reserved)
			}
		}
	}
	check(0, "start", rep)
	admitted, refused := 0, 0
	for step := 1; step <= steps; step++ {
		switch r := rng.IntN(100); {
		case r < 55:
			now = now.Add(time.Duration(rng.Int64N(3e6)) * time.Microsecond)
		case r < 62:
			now = now.Add(time.Duration(rng.Int64N(120e6)) * time.Microsecond)
		case r < 64:
			now = now.Add(time.Duration(rng.Int64N(30*3600e6)) * time.Microsecond)
		case r < 67:
			// Near a day later, where a rolling day forgets a minute.
			now = now.Add(24*time.Hour - time.Duration(rng.Int64N(180e6))*time.Microsecond)
		}
		var what string
		switch r := rng.IntN(100); {
		case r < 45:
			set := quota.Set(rng.Uint64()) & local.All()
			if set == 0 {
				set = local.All()
			}
			cost := quota.Cost{Tokens: rng.Int64N(9000), Input: rng.Int64N(9000), Output: rng.Int64N(3) * rng.Int64N(2000)}
			id := fmt.Sprintf("h%d", step)
			before := carry()
			res, lerr := local.Reserve(now, set, cost)
			rep, err = shared.Reserve(ctx, ReserveArgs{ID: id, Set: set, Cost: cost, Day: "d", Before: before})
			if err != nil {
				t.Fatal(err)
			}
			var le *quota.LimitError
			switch {
			case lerr == nil && rep.Outcome != OK:
				t.Fatalf("%s\nstep %d at %v: local admitted %+v in %b, shared said %v", desc, step, now, cost, set, rep.Outcome)
			case lerr != nil && rep.Outcome == OK:
				t.Fatalf("%s\nstep %d at %v: local refused %+v in %b (%v), shared admitted", desc, step, now, cost, set, lerr)
			case errors.As(lerr, &le) && le.Never != (rep.Outcome == Never):
				t.Fatalf("%s\nstep %d: local never=%v, shared %v", desc, step, le.Never, rep.Outcome)
			}
			what = "reserve"
			if lerr != nil && rng.IntN(3) == 0 {
				// Shadow mode's hold of a request forwarded anyway.
				check(step, what, rep)
				id += "o"
				res, lerr = local.Overdraw(now, set, cost), nil
				over := []Op{{Kind: OpOverdraw, ID: id, Set: set, Cost: cost}}
				for range 1 + rng.IntN(2) { // sent again: a retry after a lost reply holds nothing more
					if rep, err = shared.Batch(ctx, "d", over); err != nil {
						t.Fatal(err)
					}
				}
				what = "overdraw"
			}
			if lerr == nil {
				live = append(live, &diffLive{id: id, local: res, cost: cost})
				admitted++
			} else {
				refused++
			}
		case r < 60 && len(live) > 0:
			l := live[rng.IntN(len(live))]
			l.used = l.used.Max(quota.Cost{Tokens: rng.Int64N(l.cost.Tokens + 3000), Input: rng.Int64N(l.cost.Input + 3000), Output: rng.Int64N(4000)})
			if rng.IntN(3) == 0 {
				used := l.used
				carried = append(carried, carriedOp{func() { l.local.Adjust(now, used) }, Op{Kind: OpAdjust, ID: l.id, Cost: used}})
				continue
			}
			l.local.Adjust(now, l.used)
			if rep, err = one(Op{Kind: OpAdjust, ID: l.id, Cost: l.used}); err != nil {
				t.Fatal(err)
			}
			what = "adjust"
		case r < 85 && len(live) > 0:
			i := rng.IntN(len(live))
			l := live[i]
			live = append(live[:i], live[i+1:]...)
			if rng.IntN(3) == 0 {
				if rng.IntN(4) == 0 {
					carried = append(carried, carriedOp{func() { l.local.Cancel(now) }, Op{Kind: OpCancel, ID: l.id}})
				} else {
					final := l.used.Max(quota.Cost{Tokens: rng.Int64N(l.cost.Tokens + 4000), Input: rng.Int64N(l.cost.Input + 4000), Output: rng.Int64N(5000)})
					carried = append(carried, carriedOp{func() { l.local.Settle(now, final) }, Op{Kind: OpSettle, ID: l.id, Cost: final}})
				}
				continue
			}
			if rng.IntN(4) == 0 {
				l.local.Cancel(now)
				rep, err = one(Op{Kind: OpCancel, ID: l.id})
				what = "cancel"
			} else {
				final := l.used.Max(quota.Cost{Tokens: rng.Int64N(l.cost.Tokens + 4000), Input: rng.Int64N(l.cost.Input + 4000), Output: rng.Int64N(5000)})
				l.local.Settle(now, final)
				rep, err = one(Op{Kind: OpSettle, ID: l.id, Cost: final})
				what = "settle"
			}
			if err != nil {
				t.Fatal(err)
			}
		case r < 90:
			set := quota.Set(rng.Uint64()) & local.All()
			if rng.IntN(3) == 0 {
				carried = append(carried, carriedOp{func() { local.Throttled(now, set) }, Op{Kind: OpThrottle, Set: set}})
				continue
			}
			local.Throttled(now, set)
			if rep, err = one(Op{Kind: OpThrottle, Set: set}); err != nil {
				t.Fatal(err)
			}
			what = "throttle"
		default:
			if len(carried) > 0 {
				ops := carry()
				if rep, err = shared.Batch(ctx, "d", ops); err != nil {
					t.Fatal(err)
				}
				what = "batch"
				if rng.IntN(4) == 0 {
					again, err := shared.Batch(ctx, "d", ops)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(again.Buckets, rep.Buckets) {
						t.Fatalf("step %d: a batch sent again changed the ledger: %+v, then %+v", step, rep.Buckets, again.Buckets)
					}
				}
				break
			}
			if rep, err = shared.Beat(ctx, nil); err != nil {
				t.Fatal(err)
			}
			what = "beat"
		}
		check(step, what, rep)
	}
	if len(carried) > 0 {
		if rep, err = shared.Batch(ctx, "d", carry()); err != nil {
			t.Fatal(err)
		}
		check(steps+1, "batch", rep)
	}
	if admitted == 0 || refused == 0 {
		t.Logf("%s: %d admitted, %d refused", desc, admitted, refused)
	}
}
