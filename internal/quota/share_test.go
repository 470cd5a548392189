package quota

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// Share divides a bucket's limit, effective limit, floor, step and room;
// a minute bucket counts the rest of its part as used, a day bucket as
// the others'; Unshare gives the whole back and forgets the parts.
func TestShareDividesAndUnshareRestores(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := NewLedger([]BucketSpec{
		{Name: "tpm", Kind: TokensPerMinute, Limit: 90_000},
		{Name: "tpd", Kind: TokensPerDay, Limit: 900_000},
	}, Windows{}, t0)
	r, err := l.Reserve(t0, l.All(), Tokens(6_000))
	if err != nil {
		t.Fatal(err)
	}
	l.SetShared(t0, 0, 30_000) // the others hold or used 54,000 of the minute
	l.SetShared(t0, 1, 600_000)
	l.Share(t0, 3, nil)
	for _, c := range []struct {
		i                      int
		limit, eff, avail, ext int64
	}{
		{0, 30_000, 30_000, 10_000, 0},
		{1, 300_000, 300_000, 200_000, 300_000 - 6_000 - 200_000},
	} {
		b := l.Bucket(t0, c.i)
		if b.Limit != c.limit || b.Effective != c.eff || b.Available != c.avail || b.External != c.ext || b.Share != 3 {
			t.Errorf("bucket %d shared out: %+v; want limit %d, effective %d, available %d, external %d, share 3",
				c.i, b, c.limit, c.eff, c.avail, c.ext)
		}
	}
	// The minute part refills at a third of the rate: 30,000 a minute.
	if got, want := l.Available(t0.Add(20*time.Second), 0), int64(20_000); got != want {
		t.Errorf("minute part 20 s later: available %d, want %d (10,000 + 20 s at 30,000/min)", got, want)
	}
	// A request over the part's limit can never fit the part: Never, with Share.
	err = l.Fits(t0, l.All(), Tokens(40_000))
	le, ok := err.(*LimitError)
	if !ok || !le.Never || le.Share != 3 || le.Limit != 30_000 {
		t.Errorf("40,000 on a part of 30,000: %v (%+v); want Never with Share 3", err, le)
	}
	r.Settle(t0.Add(20*time.Second), Tokens(5_000))
	t1 := t0.Add(30 * time.Second)
	l.Unshare(t1)
	for i, want := range []int64{90_000, 900_000} {
		b := l.Bucket(t1, i)
		if b.Limit != want || b.Effective != want || b.External != 0 || b.Share != 0 {
			t.Errorf("bucket %d after Unshare: %+v; want limit and effective %d, nothing external", i, b, want)
		}
	}
	if got := l.Bucket(t1, 1).Used; got != 5_000 {
		t.Errorf("day used after Unshare = %d, want this ledger's own 5,000", got)
	}
	// The shared ledger's view then decides.
	l.SetShared(t1, 0, 12_345)
	if got := l.Available(t1, 0); got != 12_345 {
		t.Errorf("available after Unshare and SetShared = %d, want 12,345", got)
	}
}

// AIMD on a part scales back: a part cut to its floor gives the whole its
// floor back, not less; a part at its limit gives the whole limit.
func TestUnshareKeepsAIMD(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := NewLedger([]BucketSpec{{Name: "tpm", Kind: TokensPerMinute, Limit: 100_000}}, Windows{}, t0)
	l.Share(t0, 4, nil)
	for i := range 10 {
		l.Throttled(t0.Add(time.Duration(i)*2*time.Second), l.All())
	}
	t1 := t0.Add(21 * time.Second)
	if got, want := l.Bucket(t1, 0).Effective, int64(2_500); got != want {
		t.Fatalf("part after ten throttles: effective %d, want its floor %d", got, want)
	}
	l.Unshare(t1)
	if got, want := l.Bucket(t1, 0).Effective, int64(10_000); got != want {
		t.Errorf("whole after Unshare: effective %d, want the floor %d", got, want)
	}
}

// n replicas, each on its part of a ledger they shared until now, never
// admit together what the whole ledger (the account) would refuse: every
// reserve a part grants, the whole grants too, through random reserves,
// settlements and cancellations over several minutes, on every kind of
// window, starting from random shared states with holds of each replica.
func TestShareNeverAdmitsMoreThanTheWhole(t *testing.T) {
	specs := []BucketSpec{
		{Name: "tpm", Kind: TokensPerMinute, Limit: 100_000},
		{Name: "rpm", Kind: RequestsPerMinute, Limit: 40},
		{Name: "tpd", Kind: TokensPerDay, Limit: 1_000_000},
	}
	for _, w := range []Windows{{}, {Minute: Clock, Day: Rolling}} {
		for seed := range uint64(40) {
			t.Run(fmt.Sprintf("%v-%v-%d", w.Minute, w.Day, seed), func(t *testing.T) {
				shareProperty(t, specs, w, seed)
			})
		}
	}
}

