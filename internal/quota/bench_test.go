package quota

import (
	"testing"
	"time"
)

func benchLedger() *Ledger {
	return NewLedger([]BucketSpec{
		{Name: "sonnet-tpm", Kind: TokensPerMinute, Limit: 200000},
		{Name: "account-tpd", Kind: TokensPerDay, Limit: 144000000},
		{Name: "sonnet-rpm", Kind: RequestsPerMinute, Limit: 200},
	}, Windows{}, t0)
}

// BenchmarkReserveSettle is the gateway's fast path: reserve from three
// buckets, settle lower. Time advances so buckets refill.
func BenchmarkReserveSettle(b *testing.B) {
	l := benchLedger()
	set := l.All()
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(300 * time.Millisecond)
		res, err := l.Reserve(now, set, Tokens(1000))
		if err != nil {
			b.Fatal(err)
		}
		res.Settle(now, Tokens(400))
	}
}

// BenchmarkReserveSettleParallel is the same under contention on one ledger.
func BenchmarkReserveSettleParallel(b *testing.B) {
	l := NewLedger([]BucketSpec{
		{Name: "tpm", Kind: TokensPerMinute, Limit: 1 << 40},
		{Name: "tpd", Kind: TokensPerDay, Limit: 1 << 50},
	}, Windows{}, t0)
	set := l.All()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		now := t0
		for pb.Next() {
			now = now.Add(time.Microsecond)
			res, err := l.Reserve(now, set, Tokens(1000))
			if err != nil {
				b.Error(err)
				return
			}
			res.Settle(now, Tokens(400))
		}
	})
}

// BenchmarkRefused is the refusal path (allocates its *LimitError).
func BenchmarkRefused(b *testing.B) {
	l := benchLedger()
	if _, err := l.Reserve(t0, l.All(), Tokens(200000)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Reserve(t0, l.All(), Tokens(1000)); err == nil {
			b.Fatal("admitted")
		}
	}
}

// BenchmarkReserveSettleCounters is the fast path with the other window
// modes: clock minutes and a rolling day (per-minute slots).
func BenchmarkReserveSettleCounters(b *testing.B) {
	l := NewLedger([]BucketSpec{
		{Name: "sonnet-tpm", Kind: TokensPerMinute, Limit: 200000},
		{Name: "account-tpd", Kind: TokensPerDay, Limit: 144000000},
		{Name: "sonnet-rpm", Kind: RequestsPerMinute, Limit: 200},
	}, Windows{Minute: Clock, Day: Rolling}, t0)
	set := l.All()
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(300 * time.Millisecond)
		res, err := l.Reserve(now, set, Tokens(1000))
		if err != nil {
			b.Fatal(err)
		}
		res.Settle(now, Tokens(400))
	}
}

// BenchmarkWaitRollingDay is the slowest wait: a rolling day with usage in
// every minute, asked for room that only the last minute's expiry makes.
func BenchmarkWaitRollingDay(b *testing.B) {
	l := NewLedger([]BucketSpec{{Name: "tpd", Kind: TokensPerDay, Limit: 1440 * 1000}}, Windows{Day: Rolling}, t0)
	now := t0
	for range 1440 {
		r, err := l.Reserve(now, l.All(), Tokens(1000))
		if err != nil {
			b.Fatal(err)
		}
		r.Settle(now, Tokens(1000))
		now = now.Add(time.Minute - time.Second)
	}
	b.ReportAllocs()
	for b.Loop() {
		if w, never := l.Wait(now, l.All(), Tokens(1000*1400)); never || w <= 0 {
			b.Fatal(w, never)
		}
	}
}
