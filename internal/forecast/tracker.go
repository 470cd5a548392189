package forecast

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

const (
	// ringMinutes is how far back the per-minute counts reach: the longest
	// rate window's whole minutes and the current one.
	ringMinutes = 61
	minuteNs    = int64(time.Minute)
	dayNs       = int64(24 * time.Hour)
)

// Rate windows, in minutes: the last hour gives the headline rate, the
// shorter ones say whether use is speeding up or slowing down.
var windows = [...]int{60, 15, 5}

// ring is one series' settled tokens by the minute for the last hour, and
// its total for the day.
type ring struct {
	slots [ringMinutes]int64
	head  int64 // the minute of the newest slot
	today int64
	day   int64 // the day today counts in
}

// advance makes minute the newest slot, zeroing the minutes skipped.
func (r *ring) advance(minute int64) {
	if minute <= r.head {
		return
	}
	if minute-r.head >= ringMinutes {
		r.slots = [ringMinutes]int64{}
	} else {
		for m := r.head + 1; m <= minute; m++ {
			r.slots[slot(m)] = 0
		}
	}
	r.head = minute
}

func (r *ring) add(minute, day, n int64) {
	r.advance(minute)
	r.slots[slot(minute)] += n
	if day != r.day {
		r.day, r.today = day, 0
	}
	r.today += n
}

// last is what was counted in the n minutes up to and including minute.
func (r *ring) last(minute int64, n int) int64 {
	var s int64
	for m := max(minute-int64(n)+1, r.head-ringMinutes+1); m <= min(minute, r.head); m++ {
		s += r.slots[slot(m)]
	}
	return s
}

// todayAt is the day's total as of day.
func (r *ring) todayAt(day int64) int64 {
	if r.day != day {
		return 0
	}
	return r.today
}

func slot(minute int64) int { return int((minute%ringMinutes + ringMinutes) % ringMinutes) }

// keyUse is one key's rings: its total (what its budget counts) and one per
// series it used.
type keyUse struct {
	total  ring
	series []ring // by series id; grown when the key first uses a series
}

// Part is one bucket's share of a settled request: Tokens counted in the
// series the Tracker returned for that bucket.
type Part struct {
	Series int
	Tokens int64
}

// Tracker counts settled tokens by key and bucket (a series), by the
// minute. It is safe for concurrent use; Record is on the request path and
// takes one lock and one map lookup.
type Tracker struct {
	mu        sync.Mutex
	resetHour int64 // the UTC hour the day starts at, in ns
	start     int64 // when counting began: rates never reach further back
	latest    int64 // the latest time seen (time only moves forward)
	day       int64 // the day the keys' totals count in
	names     []SeriesName
	keys      map[string]*keyUse
	pending   map[countKey]int64 // since the last Take (Share; nil: not kept)
}

// SeriesName names a series: one bucket of one upstream.
type SeriesName struct {
	Upstream string `json:"upstream"`
	Bucket   string `json:"bucket"`
}

// NewTracker returns a Tracker counting from now, whose days start at
// resetHour UTC (quota.Windows.DayResetHour).
func NewTracker(now time.Time, resetHour int) *Tracker {
	t := &Tracker{resetHour: int64(resetHour) * int64(time.Hour), start: now.UnixNano(), latest: now.UnixNano(), keys: map[string]*keyUse{}}
	t.day = t.dayOf(t.latest)
	return t
}

// Series registers a bucket and returns its id for Record's parts. The
// same name returns the same id.
func (t *Tracker) Series(upstream, bucket string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := SeriesName{upstream, bucket}
	if i := slices.Index(t.names, n); i >= 0 {
		return i
	}
	t.names = append(t.names, n)
	return len(t.names) - 1
}

func (t *Tracker) dayOf(ns int64) int64 {
	d := (ns - t.resetHour) / dayNs
	if (ns-t.resetHour)%dayNs < 0 {
		d--
	}
	return d
}

// clock returns now in ns, never earlier than a time already seen, and
// forgets keys idle for an hour when a new day begins (their rings are all
// zero then), so that a key revoked long ago costs nothing.
func (t *Tracker) clock(now time.Time) int64 {
	ns := now.UnixNano()
	if ns < t.latest {
		return t.latest
	}
	t.latest = ns
	if d := t.dayOf(ns); d != t.day {
		t.day = d
		m := ns / minuteNs
		for name, k := range t.keys {
			if k.total.last(m, ringMinutes) == 0 {
				delete(t.keys, name)
			}
		}
	}
	return ns
}

// Record counts a settled request of key: total in the key's own series
// (its budget) and each part in its bucket's series. Negative or zero
// amounts are ignored.
func (t *Tracker) Record(now time.Time, key string, total int64, parts []Part) {
	t.mu.Lock()
	ns := t.clock(now)
	m, d := ns/minuteNs, t.day
	k := t.keys[key]
	if k == nil {
		k = &keyUse{series: make([]ring, len(t.names))}
		t.keys[key] = k
	}
	if total > 0 {
		k.total.add(m, d, total)
		t.pend(countKey{m, d, key, -1}, total)
	}
	for _, p := range parts {
		if p.Tokens <= 0 || p.Series < 0 || p.Series >= len(t.names) {
			continue
		}
		if p.Series >= len(k.series) {
			k.series = append(k.series, make([]ring, len(t.names)-len(k.series))...)
		}
		k.series[p.Series].add(m, d, p.Tokens)
		t.pend(countKey{m, d, key, p.Series}, p.Tokens)
	}
	t.mu.Unlock()
}

