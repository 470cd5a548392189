package quota

import (
	"testing"
	"time"
)

// A ledger told what a shared ledger has available admits no more than
// that, less what it reserves itself until told again; it counts the
// difference as held (a wait on holds), never as room.
func TestSetSharedCountsOtherReplicasAsHeld(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := NewLedger([]BucketSpec{{Name: "tpm", Kind: TokensPerMinute, Limit: 1000}}, Windows{}, t0)
	r, err := l.Reserve(t0, l.All(), Tokens(100))
	if err != nil {
		t.Fatal(err)
	}
	l.SetShared(t0, 0, 300) // the others hold or used 600
	if got, want := l.Bucket(t0, 0).External, int64(600); got != want {
		t.Fatalf("external = %d, want %d", got, want)
	}
	if err := l.Fits(t0, l.All(), Tokens(301)); err == nil {
		t.Fatal("301 fits where the shared ledger has 300")
	}
	if _, err := l.Reserve(t0, l.All(), Tokens(200)); err != nil {
		t.Fatalf("200 of 300: %v", err)
	}
	err = l.Fits(t0, l.All(), Tokens(101))
	le, ok := err.(*LimitError)
	if !ok || !le.Holds {
		t.Fatalf("101 after 200 of 300: %v, want a wait on holds", err)
	}
	r.Settle(t0, Tokens(0))
	l.SetShared(t0, 0, 2000) // more room than this ledger: nothing counted
	if got := l.Bucket(t0, 0).External; got != 0 {
		t.Fatalf("external = %d after a roomier shared ledger, want 0", got)
	}
	if got, want := l.Available(t0, 0), int64(800); got != want {
		t.Fatalf("available = %d, want %d", got, want)
	}
}
