package admission

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/headroomhq/headroom/internal/quota"
)

// Mantle's buckets under the fair queue: input TPM 60,000 (1,000/s), output
// TPM 6,000 (100/s).
func mantleController() *Controller {
	return New(quota.NewLedger([]quota.BucketSpec{
		{Name: "opus-input", Kind: quota.InputTokensPerMinute, Limit: 60000},
		{Name: "opus-output", Kind: quota.OutputTokensPerMinute, Limit: 6000},
	}, quota.Windows{}, t0), Options{})
}

const mantleSet = quota.Set(3)

// mantleCost is a Mantle admission: input + max_tokens in the input bucket.
func mantleCost(input, maxTokens int64) quota.Cost { return quota.Cost{Input: input + maxTokens} }

// TestMantleWaitsForOutputDebt: a request waits while the output bucket is
// in debt, NextWake is when the refill has drained the debt, and it is
// granted then; refused at its deadline before that, with Retry-After the
// drain time.
func TestMantleWaitsForOutputDebt(t *testing.T) {
	c := mantleController()
	a := enqueue(t, c, t0, Request{Key: alice, Set: mantleSet, Cost: mantleCost(1000, 8000)})
	a.Adjust(t0, quota.Cost{Input: 1000})
	a.Adjust(t0.Add(time.Second), quota.Cost{Input: 1000, Output: 9000}) // 3,000 over: 30 s of refill
	a.Settle(t0.Add(time.Second), quota.Cost{Input: 1000, Output: 9000})

	now := t0.Add(time.Second)
	b := enqueue(t, c, now, Request{Key: bob, Set: mantleSet, Cost: mantleCost(2000, 4000)})
	if b.State() != Waiting {
		t.Fatalf("with the output bucket in debt: %v, want waiting", b.State())
	}
	if at, ok := c.NextWake(now); !ok || !at.Equal(now.Add(30*time.Second)) {
		t.Fatalf("NextWake = %v %v, want the debt drained at +30s", at.Sub(now), ok)
	}
	// Someone who may not wait is told exactly that.
	_, err := c.Enqueue(now, Request{Key: carol, Set: mantleSet, Cost: mantleCost(10, 10), Deadline: now})
	var r *Refusal
	if !errors.As(err, &r) || r.Bucket != "opus-output" || r.Kind != quota.OutputTokensPerMinute || r.RetryAfter != 30*time.Second || r.Daily ||
		!strings.Contains(r.Message, "over its limit") {
		t.Fatalf("refusal %+v (%v), want the output bucket over its limit, Retry-After 30s", r, err)
	}
	c.Pump(now.Add(30*time.Second - time.Nanosecond))
	if b.State() != Waiting {
		t.Fatalf("before the debt drained: %v", b.State())
	}
	c.Pump(now.Add(30 * time.Second))
	if b.State() != Granted {
		t.Fatalf("once the debt drained: %v, want granted", b.State())
	}
}

// TestMantleWaitsForInputHold: max_tokens held in the input bucket keeps a
// request out until the holder settles (it is woken by the settlement, not
// a timer), and the settlement gives back all but input + cache writes.
func TestMantleWaitsForInputHold(t *testing.T) {
	c := mantleController()
	a := enqueue(t, c, t0, Request{Key: alice, Set: mantleSet, Cost: mantleCost(10000, 40000)})
	a.Adjust(t0, quota.Cost{Input: 10000})
	b := enqueue(t, c, t0, Request{Key: bob, Set: mantleSet, Cost: mantleCost(2000, 32000)})
	if b.State() != Waiting {
		t.Fatalf("with 40,000 held and 10,000 used of 60,000: %v, want waiting", b.State())
	}
	_, err := c.Enqueue(t0, Request{Key: carol, Set: mantleSet, Cost: mantleCost(2000, 32000), Deadline: t0})
	var r *Refusal
	if !errors.As(err, &r) || r.Bucket != "opus-input" || !r.Holds || r.RetryAfter < time.Second || r.RetryAfter > MaxRetryAfter {
		t.Fatalf("refusal %+v (%v), want the input bucket, on holds, Retry-After 1-60 s", r, err)
	}
	now := t0.Add(2 * time.Second)
	a.Settle(now, quota.Cost{Input: 10000, Output: 500})
	if b.State() != Granted {
		t.Fatalf("after the holder settled: %v, want granted", b.State())
	}
	// 10,000 used at t0 drained 2,000 by now; b holds 34,000.
	got := c.Ledger().Snapshot(now)
	if diff := cmp.Diff([]int64{8000, 500}, []int64{got[0].Used, got[1].Used}); diff != "" {
		t.Errorf("used (-want +got):\n%s", diff)
	}
	if got[0].Reserved != 34000 || got[1].Reserved != 0 {
		t.Errorf("reserved %d and %d, want 34,000 and 0", got[0].Reserved, got[1].Reserved)
	}
}

// TestMantleSettleAfterLandsOutputAtOnce: with the settle delay, the refund
// of the input hold waits, but output beyond what was adjusted counts at
// once (it is a charge, not a refund), and the input comes back on time.
func TestMantleSettleAfterLandsOutputAtOnce(t *testing.T) {
	c := mantleController()
	a := enqueue(t, c, t0, Request{Key: alice, Set: mantleSet, Cost: mantleCost(1000, 50000)})
	a.Adjust(t0, quota.Cost{Input: 1000, Output: 1000})
	a.SettleAfter(t0, quota.Cost{Input: 1000, Output: 7000}, 200*time.Millisecond)
	got := c.Ledger().Snapshot(t0)
	if got[0].Reserved != 50000 || got[1].Used != 7000 {
		t.Fatalf("during the delay: input reserved %d (want 50,000 still held), output used %d (want 7,000 at once)", got[0].Reserved, got[1].Used)
	}
	c.Pump(t0.Add(200 * time.Millisecond))
	got = c.Ledger().Snapshot(t0.Add(200 * time.Millisecond))
	if got[0].Reserved != 0 || got[1].Reserved != 0 {
		t.Fatalf("after the delay: reserved %d and %d, want 0", got[0].Reserved, got[1].Reserved)
	}
}

// TestMantleTooLarge: a charge over the input bucket's limit is refused at
// once, with Mantle's hint.
func TestMantleTooLarge(t *testing.T) {
	c := mantleController()
	_, err := c.Enqueue(t0, Request{Key: alice, Set: mantleSet, Cost: mantleCost(1000, 128000)})
	var big *TooLarge
	if !errors.As(err, &big) || big.Bucket != "opus-input" || big.Cost != 129000 || big.Capacity != 60000 {
		t.Fatalf("err %v, want TooLarge for the input bucket", err)
	}
}
