package quota

import (
	"fmt"
	"math/bits"
	"sync"
	"time"
)

// Ledger is the mirror of one upstream's quota buckets. It is safe for
// concurrent use; every method takes the current time as a parameter.
type Ledger struct {
	mu     sync.Mutex
	b      []bucket
	all    Set
	byKind [numKinds]Set
	byPart [numParts]Set // the token buckets counting each Cost part
	w      Windows
	last   int64 // latest time seen; time never runs backwards here
	// holdMean is how long reservations are held, Reserve to Settle: a
	// moving average of the latest ones, from Windows.HoldEstimate.
	holdMean int64

	slots []slot
	free  []uint32
}

// holdLearn is the moving average's memory: each settlement moves the
// hold estimate 1/holdLearn of the way to its own hold time.
const holdLearn = 8

// NewLedger returns a ledger with every bucket full at now. It panics with
// more than MaxBuckets specs or an invalid Kind (configuration validation
// and ParseKind must refuse those). Negative limits count as 0.
func NewLedger(specs []BucketSpec, w Windows, now time.Time) *Ledger {
	if len(specs) > MaxBuckets {
		panic(fmt.Sprintf("quota: %d buckets, at most %d", len(specs), MaxBuckets))
	}
	t := now.UnixNano()
	if w.HoldEstimate <= 0 {
		w.HoldEstimate = DefaultHoldEstimate
	}
	l := &Ledger{w: w, last: t, holdMean: int64(w.HoldEstimate)}
	for i, s := range specs {
		if s.Kind >= numKinds {
			panic(fmt.Sprintf("quota: bucket %q has invalid kind %d", s.Name, s.Kind))
		}
		l.b = append(l.b, newBucket(s, w, t))
		l.all |= Bit(i)
		l.byKind[s.Kind] |= Bit(i)
		if p := s.Kind.part(); p != partNone {
			l.byPart[p] |= Bit(i)
		}
	}
	return l
}

// clock returns now in Unix nanoseconds, never earlier than a time already
// seen. Callers hold l.mu.
func (l *Ledger) clock(now time.Time) int64 {
	t := now.UnixNano()
	if t < l.last {
		return l.last
	}
	l.last = t
	return t
}

// Len returns the number of buckets.
func (l *Ledger) Len() int { return len(l.b) }

// Spec returns bucket i's configuration.
func (l *Ledger) Spec(i int) BucketSpec {
	b := &l.b[i]
	return BucketSpec{Name: b.name, Kind: b.kind, Limit: b.limit}
}

// Index returns the index of the bucket named name.
func (l *Ledger) Index(name string) (int, bool) {
	for i := range l.b {
		if l.b[i].name == name {
			return i, true
		}
	}
	return -1, false
}

// All returns the Set of every bucket.
func (l *Ledger) All() Set { return l.all }

// OfKind returns the Set of the buckets of kind k.
func (l *Ledger) OfKind(k Kind) Set {
	if k >= numKinds {
		return 0
	}
	return l.byKind[k]
}

// need is what one request of cost c costs in bucket b.
func need(b *bucket, c *[numParts]int64) int64 {
	if b.part == partNone {
		return 1
	}
	return c[b.part]
}

// check advances the buckets of set to t and reports whether they all have
// room. If not, the LimitError names the bucket that binds longest
// (preferring one that can never fit); its RetryAfter is the longest wait
// of all, and Holds says whether any bucket waits on holds.
// Callers hold l.mu.
func (l *Ledger) check(t int64, set Set, c *[numParts]int64) (LimitError, bool) {
	var worst LimitError
	var worstWait int64 = -1
	holds := false
	for m := uint64(set & l.all); m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		b := &l.b[i]
		b.advance(t)
		n := need(b, c)
		if b.available() >= n {
			continue
		}
		d, room := b.wait(t, n, l.holdMean)
		isNever := room == roomNever
		holds = holds || room == roomOnSettle
		if worst.Never && !isNever {
			continue
		}
		if isNever || d > worstWait {
			worstWait = d
			worst = LimitError{Bucket: b.name, Index: i, Kind: b.kind, Need: n,
				Available: b.available(), Limit: b.limit, Effective: b.eff,
				RetryAfter: time.Duration(d), Never: isNever, Share: int(b.share.n)}
			if b.share.n > 0 && n > b.share.limit {
				worst.Limit, worst.Share = b.share.limit, 0 // too large for the whole too
			}
		}
	}
	if worstWait < 0 {
		return worst, true
	}
	worst.Holds = holds && !worst.Never
	return worst, false
}

