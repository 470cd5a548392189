package keys

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type hashKey = [HashLen]byte

// Registry is the gateway's in-memory view of the keys in a Store. Reads
// are lock-free: the cache is an immutable map replaced as a whole. A key
// created by another process is found on its first use (a cache miss asks
// the store); a revocation is picked up by the next Refresh, which Run
// performs periodically.
type Registry struct {
	store  Store
	logger *slog.Logger

	mu    sync.Mutex // serialises store reads that replace the cache
	cache atomic.Pointer[map[hashKey]Key]
}

// NewRegistry returns an empty Registry over store. Call Refresh once before
// serving, and Run for the registry's lifetime.
func NewRegistry(store Store, logger *slog.Logger) *Registry {
	r := &Registry{store: store, logger: logger}
	empty := map[hashKey]Key{}
	r.cache.Store(&empty)
	return r
}

// Authenticate returns the active key whose secret is secret. It returns
// ErrUnknown or ErrRevoked for a secret that must be refused; any other
// error means the store failed. A malformed secret never reaches the store.
func (r *Registry) Authenticate(ctx context.Context, secret string) (Key, error) {
	if !WellFormed(secret) {
		return Key{}, ErrUnknown
	}
	// Copying into an array keeps the hashing free of allocations.
	var buf [SecretLen]byte
	copy(buf[:], secret)
	sum := sha256.Sum256(buf[:])
	if k, ok := (*r.cache.Load())[sum]; ok {
		return admit(k, sum)
	}
	return r.miss(ctx, sum)
}

// admit compares in constant time, although a map hit already implies equal
// hashes: the compare is the single place that decides.
func admit(k Key, sum hashKey) (Key, error) {
	if subtle.ConstantTimeCompare(k.Hash, sum[:]) != 1 {
		return Key{}, ErrUnknown
	}
	if k.Revoked() {
		return Key{}, ErrRevoked
	}
	return k, nil
}

// miss looks a hash up in the store and caches what it finds. Misses are
// serialised, which bounds the store load that unknown secrets can cause.
func (r *Registry) miss(ctx context.Context, sum hashKey) (Key, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := *r.cache.Load()
	if k, ok := cur[sum]; ok { // another miss loaded it meanwhile
		return admit(k, sum)
	}
	k, err := r.store.Lookup(ctx, sum[:])
	if errors.Is(err, ErrNotFound) {
		return Key{}, ErrUnknown
	}
	if err != nil {
		return Key{}, fmt.Errorf("look up key: %w", err)
	}
	next := make(map[hashKey]Key, len(cur)+1)
	for h, v := range cur {
		next[h] = v
	}
	next[sum] = k
	r.cache.Store(&next)
	return admit(k, sum)
}

// Refresh replaces the cache with every key in the store, so that
// revocations, new keys and changed limits take effect.
func (r *Registry) Refresh(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ks, err := r.store.List(ctx)
	if err != nil {
		return fmt.Errorf("refresh keys: %w", err)
	}
	next := make(map[hashKey]Key, len(ks))
	for _, k := range ks {
		if len(k.Hash) != HashLen {
			r.logger.Warn("skipping stored key with a malformed hash", "key", k)
			continue
		}
		next[hashKey(k.Hash)] = k
	}
	r.cache.Store(&next)
	return nil
}

// Run calls Refresh every interval until ctx is done. A failed refresh is
// logged and the previous cache kept.
func (r *Registry) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
				r.logger.Warn("keys refresh failed; keeping the previous keys", "err", err)
			}
		}
	}
}

// Active returns the cached keys that are not revoked, sorted by name (for
// fair-share weights and status).
func (r *Registry) Active() []Key {
	cur := *r.cache.Load()
	out := make([]Key, 0, len(cur))
	for _, k := range cur {
		if !k.Revoked() {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b Key) int { return strings.Compare(a.Name, b.Name) })
	return out
}
