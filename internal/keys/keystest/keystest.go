// Package keystest is the conformance suite every keys.Store implementation
// runs: the same behaviour from the memory, SQLite and Redis stores. It is
// imported by tests only.
package keystest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/keys"
)

// Run runs the suite; newStore returns a fresh, empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) keys.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s keys.Store)
	}{
		{"EmptyList", testEmptyList},
		{"CreateListRoundTrip", testCreateList},
		{"DuplicateName", testDuplicate},
		{"Lookup", testLookup},
		{"Revoke", testRevoke},
		{"RecreateRevokedName", testRecreate},
		{"ReturnedHashIsACopy", testHashCopy},
		{"ConcurrentCreates", testConcurrentCreates},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore(t)) })
	}
}

var t0 = time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC)

// Key returns a valid key named name whose secret is derived from name.
func Key(name string) keys.Key {
	return keys.Key{
		Name: name, Hash: keys.Hash(Secret(name)), Weight: 1.5, DailyTokens: 500_000,
		MaxConcurrency: 3, MaxOutputTokens: 8192, CreatedAt: t0,
	}
}

// Secret returns a well-formed secret derived from name.
func Secret(name string) string {
	s := fmt.Sprintf("%s%040s", keys.SecretPrefix, name)
	b := []byte(s)
	for i := len(keys.SecretPrefix); i < len(b); i++ {
		if !(b[i] >= 'a' && b[i] <= 'z' || b[i] >= 'A' && b[i] <= 'Z' || b[i] >= '0' && b[i] <= '9') {
			b[i] = 'x'
		}
	}
	return string(b)
}

// timeEqual compares instants: stores need not keep locations or monotonic
// readings.
var timeEqual = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

func mustCreate(t *testing.T, s keys.Store, k keys.Key) {
	t.Helper()
	if err := s.Create(context.Background(), k); err != nil {
		t.Fatalf("Create(%s): %v", k.Name, err)
	}
}

func list(t *testing.T, s keys.Store) []keys.Key {
	t.Helper()
	got, err := s.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return got
}

func testEmptyList(t *testing.T, s keys.Store) {
	if got := list(t, s); len(got) != 0 {
		t.Errorf("List of an empty store = %v, want none", got)
	}
}

func testCreateList(t *testing.T, s keys.Store) {
	bob := Key("bob")
	bob.Weight, bob.DailyTokens, bob.MaxConcurrency, bob.MaxOutputTokens = 0.25, 0, 0, 0
	bob.CreatedAt = t0.Add(time.Hour).In(time.FixedZone("X", 3600))
	alice := Key("alice")
	mustCreate(t, s, bob)
	mustCreate(t, s, alice)
	want := []keys.Key{alice, bob}
	if diff := cmp.Diff(want, list(t, s), timeEqual); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
}

func testDuplicate(t *testing.T, s keys.Store) {
	first := Key("alice")
	mustCreate(t, s, first)
	second := Key("alice")
	second.Hash = keys.Hash(Secret("other"))
	if err := s.Create(context.Background(), second); !errors.Is(err, keys.ErrExists) {
		t.Fatalf("second Create(alice) = %v, want ErrExists", err)
	}
	if diff := cmp.Diff([]keys.Key{first}, list(t, s), timeEqual); diff != "" {
		t.Errorf("List after refused duplicate (-want +got):\n%s", diff)
	}
}

func testLookup(t *testing.T, s keys.Store) {
	ctx := context.Background()
	mustCreate(t, s, Key("alice"))
	mustCreate(t, s, Key("bob"))
	got, err := s.Lookup(ctx, keys.Hash(Secret("bob")))
	if err != nil {
		t.Fatalf("Lookup(bob): %v", err)
	}
	if diff := cmp.Diff(Key("bob"), got, timeEqual); diff != "" {
		t.Errorf("Lookup(bob) (-want +got):\n%s", diff)
	}
	if _, err := s.Lookup(ctx, keys.Hash(Secret("carol"))); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("Lookup(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.Lookup(ctx, nil); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("Lookup(nil) = %v, want ErrNotFound", err)
	}
}