// Reserve charges every bucket in set at once, or none: it holds the part
// of cost each token bucket counts (Cost.Of) and counts one request in
// every requests-per-minute bucket. A bucket has room when its part (or
// one request) is at most its effective limit less what its window still
// counts as used and what live reservations hold; a part of 0 needs only
// that the bucket is not over its limit (Mantle's output bucket, which
// admits while its debt is within the limit). Negative parts count as 0.
// On refusal the error is a *LimitError for the bucket that binds longest.
func (l *Ledger) Reserve(now time.Time, set Set, cost Cost) (Reservation, error) {
	c := cost.nonNegative().parts()
	l.mu.Lock()
	t := l.clock(now)
	if e, ok := l.check(t, set, &c); !ok {
		l.mu.Unlock()
		return Reservation{}, refusal(e)
	}
	id := l.alloc(set & l.all)
	s := &l.slots[id]
	l.hold(s, t, &c)
	r := Reservation{l: l, id: id, gen: s.gen}
	l.mu.Unlock()
	return r, nil
}

// Overdraw is Reserve without the check: it holds cost in every bucket of
// set even when that takes a bucket below zero (available goes negative
// and later requests wait until it is regained). It is for shadow mode,
// where every request is forwarded and the upstream charges whatever it
// admits: holding the charge keeps the mirror the upstream's, and the
// reservation ends by Settle or Cancel like any other.
func (l *Ledger) Overdraw(now time.Time, set Set, cost Cost) Reservation {
	c := cost.nonNegative().parts()
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.clock(now)
	for m := uint64(set & l.all); m != 0; m &= m - 1 {
		l.b[bits.TrailingZeros64(m)].advance(t)
	}
	id := l.alloc(set & l.all)
	s := &l.slots[id]
	l.hold(s, t, &c)
	return Reservation{l: l, id: id, gen: s.gen}
}

// Fits reports whether set has room for cost now: nil, or the *LimitError
// Reserve would return. It reserves nothing.
func (l *Ledger) Fits(now time.Time, set Set, cost Cost) error {
	c := cost.nonNegative().parts()
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.check(l.clock(now), set, &c); !ok {
		return refusal(e)
	}
	return nil
}

// Wait is Fits without allocating: how long until set has room for cost
// (0 when it has now), and never=true when the cost exceeds a bucket's limit.
// The wait assumes nothing else is reserved, adjusted or settled meanwhile
// and is exact when the windows alone make room; when live reservations
// must end first it is an estimate (see LimitError.Holds).
func (l *Ledger) Wait(now time.Time, set Set, cost Cost) (wait time.Duration, isNever bool) {
	c := cost.nonNegative().parts()
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.check(l.clock(now), set, &c)
	if ok {
		return 0, false
	}
	return e.RetryAfter, e.Never
}

// Short returns the buckets of set that lack room for cost now.
func (l *Ledger) Short(now time.Time, set Set, cost Cost) Set {
	c := cost.nonNegative().parts()
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.clock(now)
	var short Set
	for m := uint64(set & l.all); m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		b := &l.b[i]
		b.advance(t)
		if b.available() < need(b, &c) {
			short |= Bit(i)
		}
	}
	return short
}

// Available returns what bucket i could admit now (negative when over-settled).
func (l *Ledger) Available(now time.Time, i int) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := &l.b[i]
	b.advance(l.clock(now))
	return b.available()
}