// Rates are tokens per minute over the last hour, 15 minutes and 5
// minutes (or since counting began, when that is shorter).
type Rates struct {
	Hour    float64 `json:"1h"`
	Quarter float64 `json:"15m"`
	Five    float64 `json:"5m"`
}

func (r Rates) list() [3]float64 { return [3]float64{r.Hour, r.Quarter, r.Five} }

// Consumer is one key's use of a bucket over a span, and its share of the
// bucket's use then (0-1).
type Consumer struct {
	Key    string  `json:"key"`
	Tokens int64   `json:"tokens"`
	Share  float64 `json:"share"`
}

// SeriesUsage is one bucket's recent use.
type SeriesUsage struct {
	SeriesName
	Rates Rates `json:"tokens_per_minute"`
	// Top5m and TopToday are its heaviest keys over the last five minutes
	// and today, heaviest first.
	Top5m    []Consumer `json:"top_5m"`
	TopToday []Consumer `json:"top_today"`
}

// Snapshot is every series' and key's recent use at one instant.
type Snapshot struct {
	Series []SeriesUsage
	Keys   map[string]Rates // each key's total rate (what its budget counts)
}

// Snapshot returns every series' rates and top n consumers, and every
// key's total rate, at now.
func (t *Tracker) Snapshot(now time.Time, n int) Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	ns := t.clock(now)
	m := ns / minuteNs
	spans := t.spans(ns)
	out := Snapshot{Series: make([]SeriesUsage, len(t.names)), Keys: make(map[string]Rates, len(t.keys))}
	five := make([][]Consumer, len(t.names))
	today := make([][]Consumer, len(t.names))
	sums := make([][3]int64, len(t.names))
	for name, k := range t.keys {
		k.total.advance(m)
		out.Keys[name] = k.total.rates(m, spans)
		for i := range k.series {
			r := &k.series[i]
			r.advance(m)
			for w, mins := range windows {
				sums[i][w] += r.last(m, mins+1)
			}
			if v := r.last(m, 6); v > 0 {
				five[i] = append(five[i], Consumer{Key: name, Tokens: v})
			}
			if v := r.todayAt(t.day); v > 0 {
				today[i] = append(today[i], Consumer{Key: name, Tokens: v})
			}
		}
	}
	for i, nm := range t.names {
		out.Series[i] = SeriesUsage{SeriesName: nm, Rates: ratesOf(sums[i], spans),
			Top5m: top(five[i], n), TopToday: top(today[i], n)}
	}
	return out
}

// Top returns the n heaviest keys of a series today, heaviest first.
func (t *Tracker) Top(now time.Time, series, n int) []Consumer {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clock(now)
	var cs []Consumer
	for name, k := range t.keys {
		if series < len(k.series) {
			if v := k.series[series].todayAt(t.day); v > 0 {
				cs = append(cs, Consumer{Key: name, Tokens: v})
			}
		}
	}
	return top(cs, n)
}

// top sets every consumer's share of the sum and returns the n heaviest,
// heaviest first (ties by name, so the order is stable).
func top(cs []Consumer, n int) []Consumer {
	var sum int64
	for _, c := range cs {
		sum += c.Tokens
	}
	for i := range cs {
		cs[i].Share = float64(cs[i].Tokens) / float64(sum)
	}
	slices.SortFunc(cs, func(a, b Consumer) int {
		if c := cmp.Compare(b.Tokens, a.Tokens); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	if len(cs) > n {
		cs = cs[:n]
	}
	if cs == nil {
		cs = []Consumer{}
	}
	return cs
}

// spans returns each rate window's length in minutes at ns: its whole
// minutes before the current one and the part of the current one gone by
// (so a window of n minutes counts n + 1 slots), cut to when counting
// began, and at least a minute (a burst in the first seconds is not a rate
// of millions a minute).
func (t *Tracker) spans(ns int64) [3]float64 {
	var s [3]float64
	m := ns / minuteNs
	for w, mins := range windows {
		from := max((m-int64(mins))*minuteNs, t.start)
		s[w] = max(float64(ns-from), float64(minuteNs)) / float64(minuteNs)
	}
	return s
}

func (r *ring) rates(m int64, spans [3]float64) Rates {
	var sums [3]int64
	for w, mins := range windows {
		sums[w] = r.last(m, mins+1)
	}
	return ratesOf(sums, spans)
}

func ratesOf(sums [3]int64, spans [3]float64) Rates {
	return Rates{Hour: float64(sums[0]) / spans[0], Quarter: float64(sums[1]) / spans[1], Five: float64(sums[2]) / spans[2]}
}
