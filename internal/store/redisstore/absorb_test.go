package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/store/redistest"
)

// What replicas used on their own while Redis was out of reach of all of
// them is absorbed once per token, into the buckets, the keys' day and
// the holds; their leases survive the silence (the live ones are not
// reaped for it, a dead one still is a lease later); and a ledger Redis
// lost meanwhile absorbs nothing (the replica re-publishes instead).
func TestAbsorbOnceAfterSilence(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	specs := []quota.BucketSpec{
		{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 100_000},
		{Name: "tpd", Kind: quota.TokensPerDay, Limit: 1_000_000},
	}
	open := func(rep string) *Ledger {
		l, err := NewLedger(rdb, specs, quota.Windows{}, LedgerOptions{Upstream: "absorb", Replica: rep, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	must := func(r Reply, err error) Reply {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := open("a"), open("b")
	must(a.Beat(ctx, nil))
	must(b.Beat(ctx, nil))
	r := must(a.Reserve(ctx, ReserveArgs{ID: "a:1", Set: 3, Cost: quota.Tokens(30_000), Key: "k", Day: "d"}))
	gen := r.Gen

	// Redis out of reach of both for 5 s (more than the 3 s lease): b
	// comes back first; a's hold is not reaped for the silence.
	now = now.Add(5 * time.Second)
	if r := must(b.Beat(ctx, nil)); r.Buckets[0].Reserved != 30_000 {
		t.Fatalf("after a silence longer than the lease: reserved %d, want a's 30000 kept", r.Buckets[0].Reserved)
	}
	share := RestoreArgs{Day: "d", Used: map[int]int64{0: 20_000, 1: 20_000}, Keys: map[string]int64{"k": 20_000},
		Holds: []Hold{{ID: "a:2", Set: 3, Held: quota.Tokens(10_000), Key: "k", Tokens: 10_000, Weight: 1}}}
	r = must(a.Absorb(ctx, "a-1", gen, share))
	want := []BucketView{{Effective: 100_000, Used: 20_000, Reserved: 40_000}, {Effective: 1_000_000, Used: 20_000, Reserved: 40_000}}
	if r.Outcome != OK || r.Buckets[0] != want[0] || r.Buckets[1] != want[1] {
		t.Fatalf("absorb: %v %+v, want ok %+v", r.Outcome, r.Buckets, want)
	}
	keyDay := func() int64 {
		n, _ := rdb.HGet(ctx, "headroom:{ledger}:keyday:d", "k").Int64()
		return n
	}
	if got := keyDay(); got != 30_000+20_000+10_000 {
		t.Fatalf("k's tokens today after absorb: %d, want 60000", got)
	}
	// The reply was lost: the retry counts nothing twice.
	r = must(a.Absorb(ctx, "a-1", gen, share))
	if r.Buckets[0] != want[0] || r.Buckets[1] != want[1] || keyDay() != 60_000 {
		t.Fatalf("absorb again: %+v, k %d; want unchanged %+v, 60000", r.Buckets, keyDay(), want)
	}
	// The published hold settles like any other.
	r = must(a.Batch(ctx, "d", []Op{{Kind: OpSettle, ID: "a:2", Cost: quota.Tokens(4_000)}}))
	if r.Outcome != OK || r.Buckets[1].Used != 24_000 || r.Buckets[1].Reserved != 30_000 || keyDay() != 54_000 {
		t.Fatalf("settle of an absorbed hold: %v %+v, k %d", r.Outcome, r.Buckets, keyDay())
	}

	// a dies: b beats every second; a lease after a's last call its hold
	// is reaped.
	for range 3 {
		now = now.Add(time.Second)
		must(b.Beat(ctx, nil))
	}
	now = now.Add(100 * time.Millisecond)
	if r := must(b.Beat(ctx, nil)); r.Buckets[1].Reserved != 0 {
		t.Fatalf("a dead for a lease: reserved %d, want its hold reaped", r.Buckets[1].Reserved)
	}

	// Redis lost the ledger (restarted empty): an absorb for the old
	// generation is refused and counts nothing.
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r = must(b.Absorb(ctx, "b-1", gen, share))
	if r.Outcome != Gone || r.Buckets[1].Used != 0 || r.Buckets[1].Reserved != 0 || keyDay() != 0 {
		t.Fatalf("absorb into a lost ledger: %v %+v, k %d; want gone and nothing counted", r.Outcome, r.Buckets, keyDay())
	}
}
