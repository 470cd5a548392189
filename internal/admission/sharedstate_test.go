package admission

import (
	"errors"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
)

// While the ledger runs on a local share (the shared ledger unreachable,
// when_down: local_share), a request larger than the share but not than
// the bucket is refused as unavailable for now (503), not as too large
// for ever (400); larger than the bucket, it stays too large.
func TestLargerThanShareIsUnavailable(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := quota.NewLedger([]quota.BucketSpec{{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 30_000}}, quota.Windows{}, t0)
	c := New(l, Options{})
	l.Share(t0, 3, nil)
	_, err := c.Enqueue(t0, Request{Key: Key{Name: "k"}, Set: l.All(), Cost: quota.Tokens(20_000)})
	var down *Unavailable
	if !errors.As(err, &down) || down.Share != 3 || down.RetryAfter <= 0 {
		t.Fatalf("20,000 on a share of 10,000: %v, want Unavailable with Share 3", err)
	}
	_, err = c.Enqueue(t0, Request{Key: Key{Name: "k"}, Set: l.All(), Cost: quota.Tokens(40_000)})
	var big *TooLarge
	if !errors.As(err, &big) {
		t.Fatalf("40,000 on a bucket of 30,000 shared out: %v, want TooLarge", err)
	}
}
