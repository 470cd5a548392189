package keys_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/keys/keystest"
	"github.com/headroomhq/headroom/internal/store/memstore"
)

// countingStore counts the calls that reach the store and can be made to fail.
type countingStore struct {
	keys.Store
	lookups, lists atomic.Int64
	fail           atomic.Pointer[error]
}

func (s *countingStore) err() error {
	if e := s.fail.Load(); e != nil {
		return *e
	}
	return nil
}

func (s *countingStore) Lookup(ctx context.Context, h []byte) (keys.Key, error) {
	s.lookups.Add(1)
	if err := s.err(); err != nil {
		return keys.Key{}, err
	}
	return s.Store.Lookup(ctx, h)
}

func (s *countingStore) List(ctx context.Context) ([]keys.Key, error) {
	s.lists.Add(1)
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.Store.List(ctx)
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func setup(t testing.TB, names ...string) (*countingStore, *keys.Registry) {
	t.Helper()
	st := &countingStore{Store: memstore.New()}
	for _, n := range names {
		if err := st.Create(context.Background(), keystest.Key(n)); err != nil {
			t.Fatal(err)
		}
	}
	r := keys.NewRegistry(st, discard)
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st, r
}

var timeEqual = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	st, r := setup(t, "alice", "bob", "mallory")
	if err := st.Revoke(ctx, "mallory", time.Unix(100, 0)); err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		secret    string
		wantName  string
		wantErr   error
		wantStore bool // whether the store is asked
	}{
		{"active", keystest.Secret("alice"), "alice", nil, false},
		{"other active", keystest.Secret("bob"), "bob", nil, false},
		{"revoked", keystest.Secret("mallory"), "", keys.ErrRevoked, false},
		{"unknown", keystest.Secret("carol"), "", keys.ErrUnknown, true},
		{"malformed", "hr_short", "", keys.ErrUnknown, false},
		{"empty", "", "", keys.ErrUnknown, false},
		{"aws key", "ABSKQmVkcm9ja0FQSUtleS1", "", keys.ErrUnknown, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := st.lookups.Load()
			got, err := r.Authenticate(ctx, tt.secret)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Authenticate error = %v, want %v", err, tt.wantErr)
			}
			if got.Name != tt.wantName {
				t.Errorf("Authenticate name = %q, want %q", got.Name, tt.wantName)
			}
			if asked := st.lookups.Load() > before; asked != tt.wantStore {
				t.Errorf("store asked = %v, want %v", asked, tt.wantStore)
			}
		})
	}
}

