package admission

import (
	"fmt"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
)

func benchController(keys int, opts Options) (*Controller, []Key) {
	l := quota.NewLedger([]quota.BucketSpec{
		{Name: "sonnet-tpm", Kind: quota.TokensPerMinute, Limit: 1 << 40},
		{Name: "account-tpd", Kind: quota.TokensPerDay, Limit: 1 << 50},
		{Name: "sonnet-rpm", Kind: quota.RequestsPerMinute, Limit: 1 << 40},
	}, quota.Windows{}, t0)
	c := New(l, opts)
	var ks []Key
	for i := range keys {
		ks = append(ks, Key{Name: fmt.Sprintf("dev%03d", i)})
	}
	c.SetKeys(ks)
	return c, ks
}

// BenchmarkAdmitUncontended is the gateway's per-request admission cost
// when nothing waits: Enqueue (fair order, caps, protection, reserve) and
// Settle, on the core with a virtual clock.
func BenchmarkAdmitUncontended(b *testing.B) {
	for _, keys := range []int{1, 100} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			c, ks := benchController(keys, Options{})
			now := t0
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				now = now.Add(time.Microsecond)
				tk, err := c.Enqueue(now, Request{Key: ks[i%len(ks)], Set: 7, Cost: quota.Tokens(20480)})
				if err != nil || tk.State() != Granted {
					b.Fatal(err)
				}
				tk.Settle(now, quota.Tokens(2000))
				i++
			}
		})
	}
}

// BenchmarkAdmitBlocking is the same through the blocking wrapper on the
// wall clock.
func BenchmarkAdmitBlocking(b *testing.B) {
	c, ks := benchController(10, Options{})
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		tk, err := c.Admit(ctx, Request{Key: ks[0], Set: 7, Cost: quota.Tokens(20480)})
		if err != nil {
			b.Fatal(err)
		}
		tk.Settle(time.Now(), quota.Tokens(2000))
	}
}

// BenchmarkAdmitSettleAfter is BenchmarkAdmitUncontended ended as the
// gateway ends a request: fair order at once, the ledger's refund 200 ms
// later (about 200 refunds held back at a request per millisecond).
func BenchmarkAdmitSettleAfter(b *testing.B) {
	c, ks := benchController(10, Options{})
	now := t0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		now = now.Add(time.Millisecond)
		tk, err := c.Enqueue(now, Request{Key: ks[i%len(ks)], Set: 7, Cost: quota.Tokens(20480)})
		if err != nil || tk.State() != Granted {
			b.Fatal(err)
		}
		tk.SettleAfter(now, quota.Tokens(2000), 200*time.Millisecond)
		i++
	}
}

// BenchmarkPumpBacklog is one Pump with 1,000 requests of 100 keys queued
// behind a full minute bucket: what every Settle, Cancel and Adjust costs
// while the gateway is saturated (fair order, deadlines, daily hopes).
func BenchmarkPumpBacklog(b *testing.B) {
	c, ks := benchController(100, Options{})
	r, err := c.Ledger().Reserve(t0, 1, quota.Tokens(1<<40)) // the minute bucket is full
	if err != nil {
		b.Fatal(err)
	}
	defer r.Cancel(t0)
	for i := range 1000 {
		if _, err := c.Enqueue(t0, Request{Key: ks[i%len(ks)], Set: 7, Cost: quota.Tokens(20480)}); err != nil {
			b.Fatal(err)
		}
	}
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		if got := c.Pump(now); len(got) != 0 {
			b.Fatalf("Pump decided %d", len(got))
		}
	}
}

// BenchmarkAdmitSharedBudgets is BenchmarkAdmitUncontended with two
// upstreams' controllers sharing the keys' budgets (as `headroom serve`
// builds them), requests alternating between them, keys with a daily
// budget and a concurrency cap.
func BenchmarkAdmitSharedBudgets(b *testing.B) {
	bs := NewBudgets()
	var cs []*Controller
	var ks []Key
	for i := range 10 {
		ks = append(ks, Key{Name: fmt.Sprintf("dev%03d", i), DailyTokens: 1 << 50, MaxConcurrency: 4})
	}
	for range 2 {
		c, _ := benchController(0, Options{Budgets: bs})
		c.SetKeys(ks)
		cs = append(cs, c)
	}
	now := t0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		now = now.Add(time.Microsecond)
		tk, err := cs[i%2].Enqueue(now, Request{Key: ks[i%len(ks)], Set: 7, Cost: quota.Tokens(20480)})
		if err != nil || tk.State() != Granted {
			b.Fatal(err)
		}
		tk.Settle(now, quota.Tokens(2000))
		i++
	}
}