// WaitFor returns how long until bucket i alone has room for n (tokens or
// requests, as the bucket counts), and never=true when n exceeds its limit.
// Like Wait, it is an estimate when live reservations must end first.
func (l *Ledger) WaitFor(now time.Time, i int, n int64) (wait time.Duration, isNever bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.clock(now)
	b := &l.b[i]
	b.advance(t)
	d, room := b.wait(t, n, l.holdMean)
	return time.Duration(d), room == roomNever
}

// HoldEstimate is how long the ledger expects a reservation to be held,
// Reserve to Settle: the moving average of the latest settlements (each
// moves it 1/8 of the way to its own hold time), starting from
// Windows.HoldEstimate. Waits on holds use it (LimitError.Holds).
func (l *Ledger) HoldEstimate() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Duration(l.holdMean)
}

// Throttled records that the upstream throttled a request drawing from the
// buckets in set (pass only the kinds the throttle names, e.g.
// set&l.OfKind(TokensPerDay) for "Too many tokens per day"). Each bucket's
// effective limit is multiplied by 0.7, not below 10% of its limit, at most
// once a second; it grows back by 5% of the limit per full minute without a
// throttle.
func (l *Ledger) Throttled(now time.Time, set Set) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.clock(now)
	for m := uint64(set & l.all); m != 0; m &= m - 1 {
		b := &l.b[bits.TrailingZeros64(m)]
		b.advance(t)
		b.throttle(t)
	}
}

// SetShared tells bucket i what it has available at now across every
// replica sharing it (a ledger in Redis: README, "Replicas on Redis").
// From then on the bucket counts the difference between its own room and
// that as held by the other replicas: it admits no more than the shared
// ledger had room for, less what it reserves itself meanwhile, until the
// next call. It never makes room: a shared ledger with more room than
// this one counts nothing.
func (l *Ledger) SetShared(now time.Time, i int, available int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := &l.b[i]
	b.advance(l.clock(now))
	b.ext = max(0, b.eff-b.used-b.reserved-available)
}

// BucketState is one bucket as /v1/status and metrics show it.
type BucketState struct {
	Name string `json:"name"`
	Kind Kind   `json:"-"`
	// KindName is Kind's configuration spelling, for JSON.
	KindName  string `json:"kind"`
	Limit     int64  `json:"limit"`
	Effective int64  `json:"effective"`
	// Used is consumed and not yet regained by the window: adjusted and
	// settled charges (or requests) the window still counts.
	Used int64 `json:"used"`
	// Reserved is held by in-flight reservations, outside the window.
	Reserved int64 `json:"reserved"`
	// External is what other replicas sharing the bucket hold and use
	// (SetShared), as this ledger last heard.
	External int64 `json:"external,omitempty"`
	// Share is n while the bucket admits against 1/n of itself (Share:
	// the shared ledger is unreachable); Limit and Effective are then the
	// part's.
	Share     int   `json:"share,omitempty"`
	InFlight  int   `json:"in_flight"`
	Available int64 `json:"available"`
}

// Snapshot returns every bucket's state at now.
func (l *Ledger) Snapshot(now time.Time) []BucketState {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.clock(now)
	out := make([]BucketState, len(l.b))
	for i := range l.b {
		l.b[i].advance(t)
		out[i] = l.b[i].state()
	}
	return out
}

// Bucket returns bucket i's state at now without allocating.
func (l *Ledger) Bucket(now time.Time, i int) BucketState {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := &l.b[i]
	b.advance(l.clock(now))
	return b.state()
}

// DayWindow returns the day containing now: [start, end), starting at
// Windows.DayResetHour UTC. Fixed day buckets reset at end.
func (l *Ledger) DayWindow(now time.Time) (start, end time.Time) {
	off := int64(l.w.DayResetHour) * int64(time.Hour)
	e := floorDiv(now.UnixNano()-off, dayNs)
	s := e*dayNs + off
	return time.Unix(0, s).UTC(), time.Unix(0, s+dayNs).UTC()
}

// Day labels the day containing now, as "2006-01-02" of its start (UTC);
// the key under which its usage is stored.
func (l *Ledger) Day(now time.Time) string {
	s, _ := l.DayWindow(now)
	return s.Format(time.DateOnly)
}