func TestAuthenticateReturnsStoredLimits(t *testing.T) {
	_, r := setup(t, "alice")
	got, err := r.Authenticate(context.Background(), keystest.Secret("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(keystest.Key("alice"), got, timeEqual); diff != "" {
		t.Errorf("Authenticate (-want +got):\n%s", diff)
	}
}

// A key created by another process after the last refresh works on its
// first use, and is cached from then on.
func TestNewKeyFoundOnMiss(t *testing.T) {
	ctx := context.Background()
	st, r := setup(t, "alice")
	if err := st.Create(ctx, keystest.Key("dave")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := r.Authenticate(ctx, keystest.Secret("dave")); err != nil {
			t.Fatalf("Authenticate(dave) #%d: %v", i, err)
		}
	}
	if got := st.lookups.Load(); got != 1 {
		t.Errorf("store lookups = %d, want 1 (then cached)", got)
	}
}

// A revocation takes effect at the next refresh, with no cache miss needed.
func TestRevocationTakesEffectOnRefresh(t *testing.T) {
	ctx := context.Background()
	st, r := setup(t, "alice")
	if err := st.Revoke(ctx, "alice", time.Unix(100, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Authenticate(ctx, keystest.Secret("alice")); err != nil {
		t.Fatalf("before refresh: %v (the cache is expected to be stale until then)", err)
	}
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Authenticate(ctx, keystest.Secret("alice")); !errors.Is(err, keys.ErrRevoked) {
		t.Errorf("after refresh: %v, want ErrRevoked", err)
	}
}

func TestRunRefreshesPeriodically(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		st, r := setup(t, "alice")
		var refreshed atomic.Int64
		go r.Run(ctx, 2*time.Second, func() { refreshed.Add(1) })
		if err := st.Revoke(ctx, "alice", time.Now()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2*time.Second + time.Millisecond)
		synctest.Wait()
		if _, err := r.Authenticate(ctx, keystest.Secret("alice")); !errors.Is(err, keys.ErrRevoked) {
			t.Errorf("one interval after revocation: %v, want ErrRevoked", err)
		}
		if got := st.lists.Load(); got != 2 {
			t.Errorf("store lists = %d, want 2 (setup and one tick)", got)
		}
		if got := refreshed.Load(); got != 1 {
			t.Errorf("refreshed called %d times, want 1 (one tick)", got)
		}
	})
}

func TestStoreFailure(t *testing.T) {
	ctx := context.Background()
	st, r := setup(t, "alice")
	boom := errors.New("disk on fire")
	st.fail.Store(&boom)
	if err := r.Refresh(ctx); !errors.Is(err, boom) {
		t.Errorf("Refresh = %v, want %v", err, boom)
	}
	if _, err := r.Authenticate(ctx, keystest.Secret("alice")); err != nil {
		t.Errorf("cached key after failed refresh: %v, want accepted", err)
	}
	_, err := r.Authenticate(ctx, keystest.Secret("carol"))
	if !errors.Is(err, boom) || errors.Is(err, keys.ErrUnknown) {
		t.Errorf("miss with a failing store = %v, want the store error, not ErrUnknown", err)
	}
}

func TestActive(t *testing.T) {
	ctx := context.Background()
	st, r := setup(t, "carol", "alice", "bob")
	if err := st.Revoke(ctx, "bob", time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range r.Active() {
		got = append(got, k.Name)
	}
	if diff := cmp.Diff([]string{"alice", "carol"}, got); diff != "" {
		t.Errorf("Active (-want +got):\n%s", diff)
	}
}

func TestConcurrentAuthenticateAndRefresh(t *testing.T) {
	ctx := context.Background()
	st, r := setup(t, "alice")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				if _, err := r.Authenticate(ctx, keystest.Secret("alice")); err != nil {
					t.Errorf("Authenticate: %v", err)
					return
				}
				if i%2 == 0 {
					_, _ = r.Authenticate(ctx, keystest.Secret("nobody"))
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			if err := r.Refresh(ctx); err != nil {
				t.Errorf("Refresh: %v", err)
			}
		}
	})
	wg.Wait()
	_ = st
}

func BenchmarkAuthenticate(b *testing.B) {
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("dev%d", i)
	}
	_, r := setup(b, names...)
	secret := keystest.Secret(names[500])
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Authenticate(ctx, secret); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticateParallel(b *testing.B) {
	_, r := setup(b, "alice")
	secret := keystest.Secret("alice")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := r.Authenticate(ctx, secret); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// fakeClock is a settable clock for the negative cache.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func setupNegative(t *testing.T, size int) (*countingStore, *keys.Registry, *fakeClock) {
	t.Helper()
	st := &countingStore{Store: memstore.New()}
	if err := st.Create(context.Background(), keystest.Key("alice")); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{time.Unix(1_000_000, 0)}
	r := keys.NewRegistryWith(st, discard, keys.RegistryOptions{NegativeTTL: 5 * time.Second, NegativeSize: size, Now: clock.now,
		MissRate: -1}) // the miss rate has its own test

	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st, r, clock
}

