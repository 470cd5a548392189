// Package usagetest is the conformance suite every quota.Store
// implementation runs, so that the memory, SQLite and Redis stores keep the day's
// usage the same way. It is imported by tests only.
package usagetest

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/headroomhq/headroom/internal/quota"
)

// Run runs the suite; newStore returns a fresh, empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) quota.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s quota.Store)
	}{
		{"EmptyDay", testEmptyDay},
		{"RoundTrip", testRoundTrip},
		{"SaveReplacesOnlyGivenKeys", testPartialSave},
		{"DaysAreSeparate", testDays},
		{"NoAliasing", testNoAliasing},
		{"ConcurrentSaves", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore(t)) })
	}
}

const day = "2026-03-14"

// emptyIsNil lets an implementation return nil or an empty map for nothing.
var emptyIsNil = cmpopts.EquateEmpty()

func save(t *testing.T, s quota.Store, day string, u map[string]int64) {
	t.Helper()
	if err := s.SaveUsage(context.Background(), day, u); err != nil {
		t.Fatalf("SaveUsage(%s, %v): %v", day, u, err)
	}
}

func load(t *testing.T, s quota.Store, day string) map[string]int64 {
	t.Helper()
	got, err := s.LoadUsage(context.Background(), day)
	if err != nil {
		t.Fatalf("LoadUsage(%s): %v", day, err)
	}
	return got
}

func testEmptyDay(t *testing.T, s quota.Store) {
	if got := load(t, s, day); len(got) != 0 {
		t.Errorf("LoadUsage of an empty store = %v, want nothing", got)
	}
	save(t, s, day, nil) // saving nothing is allowed and stores nothing
	save(t, s, day, map[string]int64{})
	if got := load(t, s, day); len(got) != 0 {
		t.Errorf("LoadUsage after empty saves = %v, want nothing", got)
	}
}

func testRoundTrip(t *testing.T, s quota.Store) {
	want := map[string]int64{
		"us-east-1/sonnet-4-cross-region-tpd": 144_000_000,
		"us-east-1/cross-model-daily":         0,
		"key:alice":                           321_000,
		"key:bøb/ünïcode":                     1,
		"big":                                 math.MaxInt64,
	}
	save(t, s, day, want)
	if diff := cmp.Diff(want, load(t, s, day), emptyIsNil); diff != "" {
		t.Errorf("LoadUsage (-want +got):\n%s", diff)
	}
}

func testPartialSave(t *testing.T, s quota.Store) {
	save(t, s, day, map[string]int64{"a": 100, "b": 200})
	save(t, s, day, map[string]int64{"b": 50, "c": 7}) // replaces b (even downward), adds c, keeps a
	want := map[string]int64{"a": 100, "b": 50, "c": 7}
	if diff := cmp.Diff(want, load(t, s, day), emptyIsNil); diff != "" {
		t.Errorf("LoadUsage after two saves (-want +got):\n%s", diff)
	}
}

func testDays(t *testing.T, s quota.Store) {
	save(t, s, "2026-03-13", map[string]int64{"a": 1})
	save(t, s, day, map[string]int64{"a": 2})
	save(t, s, "2026-03-15", map[string]int64{"b": 3})
	for d, want := range map[string]map[string]int64{
		"2026-03-13": {"a": 1}, day: {"a": 2}, "2026-03-15": {"b": 3}, "2026-03-16": {},
	} {
		if diff := cmp.Diff(want, load(t, s, d), emptyIsNil); diff != "" {
			t.Errorf("LoadUsage(%s) (-want +got):\n%s", d, diff)
		}
	}
}

func testNoAliasing(t *testing.T, s quota.Store) {
	in := map[string]int64{"a": 1}
	save(t, s, day, in)
	in["a"] = 99 // the caller reuses its map
	in["z"] = 1
	got := load(t, s, day)
	got["a"] = 42 // and changes what it loaded
	if diff := cmp.Diff(map[string]int64{"a": 1}, load(t, s, day), emptyIsNil); diff != "" {
		t.Errorf("stored usage changed through a caller's map (-want +got):\n%s", diff)
	}
}

func testConcurrent(t *testing.T, s quota.Store) {
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for j := range 5 {
				u := map[string]int64{fmt.Sprintf("w%d", i): int64(j), "shared": int64(i)}
				if err := s.SaveUsage(context.Background(), day, u); err != nil {
					t.Errorf("SaveUsage: %v", err)
				}
			}
		})
	}
	wg.Wait()
	got := load(t, s, day)
	if len(got) != n+1 {
		t.Errorf("LoadUsage has %d entries, want %d: %v", len(got), n+1, got)
	}
	for i := range n {
		if v := got[fmt.Sprintf("w%d", i)]; v != 4 {
			t.Errorf("w%d = %d, want its last save, 4", i, v)
		}
	}
	if v := got["shared"]; v < 0 || v >= n {
		t.Errorf("shared = %d, want one writer's value", v)
	}
}