func testRevoke(t *testing.T, s keys.Store) {
	ctx := context.Background()
	mustCreate(t, s, Key("alice"))
	mustCreate(t, s, Key("bob"))
	at := t0.Add(48 * time.Hour)
	if err := s.Revoke(ctx, "alice", at); err != nil {
		t.Fatalf("Revoke(alice): %v", err)
	}
	if err := s.Revoke(ctx, "alice", at.Add(time.Hour)); err != nil {
		t.Fatalf("second Revoke(alice): %v", err)
	}
	if err := s.Revoke(ctx, "carol", at); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("Revoke(unknown) = %v, want ErrNotFound", err)
	}
	alice := Key("alice")
	alice.RevokedAt = at // the first revocation counts
	got, err := s.Lookup(ctx, alice.Hash)
	if err != nil {
		t.Fatalf("Lookup(revoked alice): %v", err)
	}
	if diff := cmp.Diff(alice, got, timeEqual); diff != "" {
		t.Errorf("Lookup(revoked alice) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]keys.Key{alice, Key("bob")}, list(t, s), timeEqual); diff != "" {
		t.Errorf("List after revoke (-want +got):\n%s", diff)
	}
}

func testRecreate(t *testing.T, s keys.Store) {
	ctx := context.Background()
	old := Key("alice")
	mustCreate(t, s, old)
	if err := s.Revoke(ctx, "alice", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	fresh := Key("alice")
	fresh.Hash = keys.Hash(Secret("alice2"))
	fresh.Weight = 2
	fresh.CreatedAt = t0.Add(2 * time.Hour)
	mustCreate(t, s, fresh)
	// The revoked key keeps its record, under its archived name.
	archived := old
	archived.Name, archived.RevokedAt = keys.ArchivedName("alice", t0.Add(time.Hour)), t0.Add(time.Hour)
	if diff := cmp.Diff([]keys.Key{fresh, archived}, list(t, s), timeEqual); diff != "" {
		t.Errorf("List after recreating a revoked name (-want +got):\n%s", diff)
	}
	if got, err := s.Lookup(ctx, old.Hash); err != nil || got.Name != archived.Name || !got.Revoked() {
		t.Errorf("Lookup(the old secret) = %+v, %v; want the archived key, revoked", got, err)
	}
	if got, err := s.Lookup(ctx, fresh.Hash); err != nil || got.Name != "alice" || got.Revoked() {
		t.Errorf("Lookup(the new secret) = %+v, %v; want the new alice", got, err)
	}
	// Revoked and recreated again: both old records stay.
	if err := s.Revoke(ctx, "alice", t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	third := Key("alice")
	third.Hash = keys.Hash(Secret("alice3"))
	mustCreate(t, s, third)
	if n := len(list(t, s)); n != 3 {
		t.Errorf("after a second recreation List has %d keys, want the new one and two archived", n)
	}
	if err := s.Revoke(ctx, archived.Name, t0.Add(4*time.Hour)); err != nil {
		t.Errorf("Revoke(archived name) = %v; want nil (already revoked: the first time counts)", err)
	}
}

func testHashCopy(t *testing.T, s keys.Store) {
	k := Key("alice")
	mustCreate(t, s, k)
	k.Hash[0] ^= 0xff // the caller's slice must not alias the stored key
	got := list(t, s)
	got[0].Hash[1] ^= 0xff
	if diff := cmp.Diff([]keys.Key{Key("alice")}, list(t, s), timeEqual); diff != "" {
		t.Errorf("stored key changed through a returned or passed slice (-want +got):\n%s", diff)
	}
}

func testConcurrentCreates(t *testing.T, s keys.Store) {
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	for i := range n {
		wg.Go(func() { errs[i] = s.Create(ctx, Key(fmt.Sprintf("dev%d", i))) })
		wg.Go(func() {
			k := Key("shared")
			k.Hash = keys.Hash(Secret(fmt.Sprintf("shared%d", i)))
			errs[n+i] = s.Create(ctx, k)
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil && i >= n:
			won++
		case err != nil && (i < n || !errors.Is(err, keys.ErrExists)):
			t.Errorf("Create #%d: %v", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d concurrent Create(shared) succeeded, want exactly 1", won)
	}
	if got := len(list(t, s)); got != n+1 {
		t.Errorf("List has %d keys, want %d", got, n+1)
	}
}
