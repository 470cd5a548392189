package forecast

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestPooledEqualsOne: three replicas' trackers, each recording part of
// the same random settlements over two hours (a day boundary inside), and
// handing its counts over now and then (Take) as a store would keep them
// (by minute for the last hour, by day), give the view (Load) that one
// tracker recording everything gives: the same rates, top consumers and
// keys' day totals.
func TestPooledEqualsOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 3, 1, 22, 30, 0, 0, time.UTC)
	one := NewTracker(start, 23)
	var reps []*Tracker
	for range 3 {
		r := NewTracker(start, 23)
		r.Share()
		reps = append(reps, r)
	}
	for _, tr := range append([]*Tracker{one}, reps...) {
		tr.Series("us", "tpm")
		tr.Series("us", "tpd")
	}
	minutes, days := map[[2]int64]int64{}, map[[2]int64]int64{} // a store's hashes, (minute or day, field) summed
	fields := map[int64]Count{}
	keep := func(cs []Count) {
		for _, c := range cs {
			f := int64(len(fields))
			for i, o := range fields {
				if o.Key == c.Key && o.Series == c.Series {
					f = i
				}
			}
			fields[f] = Count{Key: c.Key, Series: c.Series}
			minutes[[2]int64{c.Minute, f}] += c.Tokens
			days[[2]int64{c.Day, f}] += c.Tokens
		}
	}
	now := start
	keys := []string{"alice", "bob", "carol", "dave"}
	for range 400 {
		now = now.Add(time.Duration(rng.Int64N(int64(40 * time.Second))))
		k := keys[rng.IntN(len(keys))]
		n := 1 + rng.Int64N(5000)
		parts := []Part{{0, n}, {1, n / 2}}
		one.Record(now, k, n, parts)
		r := reps[rng.IntN(len(reps))]
		r.Record(now, k, n, parts)
		if rng.IntN(10) == 0 {
			keep(r.Take())
		}
	}
	for _, r := range reps {
		keep(r.Take())
	}
	m, d := one.MinuteDay(now)
	var counts []Count
	for k, n := range minutes {
		if k[0] > m-Minutes {
			c := fields[k[1]]
			c.Minute, c.Day, c.Tokens = k[0], -1, n
			counts = append(counts, c)
		}
	}
	for k, n := range days {
		if k[0] == d {
			c := fields[k[1]]
			c.Minute, c.Day, c.Tokens = -1, k[0], n
			counts = append(counts, c)
		}
	}
	pooled := Load(now, start, 23, one.Names(), counts)
	opt := cmpopts.EquateApprox(0, 1e-9)
	if diff := cmp.Diff(one.Snapshot(now, 3), pooled.Snapshot(now, 3), opt); diff != "" {
		t.Errorf("pooled view differs from one tracker's (-one +pooled):\n%s", diff)
	}
	for _, k := range keys {
		if a, b := one.Today(now, k), pooled.Today(now, k); a != b {
			t.Errorf("%s today: one %d, pooled %d", k, a, b)
		}
	}
	if one.Today(now, "alice") == 0 {
		t.Error("nothing counted today: the test proves nothing")
	}
}
