package emulator

import (
	"math"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
)

// bucket is one quota as the emulator enforces it (BEDROCK.md sections 1-2).
//
// It counts two things. used is what requests have consumed in the current
// window: their input, cache writes and output × burndown as it is generated,
// or one per request for a requests-per-minute bucket. reserved is what
// admitted requests still hold on top of that until they settle. A request
// fits when its charge is at most limit - used - reserved. Windows only ever
// shrink used: a reservation is held in full until its request settles.
//
// A bucket is guarded by its region's mutex.
type bucket struct {
	name  string
	kind  string // config.KindTPM, KindTPD or KindRPM
	limit int64
	scope bedrock.Scope

	used     float64 // float so that a continuous refill loses no fraction
	reserved int64

	mode    string    // config.MinuteRefill, MinuteClock, DayFixed or DayRolling
	resetAt int       // hour UTC of the daily reset (DayFixed)
	anchor  time.Time // refill: last refresh; clock minute: window start; fixed day: next reset
	rolling *rollingDay
}

func newBucket(b config.Bucket, w config.Windows, now time.Time) *bucket {
	nb := &bucket{name: b.Name, kind: b.Kind, limit: b.Limit, scope: b.Scope, resetAt: w.DayResetHourUTC}
	if b.Kind == config.KindTPD {
		nb.mode = w.Day
	} else {
		nb.mode = w.Minute
	}
	nb.restart(now)
	return nb
}

// restart empties the window as of now.
func (b *bucket) restart(now time.Time) {
	b.used = 0
	switch b.mode {
	case config.MinuteRefill:
		b.anchor = now
	case config.MinuteClock:
		b.anchor = now.Truncate(time.Minute)
	case config.DayFixed:
		b.anchor = nextDailyReset(now, b.resetAt)
	case config.DayRolling:
		b.rolling = &rollingDay{head: minuteOf(now)}
	}
}

// refresh lets time pass: the window drops what has expired by now. Time that
// runs backwards is ignored.
func (b *bucket) refresh(now time.Time) {
	switch b.mode {
	case config.MinuteRefill:
		// A token bucket: consumption drains at limit per minute.
		if elapsed := now.Sub(b.anchor); elapsed > 0 {
			b.used = math.Max(0, b.used-float64(b.limit)*elapsed.Minutes())
			b.anchor = now
		}
	case config.MinuteClock:
		// A counter for each clock minute.
		if start := now.Truncate(time.Minute); start.After(b.anchor) {
			b.used, b.anchor = 0, start
		}
	case config.DayFixed:
		// A counter for each day, starting at the reset hour UTC.
		if !now.Before(b.anchor) {
			b.used, b.anchor = 0, nextDailyReset(now, b.resetAt)
		}
	case config.DayRolling:
		// What was consumed in the last 24 hours, by the minute.
		b.rolling.advance(minuteOf(now))
		b.used = b.rolling.total
	}
}

// available is what a new request may still take.
func (b *bucket) available() float64 { return float64(b.limit) - b.used - float64(b.reserved) }

// fits reports whether a charge of n fits now. Call refresh first. The
// tolerance absorbs the rounding of a continuous refill, so that a charge
// that fits exactly on paper fits.
func (b *bucket) fits(n int64) bool { return float64(n) <= b.available()+epsilon }

const epsilon = 1e-6 // tokens

// consume counts n as used in the current window.
func (b *bucket) consume(now time.Time, n int64) {
	b.used += float64(n)
	if b.rolling != nil {
		b.rolling.add(minuteOf(now), float64(n))
	}
}

// nextDailyReset is the first hour:00 UTC strictly after now.
func nextDailyReset(now time.Time, hour int) time.Time {
	u := now.UTC()
	t := time.Date(u.Year(), u.Month(), u.Day(), hour, 0, 0, 0, time.UTC)
	if !t.After(u) {
		t = t.AddDate(0, 0, 1)
	}
	return t
}

func minuteOf(t time.Time) int64 { return t.Unix() / 60 }

// rollingDay sums consumption over the last 24 hours in one-minute slots.
type rollingDay struct {
	slots [24 * 60]float64
	head  int64 // the minute of the newest slot
	total float64
}

// advance moves the window so that minute is the newest slot, dropping the
// slots that fall out of the last 24 hours.
func (r *rollingDay) advance(minute int64) {
	if minute <= r.head {
		return
	}
	if minute-r.head >= int64(len(r.slots)) {
		r.slots, r.total = [len(r.slots)]float64{}, 0
	} else {
		for m := r.head + 1; m <= minute; m++ {
			i := slot(m)
			r.total -= r.slots[i]
			r.slots[i] = 0
		}
	}
	r.head = minute
}

func (r *rollingDay) add(minute int64, n float64) {
	r.advance(minute)
	r.slots[slot(r.head)] += n
	r.total += n
}

func slot(minute int64) int {
	const n = 24 * 60
	return int((minute%n + n) % n)
}
