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

	// rollSlots is the rolling day's length in one-minute slots.
	rollSlots = 24 * 60

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

// window is how a bucket regains what was consumed.
type window uint8

const (
	// refillWindow drains consumption continuously at the effective limit
	// per period (Refill).
	refillWindow window = iota
	// counterWindow forgets consumption at every window boundary,
	// offset + k×period (Clock, Fixed).
	counterWindow
	// rollingWindow forgets each minute's consumption 24 hours later (Rolling).
	rollingWindow
)

// bucket is one bucket's state. All times are Unix nanoseconds.
//
// It counts two things, as Bedrock (and the emulator) do. used is what
// requests have consumed and the window has not yet given back: the part
// of their Cost it counts as it is adjusted and settled, or one per
// request in a requests-per-minute bucket. reserved is what live reservations still
// hold on top of that. Windows only ever shrink used: a reservation is
// held in full, outside the window, until it is adjusted, settled or
// cancelled. A request fits when its need is at most eff - used - reserved.
type bucket struct {
	name   string
	kind   Kind
	part   int // the Cost part it counts (kind.part())
	limit  int64
	win    window
	period int64 // refill and counter windows: a minute or a day
	offset int64 // counter windows start at offset + k×period

	// AIMD state: eff is the effective limit used for admission and, in a
	// refill window, the drain rate per period.
	eff, floor, step int64
	aiAt             int64 // last throttle or additive step
	cutAt            int64 // last multiplicative decrease

	// used is consumption the window still counts, in whole tokens rounded
	// up: in a refill window the exact amount is used - frac/period.
	used  int64
	frac  uint64      // refill: part of a token already drained, in 1/period tokens
	at    int64       // refill: time of the last drain
	epoch int64       // counter: the window number used counts in
	roll  *rollingDay // rolling: used by the minute

	reserved int64 // held by live reservations (token buckets only)
	inflight int

	// ext is what other replicas sharing the bucket hold and use, as this
	// ledger last heard (Ledger.SetShared): counted like a hold, since
	// only their settlements or the window can give it back.
	ext int64

	// share is set while the bucket admits against a part of itself
	// (Ledger.Share).
	share shareState
}

