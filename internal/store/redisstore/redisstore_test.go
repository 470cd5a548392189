package redisstore_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/keys/keystest"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/store/redisstore"
	"github.com/headroomhq/headroom/internal/store/redistest"
	"github.com/headroomhq/headroom/internal/store/usagetest"
)

// newStore opens a store with a prefix of its own on srv, so that the
// subtests of a suite share one redis-server yet each starts empty.
func newStore(t *testing.T, srv *redistest.Server) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(context.Background(), srv.URL, redisstore.Options{Prefix: prefix(t)})
	if err != nil {
		t.Fatalf("Open(%s): %v", srv.URL, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var seq atomic.Int64

func prefix(t *testing.T) string {
	return "test" + strconv.FormatInt(seq.Add(1), 10) + ":"
}

func TestKeysConformance(t *testing.T) {
	srv := redistest.Start(t)
	keystest.Run(t, func(t *testing.T) keys.Store { return newStore(t, srv) })
}

func TestUsageConformance(t *testing.T) {
	srv := redistest.Start(t)
	usagetest.Run(t, func(t *testing.T) quota.Store { return newStore(t, srv) })
}

// Two stores on one Redis (two replicas, or a replica and the CLI) see each
// other's writes at once.
func TestTwoStoresShareKeys(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a, err := redisstore.Open(ctx, srv.URL, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := redisstore.Open(ctx, srv.URL, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Create(ctx, keystest.Key("alice")); err != nil {
		t.Fatal(err)
	}
	if k, err := b.Lookup(ctx, keystest.Key("alice").Hash); err != nil || k.Name != "alice" {
		t.Fatalf("Lookup through the other store = %v, %v; want alice", k, err)
	}
	if err := b.Create(ctx, keystest.Key("alice")); !errors.Is(err, keys.ErrExists) {
		t.Errorf("Create(alice) through the other store = %v, want ErrExists", err)
	}
	if err := a.SaveUsage(ctx, "2026-03-14", map[string]int64{"main/tpd": 5}); err != nil {
		t.Fatal(err)
	}
	if u, err := b.LoadUsage(ctx, "2026-03-14"); err != nil || u["main/tpd"] != 5 {
		t.Errorf("LoadUsage through the other store = %v, %v; want main/tpd 5", u, err)
	}
	// Keys stay under the default prefix.
	got, err := srv.Client(t).Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range got {
		if !strings.HasPrefix(k, redisstore.DefaultPrefix) {
			t.Errorf("Redis key %q outside the prefix %q", k, redisstore.DefaultPrefix)
		}
	}
}

// A secret's hash identifies one key: a second name with the same hash is
// refused, as SQLite's UNIQUE constraint refuses it.
func TestSameHashOtherName(t *testing.T) {
	s := newStore(t, redistest.Start(t))
	ctx := context.Background()
	if err := s.Create(ctx, keystest.Key("alice")); err != nil {
		t.Fatal(err)
	}
	k := keystest.Key("bob")
	k.Hash = keystest.Key("alice").Hash
	if err := s.Create(ctx, k); err == nil || errors.Is(err, keys.ErrExists) {
		t.Errorf("Create(bob with alice's hash) = %v, want a non-ErrExists error", err)
	}
	if got, err := s.Lookup(ctx, k.Hash); err != nil || got.Name != "alice" {
		t.Errorf("Lookup = %v, %v; want alice still", got, err)
	}
}

// Wrong URLs and a Redis that is not there fail Open with typed errors that
// never print the password.
func TestOpenErrors(t *testing.T) {
	srv := redistest.Start(t)
	addr := srv.Addr
	srv.Kill()
	ctx := context.Background()
	for _, tc := range []struct {
		url         string
		unreachable bool
	}{
		{"http://x:6379", false},
		{"redis://:s3cret@127.0.0.1:6379/notadb", false},
		{"127.0.0.1:6379", false},
		{"redis://:s3cret@" + addr, true},
	} {
		s, err := redisstore.Open(ctx, tc.url, redisstore.Options{})
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", tc.url)
			continue
		}
		var ue *redisstore.URLError
		var ne *redisstore.UnreachableError
		if tc.unreachable && !errors.As(err, &ne) || !tc.unreachable && !errors.As(err, &ue) {
			t.Errorf("Open(%q) = %T %v, want unreachable=%v", tc.url, err, err, tc.unreachable)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) error shows the password: %v", tc.url, err)
		}
	}
}

// A Redis without persistence that restarts has lost every key; the stores
// of the replicas that listed them write them back at their next List, in
// any order: a key revoked, and a revoked name given a newer key, come back
// as they were, and the newer key wins whichever replica restores first.
func TestKeysSurviveRedisRestartEmpty(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	open := func() *redisstore.Store {
		s, err := redisstore.Open(ctx, srv.URL, redisstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	stale, fresh, cli := open(), open(), open()
	at := time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
	for _, n := range []string{"alice", "bob", "carol"} {
		if err := cli.Create(ctx, keystest.Key(n)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"bob", "carol"} {
		if err := cli.Revoke(ctx, n, at); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := stale.List(ctx); err != nil { // remembers carol's old, revoked key
		t.Fatal(err)
	}
	carol2 := keystest.Key("carol")
	carol2.Hash = keys.Hash(keystest.Secret("carol2"))
	carol2.CreatedAt = at.Add(time.Hour)
	if err := cli.Create(ctx, carol2); err != nil {
		t.Fatal(err)
	}
	want, err := fresh.List(ctx)
	if err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	srv.Restart(t)
	// The stale replica restores first, then the fresh one.
	for _, s := range []*redisstore.Store{stale, fresh} {
		var err error
		for range 50 { // go-redis reconnects after a pause
			if _, err = s.List(ctx); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("List after the restart: %v", err)
		}
	}
	got, err := open().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, timeEqual); diff != "" {
		t.Errorf("keys after Redis restarted empty (-before +after):\n%s", diff)
	}
	if k, err := open().Lookup(ctx, carol2.Hash); err != nil || k.Revoked() {
		t.Errorf("Lookup(carol's new key) = %v revoked=%v, %v; want active", k, k.Revoked(), err)
	}
	// A replaced key is kept, revoked, under its archived name (keys.Store).
	if k, err := open().Lookup(ctx, keystest.Key("carol").Hash); err != nil || !k.Revoked() {
		t.Errorf("Lookup(carol's replaced key) = %v, %v; want it kept, revoked", k, err)
	}
}

var timeEqual = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

// The same benchmarks as sqlitestore's, for comparison in one run: a
// Lookup runs when a secret is not in a replica's cache, List at every
// keys refresh, SaveUsage when the day's usage changed (at most ten a second).
func benchStore(b *testing.B, n int) *redisstore.Store {
	srv := redistest.Start(b)
	s, err := redisstore.Open(context.Background(), srv.URL, redisstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for i := range n {
		if err := s.Create(context.Background(), keystest.Key("dev"+strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkLookup(b *testing.B) {
	s := benchStore(b, 1000)
	h := keystest.Key("dev500").Hash
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Lookup(context.Background(), h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkList1000(b *testing.B) {
	s := benchStore(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.List(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSaveUsage(b *testing.B) {
	s := benchStore(b, 0)
	u := map[string]int64{}
	for i := range 20 {
		u["key:dev"+strconv.Itoa(i)] = int64(i) * 1000
	}
	for i := range 10 {
		u["us-east-1/bucket-"+strconv.Itoa(i)] = int64(i) * 1_000_000
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.SaveUsage(context.Background(), "2026-03-14", u); err != nil {
			b.Fatal(err)
		}
	}
}
