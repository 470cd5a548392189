package redisstore

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/store/redistest"
)

var evalshaRE = regexp.MustCompile(`cmdstat_evalsha:calls=\d+,usec=\d+,usec_per_call=([\d.]+)`)

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
			if _, err := l.Batch(ctx, "d", []Op{{Kind: OpSettle, ID: id, Cost: quota.Tokens(2000)}}); err != nil {
				b.Fatal(err)
			}
			settle += time.Since(start)
			b.StartTimer()
		}
		b.ReportMetric(float64(settle.Microseconds())/float64(b.N), "settle-us/op")
		settle = 0
		// Redis's own time per script call (reserves and settles), which
		// the machine's scheduling affects less than the round trip.
		info, err := rdb.Info(ctx, "commandstats").Result()
		if err != nil {
			b.Fatal(err)
		}
		if m := evalshaRE.FindStringSubmatch(info); m != nil {
			us, _ := strconv.ParseFloat(m[1], 64)
			b.ReportMetric(us, "script-us/call")
		}
		rdb.ConfigResetStat(ctx)
	})
}
