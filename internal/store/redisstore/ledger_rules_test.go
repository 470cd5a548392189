package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/store/redistest"
)

// The rules of the shared ledger beyond quota.Ledger's arithmetic, on a
// fake clock: a dead replica's holds end when its lease runs out, a key's
// budget counts across replicas, and a key ahead in fair order waits for a
// key another replica has waiting.
func TestSharedLedgerLeaseBudgetFairness(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	specs := []quota.BucketSpec{{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 100_000}}
	open := func(rep string) *Ledger {
		l, err := NewLedger(rdb, specs, quota.Windows{}, LedgerOptions{Upstream: "rules", Replica: rep, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Beat(ctx, nil); err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b := open("a"), open("b")
	must := func(r Reply, err error) Reply {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	// Lease: a's hold outlives a by the lease (3 s), then b's beat settles it.
	if r := must(a.Reserve(ctx, ReserveArgs{ID: "a1", Set: 1, Cost: quota.Tokens(30_000), Day: "d"})); r.Outcome != OK {
		t.Fatalf("reserve: %v", r.Outcome)
	}
	for range 2 { // b beats every second (a silence would move the leases on)
		now = now.Add(time.Second)
		must(b.Beat(ctx, nil))
	}
	now = now.Add(900 * time.Millisecond)
	if r := must(b.Beat(ctx, nil)); r.Buckets[0].Reserved != 30_000 {
		t.Fatalf("within the lease: reserved %d, want 30000", r.Buckets[0].Reserved)
	}
	now = now.Add(200 * time.Millisecond)
	r := must(b.Beat(ctx, nil))
	if r.Buckets[0].Reserved != 0 || r.Buckets[0].Used == 0 {
		t.Fatalf("after the lease: reserved %d used %d, want the hold settled as used", r.Buckets[0].Reserved, r.Buckets[0].Used)
	}

	// Budget: 5,000 a day for k, spent across replicas.
	now = now.Add(time.Hour)
	must(b.Beat(ctx, nil))
	res := func(l *Ledger, id, key string, n int64) Outcome {
		return must(l.Reserve(ctx, ReserveArgs{ID: id, Set: 1, Cost: quota.Tokens(n), Key: key, Weight: 1, DailyTokens: 5000, Day: "d"})).Outcome
	}
	if o := res(b, "b1", "k", 3000); o != OK {
		t.Fatalf("first 3000 of k's 5000: %v", o)
	}
	must(b.Batch(ctx, "d", []Op{{Kind: OpSettle, ID: "b1", Cost: quota.Tokens(3000)}}))
	if o := res(b, "b2", "k", 3000); o != Budget {
		t.Fatalf("3000 more with 2000 left: %v, want budget", o)
	}

	// Fairness: k is ahead (3000 served); j waits on replica a: k may not
	// go more than one request ahead of j.
	if r := must(a.Beat(ctx, []string{"j"})); r.Outcome != OK {
		t.Fatal(r.Outcome)
	}
	if o := res(b, "b3", "k", 100); o != Fair {
		t.Fatalf("k ahead of j waiting on another replica: %v, want fair", o)
	}
	if o := res(a, "a2", "j", 100); o != OK {
		t.Fatalf("j: %v", o)
	}
	must(a.Beat(ctx, nil)) // j no longer waits
	if o := res(b, "b4", "k", 100); o != OK {
		t.Fatalf("k with no one waiting: %v", o)
	}
}
