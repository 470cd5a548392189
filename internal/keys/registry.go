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
//
// A secret the store does not know is remembered as unknown for a short
// TTL (the negative cache), so that a client repeating a bad key does not
// queue every attempt through the store and the lock that new valid keys
// also wait on. Refresh forgets these, so a key created after its secret
// was refused works at the next Refresh at the latest; as secrets are
// random and shown only when created, a new key is in practice never
// refused before it exists.
type Registry struct {
	store  Store
	logger *slog.Logger
	now    func() time.Time

	mu    sync.Mutex // serialises store reads that replace the cache
	cache atomic.Pointer[map[hashKey]Key]
	// neg is written under mu only, so that Refresh's clear cannot be
	// undone by a lookup that read the store before it.
	neg *negative
	// misses bounds the store lookups of uncached secrets; guarded by mu.
	misses missBudget
}

// RegistryOptions tune a Registry; the zero value gives the defaults.
type RegistryOptions struct {
	// NegativeTTL is how long an unknown secret is refused without asking
	// the store (DefaultNegativeTTL); negative turns the negative cache off.
	NegativeTTL time.Duration
	// NegativeSize bounds the unknown secrets remembered
	// (DefaultNegativeSize); the oldest are evicted.
	NegativeSize int
	// MissRate bounds the store lookups of secrets absent from the cache,
	// per second (DefaultMissRate); negative means no bound. Past it, such
	// a secret is refused without asking the store: a key created since
	// the last Refresh then works at the next one.
	MissRate int
	// Now is the clock for the negative cache and the miss rate; nil
	// means time.Now.
	Now func() time.Time
}

// NewRegistry returns an empty Registry over store with the default
// options. Call Refresh once before serving, and Run for the registry's
// lifetime.
func NewRegistry(store Store, logger *slog.Logger) *Registry {
	return NewRegistryWith(store, logger, RegistryOptions{})
}

// NewRegistryWith is NewRegistry with options.
func NewRegistryWith(store Store, logger *slog.Logger, o RegistryOptions) *Registry {
	if o.NegativeTTL == 0 {
		o.NegativeTTL = DefaultNegativeTTL
	}
	if o.NegativeSize == 0 {
		o.NegativeSize = DefaultNegativeSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MissRate == 0 {
		o.MissRate = DefaultMissRate
	}
	r := &Registry{store: store, logger: logger, now: o.Now, neg: newNegative(o.NegativeTTL, o.NegativeSize),
		misses: newMissBudget(o.MissRate)}
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
	if r.neg.has(sum, r.now) {
		return Key{}, ErrUnknown
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

// miss looks a hash up in the store and caches what it finds, or that it
// found nothing. Misses are serialised, which bounds the store load that
// unknown secrets can cause.
func (r *Registry) miss(ctx context.Context, sum hashKey) (Key, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := *r.cache.Load()
	if k, ok := cur[sum]; ok { // another miss loaded it meanwhile
		return admit(k, sum)
	}
	if r.neg.has(sum, r.now) { // or found it unknown meanwhile
		return Key{}, ErrUnknown
	}
	if !r.misses.take(r.now()) {
		if !r.misses.dry {
			r.misses.dry = true
			r.logger.Warn("too many unknown keys: refusing them without asking the store until the rate falls (a client trying keys?)",
				"lookups_per_second", r.misses.rate)
		}
		return Key{}, ErrUnknown
	}
	r.misses.dry = false
	k, err := r.store.Lookup(ctx, sum[:])
	if errors.Is(err, ErrNotFound) {
		r.neg.add(sum, r.now())
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
// revocations, new keys and changed limits take effect, and forgets the
// secrets found unknown.
func (r *Registry) Refresh(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ks, err := r.store.List(ctx)
	if err != nil {
		return fmt.Errorf("refresh keys: %w", err)
	}
	r.neg.clear()
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

// Run calls Refresh every interval until ctx is done, and then refreshed
// (if not nil), so that the caller can pass the new keys on. A failed
// refresh is logged and the previous cache kept.
func (r *Registry) Run(ctx context.Context, every time.Duration, refreshed func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Refresh(ctx); err != nil {
				if ctx.Err() == nil {
					r.logger.Warn("keys refresh failed; keeping the previous keys", "error", err.Error())
				}
				continue
			}
			if refreshed != nil {
				refreshed()
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
