// Package memstore keeps Headroom's persistent state in memory, for tests
// and for `serve --demo`. It implements the Store interfaces that keys and
// quota declare and must not grow anything they do not ask for. Nothing
// survives the process.
package memstore

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/quota"
)

// Store is an in-memory store, safe for concurrent use.
type Store struct {
	mu    sync.Mutex
	keys  map[string]keys.Key         // by name
	usage map[string]map[string]int64 // by day, then by usage key
}

var (
	_ keys.Store  = (*Store)(nil)
	_ quota.Store = (*Store)(nil)
)

// New returns an empty Store.
func New() *Store {
	return &Store{keys: map[string]keys.Key{}, usage: map[string]map[string]int64{}}
}

// Create implements keys.Store.
func (s *Store) Create(_ context.Context, k keys.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.keys[k.Name]; ok {
		if !old.Revoked() {
			return keys.ErrExists
		}
		old.Name = keys.ArchivedName(old.Name, old.RevokedAt)
		s.keys[old.Name] = old
	}
	s.keys[k.Name] = cloneKey(k)
	return nil
}

// List implements keys.Store.
func (s *Store) List(_ context.Context) ([]keys.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]keys.Key, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, cloneKey(k))
	}
	slices.SortFunc(out, func(a, b keys.Key) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Revoke implements keys.Store.
func (s *Store) Revoke(_ context.Context, name string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[name]
	if !ok {
		return keys.ErrNotFound
	}
	if !k.Revoked() {
		k.RevokedAt = at
		s.keys[name] = k
	}
	return nil
}

// Lookup implements keys.Store.
func (s *Store) Lookup(_ context.Context, hash []byte) (keys.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys {
		if bytes.Equal(k.Hash, hash) {
			return cloneKey(k), nil
		}
	}
	return keys.Key{}, keys.ErrNotFound
}

// cloneKey copies the hash so that callers cannot change stored keys.
func cloneKey(k keys.Key) keys.Key {
	k.Hash = bytes.Clone(k.Hash)
	return k
}

// SaveUsage implements quota.Store.
func (s *Store) SaveUsage(_ context.Context, day string, usage map[string]int64) error {
	if len(usage) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.usage[day]
	if d == nil {
		d = map[string]int64{}
		s.usage[day] = d
	}
	maps.Copy(d, usage)
	return nil
}

// LoadUsage implements quota.Store.
func (s *Store) LoadUsage(_ context.Context, day string) (map[string]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.usage[day]), nil
}
