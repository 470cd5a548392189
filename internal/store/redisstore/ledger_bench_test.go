package redisstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/store/redistest"
)

// BenchmarkLedgerRoundTrip is one shared-ledger call (a reserve; its
// settlement follows as a second call, timed apart) against a PING on the
// same connection to the same redis-server: the script's own cost is the
// difference.
func BenchmarkLedgerRoundTrip(b *testing.B) {
	ctx := context.Background()
	rdb := redistest.Start(b).Client(b)
	specs := []quota.BucketSpec{{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 1e12}, {Name: "tpd", Kind: quota.TokensPerDay, Limit: 1e15}}
	l, err := NewLedger(rdb, specs, quota.Windows{}, LedgerOptions{Upstream: "bench", Replica: "r0"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ping", func(b *testing.B) {
		for b.Loop() {
			if err := rdb.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	var n int
	var settle time.Duration
	b.Run("reserve", func(b *testing.B) {
		for b.Loop() {
			n++
			id := strconv.Itoa(n)
			if _, err := l.Reserve(ctx, ReserveArgs{ID: id, Set: 3, Cost: quota.Tokens(20000), Key: "alice", Weight: 1, Day: "d"}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			start := time.Now()
			if _, err := l.Settle(ctx, id, "d", quota.Tokens(2000)); err != nil {
				b.Fatal(err)
			}
			settle += time.Since(start)
			b.StartTimer()
		}
		b.ReportMetric(float64(settle.Microseconds())/float64(b.N), "settle-us/op")
		settle = 0
	})
}
