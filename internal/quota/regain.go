package quota

import "time"

// Regain is what a bucket's window gives back at an instant.
type Regain struct {
	At     time.Time
	Tokens int64
}

// Regains returns what bucket i's window gives back of what it counts now,
// in time order, up to until: a fixed day everything at its reset, a
// rolling day each minute's consumption when that minute begins the next
// day, a counter minute everything at the next minute. A refill window
// gives back continuously and returns nil. Reservations held now are not
// counted: they are given back when they end, which no clock tells.
func (l *Ledger) Regains(now, until time.Time, i int) []Regain {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.clock(now)
	b := &l.b[i]
	b.advance(t)
	end := until.UnixNano()
	switch b.win {
	case counterWindow:
		if w := b.windowEnd(); b.used > 0 && w <= end {
			return []Regain{{time.Unix(0, w).UTC(), b.used}}
		}
	case rollingWindow:
		var out []Regain
		r := b.roll
		for m := r.head - rollSlots + 1; m <= r.head; m++ {
			at := (m + rollSlots) * minuteNs
			if at > end {
				break
			}
			if n := r.slots[minuteSlot(m)]; n > 0 {
				out = append(out, Regain{time.Unix(0, at).UTC(), n})
			}
		}
		return out
	}
	return nil
}