func newBucket(s BucketSpec, w Windows, t int64) bucket {
	limit := max(s.Limit, 0)
	b := bucket{
		name:   s.Name,
		kind:   s.Kind,
		part:   s.Kind.part(),
		limit:  limit,
		period: minuteNs,
		eff:    limit,
		floor:  limit * floorPct / 100,
		step:   max(limit*stepPct/100, 1),
		aiAt:   t,
		cutAt:  t - throttleHold,
		at:     t,
	}
	if b.floor < 1 && limit > 0 {
		b.floor = 1
	}
	switch {
	case s.Kind == TokensPerDay && w.Day == Rolling:
		b.win = rollingWindow
		b.period = dayNs
		b.roll = &rollingDay{head: minuteOf(t)}
	case s.Kind == TokensPerDay:
		b.win = counterWindow
		b.period = dayNs
		b.offset = int64(w.DayResetHour) * int64(time.Hour)
	case w.Minute == Clock:
		b.win = counterWindow
	}
	b.epoch = b.epochAt(t)
	return b
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func minuteOf(t int64) int64 { return floorDiv(t, minuteNs) }

// epochAt is the counter window number containing t.
func (b *bucket) epochAt(t int64) int64 { return floorDiv(t-b.offset, b.period) }

// windowEnd is when the current counter window ends.
func (b *bucket) windowEnd() int64 { return (b.epoch+1)*b.period + b.offset }

// available is what can be reserved now; negative after over-settlement.
func (b *bucket) available() int64 { return b.eff - b.used - b.reserved - b.ext }

// held is what holds keep out of the bucket: this ledger's reservations
// and the other replicas' share.
func (b *bucket) held() int64 { return b.reserved + b.ext }

// advance brings the bucket to time t: additive-increase steps first, each
// at its own instant (they change a refill window's drain rate), so that
// the state at t does not depend on how often the ledger was called.
func (b *bucket) advance(t int64) {
	for b.eff < b.limit {
		next := b.aiAt + minuteNs
		if next > t {
			break
		}
		b.regain(next)
		b.eff = min(b.limit, b.eff+b.step)
		b.aiAt = next
	}
	b.regain(t)
}

// regain lets the window give back what it no longer counts at t.
func (b *bucket) regain(t int64) {
	switch b.win {
	case refillWindow:
		b.drain(t)
	case counterWindow:
		if e := b.epochAt(t); e > b.epoch {
			b.epoch, b.used = e, 0
		}
	case rollingWindow:
		b.used -= b.roll.advance(minuteOf(t))
	}
}

// drain removes what a refill window drained since the last drain:
// exactly dt×eff/period tokens, the fraction carried, in 128 bits so that
// a day of a 3.6-billion bucket fits.
func (b *bucket) drain(t int64) {
	if t <= b.at {
		return
	}
	dt := uint64(t - b.at)
	b.at = t
	if b.used <= 0 {
		b.used, b.frac = 0, 0
		return
	}
	hi, lo := bits.Mul64(dt, uint64(b.eff))
	var c uint64
	lo, c = bits.Add64(lo, b.frac, 0)
	hi += c
	if hi >= uint64(b.period) { // more than 2^64 tokens: all of it
		b.used, b.frac = 0, 0
		return
	}
	q, r := bits.Div64(hi, lo, uint64(b.period))
	if q >= uint64(b.used) {
		b.used, b.frac = 0, 0
		return
	}
	b.used -= int64(q)
	b.frac = r
}

// drainTime is the shortest time after which a refill window has drained
// deficit more whole tokens at its current effective limit.
func (b *bucket) drainTime(deficit int64) int64 {
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

// consume counts n as used at t, in the current window. The bucket must be
// advanced to t.
func (b *bucket) consume(t, n int64) {
	b.used += n
	if r := b.roll; r != nil {
		b.used -= r.advance(minuteOf(t)) // nothing when advanced to t
		r.slots[minuteSlot(r.head)] += n
	}
}

// unconsumeRequest takes back the request a cancelled reservation counted
// in a requests-per-minute bucket in counter window epoch. The bucket must
// be advanced to now. A clock minute gives it back only within that
// minute. A refill window gives back what it still counts of it: exact
// when the bucket has not drained empty since (then a request that was
// never made could not have drained it further); otherwise it may count up
// to one request less than had it never been made.
func (b *bucket) unconsumeRequest(epoch int64) {
	switch b.win {
	case counterWindow:
		if epoch == b.epoch && b.used > 0 {
			b.used--
		}
	case refillWindow:
		if b.used > 1 {
			b.used--
		} else {
			b.used, b.frac = 0, 0
		}
	}
}

// Room outcomes of bucket.wait.
const (
	roomNow      = iota // it fits now
	roomByTime          // the window makes room: the wait is exact
	roomOnSettle        // only live reservations ending can make room: the wait is an estimate
	roomNever           // the need exceeds the limit
)

// wait returns how long after t the bucket will have room for need and
// how sure that is. The bucket must be advanced to t. When the window can
// make room while every live reservation keeps its hold, the wait is
// exact (roomByTime): no other reservation, adjustment or settlement
// assumed meanwhile. Otherwise (roomOnSettle) holds must end first, which
// time alone cannot tell: the wait is the longer of what the window needs
// to make room were the holds gone, and hold, the expected time for holds
// to end.
func (b *bucket) wait(t, need, hold int64) (int64, int) {
	if b.available() >= need {
		return 0, roomNow
	}
	if need > b.limit {
		return 0, roomNever
	}
	if need <= b.limit-b.held() {
		if d, ok := b.windowWait(t, need+b.held()); ok {
			return d, roomByTime
		}
		return 0, roomNever
	}
	d, ok := b.windowWait(t, need)
	if !ok {
		return 0, roomNever
	}
	return max(d, hold), roomOnSettle
}

// windowWait is how long after t the window alone makes eff - used reach
// room (at most the limit), with no consumption meanwhile: drains, window
// boundaries, expiring minutes and additive-increase steps. ok is false
// when it never does (a zero limit with consumption the window cannot drain).
func (b *bucket) windowWait(t, room int64) (d int64, ok bool) {
	if b.win == rollingWindow {
		return b.rollingWait(t, room)
	}
	c := *b // plain values: the future is simulated on a copy
	cur := t
	for range 64 { // at most ~20 additive steps and one window
		if c.eff-c.used >= room {
			return cur - t, true
		}
		next := never
		if c.eff < c.limit {
			next = c.aiAt + minuteNs
		}
		switch c.win {
		case counterWindow:
			next = min(next, c.windowEnd())
		case refillWindow:
			if target := c.eff - room; target >= 0 {
				if rt := c.drainTime(c.used - target); rt != never && rt <= next-cur {
					return cur + rt - t, true
				}
			}
		}
		if next == never {
			return 0, false
		}
		c.advance(next)
		cur = next
	}
	return 0, false
}

// rollingWait is windowWait for a rolling day, walking the minutes as they
// expire and the additive steps without touching the bucket.
func (b *bucket) rollingWait(t, room int64) (int64, bool) {
	r := b.roll
	cur, eff, aiAt, used := t, b.eff, b.aiAt, b.used
	m := r.head - rollSlots + 1 // the oldest minute still counted
	for {
		if eff-used >= room {
			return cur - t, true
		}
		for m <= r.head && r.slots[minuteSlot(m)] == 0 {
			m++
		}
		nextAI, nextExp := never, never
		if eff < b.limit {
			nextAI = aiAt + minuteNs
		}
		if m <= r.head {
			nextExp = (m + rollSlots) * minuteNs
		}
		next := min(nextAI, nextExp)
		if next == never {
			return 0, false
		}
		if next == nextExp {
			used -= r.slots[minuteSlot(m)]
			m++
		}
		if next == nextAI {
			eff = min(b.limit, eff+b.step)
			aiAt = nextAI
		}
		cur = next
	}
}

// throttle applies a multiplicative decrease.
func (b *bucket) throttle(t int64) {
	b.aiAt = t
	if t-b.cutAt < throttleHold {
		return
	}
	b.cutAt = t
	b.eff = max(b.floor, b.eff*cutNum/cutDen)
}

func (b *bucket) state() BucketState {
	return BucketState{
		Name:      b.name,
		Kind:      b.kind,
		KindName:  b.kind.String(),
		Limit:     b.limit,
		Effective: b.eff,
		Used:      b.used,
		Reserved:  b.reserved,
		External:  b.ext,
		Share:     int(b.share.n),
		InFlight:  b.inflight,
		Available: b.available(),
	}
}

// rollingDay is what a rolling day bucket consumed in the last 24 hours, in
// one-minute slots: what was consumed during minute m is forgotten when
// minute m + 24×60 begins (as the emulator counts it).
type rollingDay struct {
	slots [rollSlots]int64
	head  int64 // the minute of the newest slot
}

// advance makes minute the newest slot and returns what the slots that
// fell out of the last 24 hours held.
func (r *rollingDay) advance(minute int64) int64 {
	if minute <= r.head {
		return 0
	}
	var dropped int64
	if minute-r.head >= rollSlots {
		for _, n := range r.slots {
			dropped += n
		}
		r.slots = [rollSlots]int64{}
	} else {
		for m := r.head + 1; m <= minute; m++ {
			i := minuteSlot(m)
			dropped += r.slots[i]
			r.slots[i] = 0
		}
	}
	r.head = minute
	return dropped
}

func minuteSlot(minute int64) int {
	return int((minute%rollSlots + rollSlots) % rollSlots)
}