type heldPair struct {
	part, whole Reservation
	cost        int64
	replica     int
}

func shareProperty(t *testing.T, specs []BucketSpec, w Windows, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	n := 2 + rng.IntN(3)
	now := time.Date(2026, 3, 1, 12, 0, 17, 0, time.UTC)
	whole := NewLedger(specs, w, now)
	parts := make([]*Ledger, n)
	for i := range parts {
		parts[i] = NewLedger(specs, w, now)
	}
	var live []heldPair
	end := func(k int, cancel bool) {
		h := live[k]
		live = append(live[:k], live[k+1:]...)
		if cancel {
			h.part.Cancel(now)
			h.whole.Cancel(now)
			return
		}
		c := Tokens(rng.Int64N(h.cost + 1)) // never more than held
		h.part.Settle(now, c)
		h.whole.Settle(now, c)
	}
	view := func(i int) { // replica i hears the shared state
		for b := range specs {
			parts[i].SetShared(now, b, whole.Available(now, b))
		}
	}
	// Shared: every replica reserves in its own ledger and in the whole.
	for range 40 + rng.IntN(80) {
		now = now.Add(time.Duration(rng.IntN(800)) * time.Millisecond)
		i := rng.IntN(n)
		view(i)
		cost := 1_000 + rng.Int64N(15_000)
		p, err := parts[i].Reserve(now, parts[i].All(), Tokens(cost))
		if err != nil {
			continue
		}
		wr, err := whole.Reserve(now, whole.All(), Tokens(cost))
		if err != nil {
			p.Cancel(now)
			continue
		}
		live = append(live, heldPair{p, wr, cost, i})
		for len(live) > 0 && rng.IntN(4) != 0 {
			end(rng.IntN(len(live)), rng.IntN(5) == 0)
		}
	}
	// Redis is gone: each replica splits what it last heard. Some have a
	// request admitted locally whose shared reserve got no answer: the
	// whole does not count it; it stays if it fits the part.
	for i := range parts {
		view(i)
		var pending *Reservation
		var unshared []int64
		cost := 1_000 + rng.Int64N(15_000)
		if rng.IntN(2) == 0 {
			if p, err := parts[i].Reserve(now, parts[i].All(), Tokens(cost)); err == nil {
				pending = &p
				unshared = []int64{cost, 1, cost}
			}
		}
		parts[i].Share(now, n, unshared)
		if pending == nil {
			continue
		}
		fits := true
		for b := range specs {
			fits = fits && parts[i].Available(now, b) >= 0
		}
		if !fits {
			pending.Cancel(now)
			continue
		}
		wr, err := whole.Reserve(now, whole.All(), Tokens(cost))
		if err != nil {
			t.Fatalf("replica %d of %d kept its pending %d on its part, which the whole ledger refuses: %v\nwhole %+v\npart %+v",
				i, n, cost, err, whole.Snapshot(now), parts[i].Snapshot(now))
		}
		live = append(live, heldPair{*pending, wr, cost, i})
	}
	for step := range 1500 {
		now = now.Add(time.Duration(rng.IntN(400)) * time.Millisecond)
		if len(live) > 0 && rng.IntN(2) == 0 {
			end(rng.IntN(len(live)), rng.IntN(6) == 0)
			continue
		}
		i := rng.IntN(n)
		cost := 500 + rng.Int64N(12_000)
		p, err := parts[i].Reserve(now, parts[i].All(), Tokens(cost))
		if err != nil {
			continue
		}
		wr, err := whole.Reserve(now, whole.All(), Tokens(cost))
		if err != nil {
			t.Fatalf("step %d: replica %d of %d admitted %d on its part, which the whole ledger refuses: %v\nwhole %+v\npart %+v",
				step, i, n, cost, err, whole.Snapshot(now), parts[i].Snapshot(now))
		}
		live = append(live, heldPair{p, wr, cost, i})
	}
}

// A reservation the shared ledger never heard of (its shared reserve got
// no answer) counts wholly against its own replica's part: with 40,000
// left across two replicas and 15,000 held that way by the first, the
// first has 20,000 - 15,000 left and the second 20,000.
func TestShareCountsUnsharedHoldsInTheirPart(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	specs := []BucketSpec{{Name: "tpm", Kind: TokensPerMinute, Limit: 100_000}}
	p0, p1 := NewLedger(specs, Windows{}, t0), NewLedger(specs, Windows{}, t0)
	for _, p := range []*Ledger{p0, p1} {
		p.SetShared(t0, 0, 40_000)
	}
	if _, err := p0.Reserve(t0, p0.All(), Tokens(15_000)); err != nil {
		t.Fatal(err)
	}
	p0.Share(t0, 2, []int64{15_000})
	p1.Share(t0, 2, nil)
	if a0, a1 := p0.Available(t0, 0), p1.Available(t0, 0); a0 != 5_000 || a1 != 20_000 {
		t.Errorf("parts' room: %d and %d, want 5000 and 20000", a0, a1)
	}
}
