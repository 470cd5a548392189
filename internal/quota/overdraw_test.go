package quota

import (
	"testing"
	"time"
)

// TestOverdraw: shadow mode's reservation holds what does not fit, driving
// the bucket below zero, so the next request waits as it would at the
// upstream; settling and cancelling it restore the bucket exactly.
func TestOverdraw(t *testing.T) {
	specs := []BucketSpec{{Name: "tpm", Kind: TokensPerMinute, Limit: 100}, {Name: "rpm", Kind: RequestsPerMinute, Limit: 1}}
	l := NewLedger(specs, Windows{}, t0)
	a, err := l.Reserve(t0, l.All(), Tokens(80))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Fits(t0, l.All(), Tokens(50)); err == nil {
		t.Fatal("50 more fit a bucket with 20 left and a spent request bucket")
	}
	b := l.Overdraw(t0, l.All(), Tokens(50))
	if got := l.Available(t0, 0); got != -30 {
		t.Errorf("tpm available after the overdraft = %d, want -30", got)
	}
	if got := l.Available(t0, 1); got != -1 {
		t.Errorf("rpm available after the overdraft = %d, want -1", got)
	}
	if w, never := l.Wait(t0, l.OfKind(TokensPerMinute), Tokens(1)); never || w <= 0 {
		t.Errorf("a request after the overdraft waits %v (never %v), want a wait", w, never)
	}
	b.Cancel(t0)
	if got := l.Available(t0, 0); got != 20 {
		t.Errorf("tpm available after cancelling the overdraft = %d, want 20", got)
	}
	if got := l.Available(t0, 1); got != 0 {
		t.Errorf("rpm available after cancelling the overdraft = %d, want 0", got)
	}
	c := l.Overdraw(t0, l.OfKind(TokensPerMinute), Tokens(50))
	c.Settle(t0, Tokens(10))
	a.Settle(t0, Tokens(80))
	if got := l.Available(t0, 0); got != 10 {
		t.Errorf("tpm available after settling both = %d, want 100 - 80 - 10", got)
	}
	if got := l.Snapshot(t0.Add(time.Second))[0].Reserved; got != 0 {
		t.Errorf("reserved after settling = %d", got)
	}
}