// TestUnknownRemembered: an unknown secret asks the store once per TTL;
// another unknown secret asks on its own; a known key never asks.
func TestUnknownRemembered(t *testing.T) {
	ctx := context.Background()
	st, r, clock := setupNegative(t, 100)
	start := clock.t
	steps := []struct {
		at          time.Duration
		secret      string
		wantLookups int64 // in all, after the step
	}{
		{0, "carol", 1},
		{0, "carol", 1},
		{time.Second, "carol", 1},
		{4999 * time.Millisecond, "carol", 1},
		{4999 * time.Millisecond, "dave", 2},
		{5 * time.Second, "carol", 3}, // expired: asked again, remembered again
		{9 * time.Second, "carol", 3},
		{9 * time.Second, "dave", 3},
		{10 * time.Second, "dave", 4},
		{10 * time.Second, "alice", 4},
	}
	for _, s := range steps {
		clock.t = start.Add(s.at)
		_, err := r.Authenticate(ctx, keystest.Secret(s.secret))
		if s.secret == "alice" && err != nil || s.secret != "alice" && !errors.Is(err, keys.ErrUnknown) {
			t.Errorf("at %v %s: %v", s.at, s.secret, err)
		}
		if got := st.lookups.Load(); got != s.wantLookups {
			t.Errorf("at %v %s: %d store lookups, want %d", s.at, s.secret, got, s.wantLookups)
		}
	}
}

// TestNegativeCacheBounded: with room for 32 unknown secrets, presenting
// 100 distinct ones twice asks the store for at least 68 of them again.
func TestNegativeCacheBounded(t *testing.T) {
	ctx := context.Background()
	st, r, _ := setupNegative(t, 32)
	for range 2 {
		for i := range 100 {
			if _, err := r.Authenticate(ctx, keystest.Secret(fmt.Sprintf("guess%d", i))); !errors.Is(err, keys.ErrUnknown) {
				t.Fatal(err)
			}
		}
	}
	if got := st.lookups.Load(); got < 100+68 {
		t.Errorf("%d store lookups, want at least %d: more than 32 unknown secrets were remembered", got, 100+68)
	}
	if got := st.lookups.Load(); got == 200 {
		t.Error("200 store lookups: nothing was remembered")
	}
}

// TestKeyCreatedAfterRefusal: a key whose secret was refused before it was
// created works after the next Refresh, without waiting for the TTL.
func TestKeyCreatedAfterRefusal(t *testing.T) {
	ctx := context.Background()
	st, r, _ := setupNegative(t, 100)
	if _, err := r.Authenticate(ctx, keystest.Secret("erin")); !errors.Is(err, keys.ErrUnknown) {
		t.Fatalf("before create: %v, want ErrUnknown", err)
	}
	if err := st.Create(ctx, keystest.Key("erin")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Authenticate(ctx, keystest.Secret("erin")); !errors.Is(err, keys.ErrUnknown) {
		t.Fatalf("before refresh: %v, want ErrUnknown (remembered for the TTL)", err)
	}
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := r.Authenticate(ctx, keystest.Secret("erin"))
	if err != nil || got.Name != "erin" {
		t.Errorf("after refresh: %q, %v; want erin", got.Name, err)
	}
	// Another refused secret is asked about again after a Refresh.
	before := st.lookups.Load()
	for range 2 {
		_, _ = r.Authenticate(ctx, keystest.Secret("frank"))
		if err := r.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := st.lookups.Load() - before; got != 2 {
		t.Errorf("%d lookups for a secret refused once per refresh, want 2", got)
	}
}

// TestNegativeCacheOff: a negative TTL asks the store every time.
func TestNegativeCacheOff(t *testing.T) {
	st := &countingStore{Store: memstore.New()}
	r := keys.NewRegistryWith(st, discard, keys.RegistryOptions{NegativeTTL: -1})
	for range 3 {
		_, _ = r.Authenticate(context.Background(), keystest.Secret("carol"))
	}
	if got := st.lookups.Load(); got != 3 {
		t.Errorf("%d store lookups, want 3", got)
	}
}
