package redisstore

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/store/redistest"
)

// TestSharedCarriesInOrder: the operations a Shared sends on other calls
// (settlements riding on reserves, batches) reach Redis in order while
// reserves run concurrently: a shadow overdraft settled at once is made
// before its settlement runs, so no hold is left behind. Sent out of order,
// the settlement finds no hold, and the overdraft's hold stays until the
// replica's lease runs out.
func TestSharedCarriesInOrder(t *testing.T) {
	ctx := context.Background()
	sh, l, stop := runShared(t, "order", 1e12, 1e15)

	key := admission.Key{Name: "k", Weight: 1}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 150 {
				h := admission.SharedHold{ID: strconv.Itoa(g) + "-" + strconv.Itoa(i), Key: key, Set: 3, Cost: quota.Tokens(1000), Day: "d"}
				if i%2 == 0 {
					// Give a reserve the time to take the overdraft
					// alone, and another the settlement.
					sh.Overdraw(h)
					time.Sleep(time.Duration(i%7) * 20 * time.Microsecond)
					sh.End(h, quota.Tokens(500), false, 0)
					continue
				}
				if err := sh.Reserve(ctx, h); err != nil {
					t.Error(err)
					return
				}
				sh.End(h, quota.Tokens(500), false, 0)
			}
		})
	}
	wg.Wait()
	stop() // Run's last act sends what is pending
	rep, err := l.Peek(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range rep.Buckets {
		if b.Reserved != 0 {
			t.Errorf("bucket %d: %d tokens still held after every hold ended (%d holds of 1000 left): operations reached Redis out of order", i, b.Reserved, b.Reserved/1000)
		}
	}
	if want := int64(1200 * 500); rep.Buckets[1].Used != want {
		t.Errorf("day bucket used %d, want %d (1,200 requests of 500)", rep.Buckets[1].Used, want)
	}
}

// TestSharedStopSendsHeldBackSettlements: a settlement whose refund the
// gateway's settle delay holds back is still sent when the replica stops
// (Run's context ends), not left for another replica's reaper to settle
// at all the hold held a lease later.
func TestSharedStopSendsHeldBackSettlements(t *testing.T) {
	ctx := context.Background()
	sh, l, stop := runShared(t, "stop", 1e6, 1e9)
	h := admission.SharedHold{ID: "held-back", Key: admission.Key{Name: "k", Weight: 1}, Set: 3, Cost: quota.Tokens(20_000), Day: "d"}
	if err := sh.Reserve(ctx, h); err != nil {
		t.Fatal(err)
	}
	sh.End(h, quota.Tokens(300), false, time.Minute) // the refund held back a minute
	stop()
	rep, err := l.Peek(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b := rep.Buckets[1]; b.Reserved != 0 || b.Used != 300 {
		t.Errorf("after the replica stopped: day bucket reserved %d, used %d; want 0 and 300 (the settlement sent)", b.Reserved, b.Used)
	}
}

// runShared runs a Shared for upstream on a fresh redis-server, with a
// minute and a day bucket of tpm and tpd tokens, and returns it, its
// ledger, and stop, which ends Run and waits until it has returned.
func runShared(t *testing.T, upstream string, tpm, tpd int64) (*Shared, *Ledger, func()) {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	specs := []quota.BucketSpec{{Name: "tpm", Kind: quota.TokensPerMinute, Limit: tpm}, {Name: "tpd", Kind: quota.TokensPerDay, Limit: tpd}}
	local := quota.NewLedger(specs, quota.Windows{}, time.Now())
	l, err := NewLedger(rdb, specs, quota.Windows{}, LedgerOptions{Upstream: upstream, Replica: "r0", Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sh := NewShared(l, local, SharedOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sh.Run(ctx, admission.New(local, admission.Options{})); close(done) }()
	return sh, l, func() { cancel(); <-done }
}
