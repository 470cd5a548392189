package keys_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/keys/keystest"
	"github.com/headroomhq/headroom/internal/store/memstore"
)

// TestMissRate: secrets absent from the cache reach the store at most
// MissRate times a second, however many distinct ones a client tries;
// cached keys are never affected; a key created meanwhile works once the
// rate allows a lookup again, or at the next Refresh.
func TestMissRate(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: memstore.New()}
	if err := st.Create(ctx, keystest.Key("alice")); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{time.Unix(1_000_000, 0)}
	r := keys.NewRegistryWith(st, discard, keys.RegistryOptions{MissRate: 5, Now: clock.now})
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	guess := 0
	tryGuesses := func(n int) {
		for range n {
			guess++
			if _, err := r.Authenticate(ctx, keystest.Secret(fmt.Sprintf("guess%d", guess))); !errors.Is(err, keys.ErrUnknown) {
				t.Fatalf("guess %d: %v, want ErrUnknown", guess, err)
			}
		}
	}
	tryGuesses(100)
	if got := st.lookups.Load(); got != 5 {
		t.Errorf("100 distinct guesses at once: %d store lookups, want 5 (the burst)", got)
	}
	if _, err := r.Authenticate(ctx, keystest.Secret("alice")); err != nil {
		t.Errorf("a cached key during the flood: %v", err)
	}
	// A key created during the flood is refused while the budget is dry...
	if err := st.Create(ctx, keystest.Key("erin")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Authenticate(ctx, keystest.Secret("erin")); !errors.Is(err, keys.ErrUnknown) {
		t.Errorf("new key with the budget dry: %v, want ErrUnknown", err)
	}
	// ...and found once a lookup is allowed again: 0.2 s gives one.
	clock.t = clock.t.Add(200 * time.Millisecond)
	if k, err := r.Authenticate(ctx, keystest.Secret("erin")); err != nil || k.Name != "erin" {
		t.Errorf("new key after 0.2 s: %q, %v; want erin", k.Name, err)
	}
	// A second later the burst is back, and no more.
	clock.t = clock.t.Add(time.Second)
	before := st.lookups.Load()
	tryGuesses(100)
	if got := st.lookups.Load() - before; got != 5 {
		t.Errorf("after a second: %d store lookups, want 5", got)
	}
	// A key created now is found at the next Refresh without a lookup.
	if err := st.Create(ctx, keystest.Key("frank")); err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if k, err := r.Authenticate(ctx, keystest.Secret("frank")); err != nil || k.Name != "frank" {
		t.Errorf("key created during the flood, after Refresh: %q, %v; want frank", k.Name, err)
	}
}
