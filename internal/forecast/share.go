package forecast

import "time"

// Replicas on Redis: each replica's Tracker counts what it settles; to
// show the whole account's rates and top consumers, every replica hands
// what it counted since last time to a shared store (Take), and builds a
// Tracker from what all of them handed over (Load). The store keeps the
// counts by minute for the last hour and by day.

// Count is tokens a key settled in one minute, in one bucket (Series) or,
// with a zero Series, in its total (what its budget counts). Minute and
// Day are the Tracker's numbers (Unix minutes; days since the epoch,
// starting at the reset hour). Load takes a Count with Minute < 0 as the
// day's total only, and one with Day < 0 as that minute's only.
type Count struct {
	Minute, Day int64
	Key         string
	Series      SeriesName
	Tokens      int64
}

// countKey indexes pending counts.
type countKey struct {
	minute, day int64
	key         string
	series      int // -1: the key's total
}

// Share makes the tracker keep what it records for Take, from now on.
func (t *Tracker) Share() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == nil {
		t.pending = map[countKey]int64{}
	}
}

// pend adds n to the pending count of k. Callers hold t.mu.
func (t *Tracker) pend(k countKey, n int64) {
	if t.pending != nil && n > 0 {
		t.pending[k] += n
	}
}

// Take returns what was recorded since the last Take (Share first), and
// forgets it.
func (t *Tracker) Take() []Count {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) == 0 {
		return nil
	}
	out := make([]Count, 0, len(t.pending))
	for k, n := range t.pending {
		c := Count{Minute: k.minute, Day: k.day, Key: k.key, Tokens: n}
		if k.series >= 0 {
			c.Series = t.names[k.series]
		}
		out = append(out, c)
	}
	clear(t.pending)
	return out
}

// Load builds a Tracker, at now, from counts gathered from every replica:
// its rates and consumers are theirs together. Counting began at start
// (the earliest replica's, as the store keeps it); days start at
// resetHour UTC. Counts older than the last hour or of another day than
// now's count only where they still can.
func Load(now, start time.Time, resetHour int, names []SeriesName, counts []Count) *Tracker {
	t := NewTracker(start, resetHour)
	for _, n := range names {
		t.Series(n.Upstream, n.Bucket)
	}
	t.clock(now)
	m := now.UnixNano() / minuteNs
	for _, c := range counts {
		if c.Tokens <= 0 {
			continue
		}
		k := t.keys[c.Key]
		if k == nil {
			k = &keyUse{series: make([]ring, len(t.names))}
			t.keys[c.Key] = k
		}
		r := &k.total
		if c.Series != (SeriesName{}) {
			i := t.Series(c.Series.Upstream, c.Series.Bucket)
			if i >= len(k.series) {
				k.series = append(k.series, make([]ring, len(t.names)-len(k.series))...)
			}
			r = &k.series[i]
		}
		if c.Minute >= 0 && c.Minute <= m && c.Minute > m-ringMinutes {
			r.advance(m)
			r.slots[slot(c.Minute)] += c.Tokens
		}
		if c.Day >= 0 && c.Day == t.day {
			r.day = t.day
			r.today += c.Tokens
		}
	}
	return t
}

// Names returns the series registered, in id order.
func (t *Tracker) Names() []SeriesName {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]SeriesName(nil), t.names...)
}

// Start is when the tracker began counting.
func (t *Tracker) Start() time.Time { return time.Unix(0, t.start) }

// ResetHour is the UTC hour its days start at.
func (t *Tracker) ResetHour() int { return int(t.resetHour / int64(time.Hour)) }

// MinuteDay returns the minute and the day now counts in, as Count has them.
func (t *Tracker) MinuteDay(now time.Time) (minute, day int64) {
	ns := now.UnixNano()
	return ns / minuteNs, t.dayOf(ns)
}

// Minutes is how many minutes of counts Load uses: a store need keep no
// more.
const Minutes = ringMinutes

// Today is what key settled today in all (what its budget counts), as
// far as the tracker counted.
func (t *Tracker) Today(now time.Time, key string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clock(now)
	if k := t.keys[key]; k != nil {
		return k.total.todayAt(t.day)
	}
	return 0
}

// KeysToday returns what each key settled today in all, as far as the
// tracker counted.
func (t *Tracker) KeysToday(now time.Time) map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clock(now)
	out := make(map[string]int64, len(t.keys))
	for name, k := range t.keys {
		if v := k.total.todayAt(t.day); v > 0 {
			out[name] = v
		}
	}
	return out
}
