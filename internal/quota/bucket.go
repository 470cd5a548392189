package quota

import (
	"math"
	"math/bits"
	"time"
)

const (
	minuteNs = int64(time.Minute)
	dayNs    = int64(24 * time.Hour)
	never    = int64(math.MaxInt64)

	// Additive increase: the effective limit grows back by stepPct % of the
	// limit for every full minute without an upstream throttle.
	stepPct = 5
	// Multiplicative decrease on an upstream throttle: ×cutNum/cutDen, never
	// below floorPct % of the limit, at most once per throttleHold (one burst
	// of concurrent 429s is one congestion signal, as one loss per RTT in TCP).
	cutNum, cutDen = 7, 10
	floorPct       = 10
	throttleHold   = int64(time.Second)
)

// bucket is one bucket's state. All times are Unix nanoseconds. A bucket is
// a plain value so that wait can simulate the future on a copy.
type bucket struct {
	name    string
	kind    Kind
	limit   int64
	period  int64 // window length: a minute or a day
	offset  int64 // counter windows start at offset + k×period
	counter bool  // counter window (Clock, Fixed) rather than token bucket

	// AIMD state: eff is the effective limit used for admission.
	eff, floor, step int64
	aiAt             int64 // last throttle or additive step
	cutAt            int64 // last multiplicative decrease

	// Token bucket (Refill, Rolling): level tokens available at time at,
	// plus frac/period of a token not yet whole.
	level int64
	frac  uint64
	at    int64

	// Counter window (Clock, Fixed): charged in window number epoch.
	epoch   int64
	charged int64

	// held is what live reservations hold: the whole of it for a token
	// bucket, the part charged in the current window for a counter.
	held     int64
	inflight int
}

func newBucket(s BucketSpec, w Windows, t int64) bucket {
	limit := max(s.Limit, 0)
	b := bucket{
		name:   s.Name,
		kind:   s.Kind,
		limit:  limit,
		period: minuteNs,
		eff:    limit,
		floor:  limit * floorPct / 100,
		step:   max(limit*stepPct/100, 1),
		aiAt:   t,
		cutAt:  t - throttleHold,
		level:  limit,
		at:     t,
	}
	if b.floor < 1 && limit > 0 {
		b.floor = 1
	}
	switch {
	case s.Kind == TokensPerDay:
		b.period = dayNs
		b.counter = w.Day == Fixed
		b.offset = int64(w.DayResetHour) * int64(time.Hour)
	default:
		b.counter = w.Minute == Clock
	}
	b.epoch = floorDiv(t-b.offset, b.period)
	return b
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// available is what can be reserved now; negative after over-settlement.
func (b *bucket) available() int64 {
	if b.counter {
		return b.eff - b.charged
	}
	return b.level
}

// advance brings the bucket to time t: additive-increase steps first, each
// at its own instant, so that the state at t does not depend on how often
// the ledger was called in between.
func (b *bucket) advance(t int64) {
	for b.eff < b.limit {
		next := b.aiAt + minuteNs
		if next > t {
			break
		}
		b.refill(next)
		b.eff = min(b.limit, b.eff+b.step)
		b.aiAt = next
	}
	b.refill(t)
}

func (b *bucket) refill(t int64) {
	if b.counter {
		if e := floorDiv(t-b.offset, b.period); e != b.epoch {
			b.epoch, b.charged, b.held = e, 0, 0
		}
		return
	}
	if t <= b.at {
		return
	}
	dt := uint64(t - b.at)
	b.at = t
	if b.level >= b.eff {
		b.frac = 0
		return
	}
	// Exact integer refill: (frac + dt×eff) / period whole tokens, the
	// remainder carried, in 128 bits so a day of a 3.6-billion bucket fits.
	hi, lo := bits.Mul64(dt, uint64(b.eff))
	var c uint64
	lo, c = bits.Add64(lo, b.frac, 0)
	hi += c
	if hi >= uint64(b.period) {
		b.level, b.frac = b.eff, 0
		return
	}
	q, r := bits.Div64(hi, lo, uint64(b.period))
	if q >= uint64(b.eff-b.level) {
		b.level, b.frac = b.eff, 0
		return
	}
	b.level += int64(q)
	b.frac = r
}

// refillTime is the shortest time after which a token bucket has gained
// deficit more whole tokens at its current effective limit.
func (b *bucket) refillTime(deficit int64) int64 {
	if deficit <= 0 {
		return 0
	}
	if b.eff <= 0 {
		return never
	}
	hi, lo := bits.Mul64(uint64(deficit), uint64(b.period))
	var br uint64
	lo, br = bits.Sub64(lo, b.frac, 0)
	hi -= br
	// ceil(num / eff)
	lo, c := bits.Add64(lo, uint64(b.eff-1), 0)
	hi += c
	if hi >= uint64(b.eff) {
		return never
	}
	q, _ := bits.Div64(hi, lo, uint64(b.eff))
	if q > uint64(math.MaxInt64/2) {
		return never
	}
	return int64(q)
}

// windowEnd is when the current counter window ends.
func (b *bucket) windowEnd() int64 { return (b.epoch+1)*b.period + b.offset }

// wait returns how long after t the bucket will have room for need, if
// nothing else is reserved or given back meanwhile, or never=true when need
// exceeds the configured limit. The bucket must be advanced to t. It
// simulates on a copy: window resets, refill and additive-increase steps.
func (b *bucket) wait(t, need int64) (d int64, isNever bool) {
	if need <= 0 || b.available() >= need {
		return 0, false
	}
	if need > b.limit {
		return 0, true
	}
	c := *b
	cur := t
	for range 1 << 20 { // at most ~20 additive steps and a window or refill
		if c.available() >= need {
			return cur - t, false
		}
		next := never
		if c.eff < c.limit {
			next = c.aiAt + minuteNs
		}
		if c.counter {
			next = min(next, c.windowEnd())
		} else if c.eff >= need {
			if rt := c.refillTime(need - c.level); rt != never && rt <= next-cur {
				return cur + rt - t, false
			}
		}
		if next == never {
			return 0, true
		}
		c.advance(next)
		cur = next
	}
	return 0, true
}

// throttle applies a multiplicative decrease.
func (b *bucket) throttle(t int64) {
	b.aiAt = t
	if t-b.cutAt < throttleHold {
		return
	}
	b.cutAt = t
	b.eff = max(b.floor, b.eff*cutNum/cutDen)
	if !b.counter && b.level > b.eff {
		b.level, b.frac = b.eff, 0
	}
}

func (b *bucket) state() BucketState {
	s := BucketState{
		Name:      b.name,
		Kind:      b.kind,
		Limit:     b.limit,
		Effective: b.eff,
		InFlight:  b.inflight,
		Available: b.available(),
	}
	if b.counter {
		s.Reserved = b.held
		s.Used = b.charged - b.held
	} else {
		consumed := max(b.eff-b.level, 0)
		s.Reserved = min(b.held, consumed)
		s.Used = consumed - s.Reserved
	}
	return s
}
