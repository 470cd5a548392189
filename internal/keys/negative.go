package keys

import (
	"sync"
	"time"
)

// Defaults of the Registry's negative cache.
const (
	// DefaultNegativeTTL is how long a secret the store did not know is
	// refused without asking the store again (or until the next Refresh,
	// whichever comes first).
	DefaultNegativeTTL = 5 * time.Second
	// DefaultNegativeSize bounds the unknown secrets remembered; about
	// 80 bytes each.
	DefaultNegativeSize = 10_000
)

// negShards spreads the negative cache over several locks, so that
// parallel refusals do not queue on one.
const negShards = 16

// negative remembers hashes of well-formed secrets that the store does not
// know, each until an expiry, so that a client repeating a bad key costs a
// map lookup, not a store query under the Registry's lock. It is bounded:
// each shard evicts its oldest entry to make room.
type negative struct {
	ttl    time.Duration
	shards [negShards]negShard
}

type negShard struct {
	mu     sync.Mutex
	expiry map[hashKey]time.Time
	// order holds the keys of expiry in insertion order, as a ring once
	// full: order[next] is the oldest.
	order []hashKey
	next  int
	cap   int
}

// newNegative returns a cache of size entries in all, each kept for ttl; nil
// (remember nothing) when either is not positive.
func newNegative(ttl time.Duration, size int) *negative {
	if ttl <= 0 || size <= 0 {
		return nil
	}
	n := &negative{ttl: ttl}
	per := (size + negShards - 1) / negShards
	for i := range n.shards {
		n.shards[i] = negShard{expiry: make(map[hashKey]time.Time), cap: per}
	}
	return n
}

func (n *negative) shard(h hashKey) *negShard { return &n.shards[h[0]%negShards] }

// has reports whether h is remembered as unknown at now(). The clock is
// read only when h is present.
func (n *negative) has(h hashKey, now func() time.Time) bool {
	if n == nil {
		return false
	}
	s := n.shard(h)
	s.mu.Lock()
	exp, ok := s.expiry[h]
	s.mu.Unlock()
	return ok && now().Before(exp)
}

// add remembers h as unknown from now on, evicting the shard's oldest entry
// when it is full. An expired entry is renewed in place: it keeps its place
// in the eviction order, which at worst evicts it early (one extra store
// query).
func (n *negative) add(h hashKey, now time.Time) {
	if n == nil {
		return
	}
	s := n.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.expiry[h]; !ok {
		if len(s.order) < s.cap {
			s.order = append(s.order, h)
		} else {
			delete(s.expiry, s.order[s.next])
			s.order[s.next] = h
			s.next = (s.next + 1) % s.cap
		}
	}
	s.expiry[h] = now.Add(n.ttl)
}

// clear forgets everything.
func (n *negative) clear() {
	if n == nil {
		return
	}
	for i := range n.shards {
		s := &n.shards[i]
		s.mu.Lock()
		clear(s.expiry)
		s.order, s.next = s.order[:0], 0
		s.mu.Unlock()
	}
}
