package quota

import (
	"context"
	"time"
)

// Store keeps the day's usage so that a restart, even kill -9, loses none
// of it. internal/store/sqlitestore (and memstore) implement it; the caller
// that owns both a Ledger and a Store (the gateway) saves periodically and
// restores at start: nothing in this package calls it.
//
// Keys are free-form strings chosen by the caller; Headroom uses
// "UPSTREAM/BUCKET" for ledger buckets and "key:NAME" for developer keys.
type Store interface {
	// SaveUsage records usage for day (a Ledger.Day label): each entry
	// replaces the stored value of its key for that day; keys not in usage
	// keep their stored value. It must be atomic: all entries or none.
	SaveUsage(ctx context.Context, day string, usage map[string]int64) error
	// LoadUsage returns every entry stored for day; a day with nothing
	// stored gives an empty (or nil) map and no error.
	LoadUsage(ctx context.Context, day string) (map[string]int64, error)
}

// DayUsage is the day's consumption of every per-day bucket, keyed by
// bucket name, under the label of the day it belongs to.
type DayUsage struct {
	Day  string
	Used map[string]int64
}

// DayUsage returns what each per-day bucket has consumed in the day
// containing now, in-flight reservations included (a crash must not give
// them back): the counter of a Fixed bucket, or limit minus level of a
// Rolling one.
func (l *Ledger) DayUsage(now time.Time) DayUsage {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.clock(now)
	u := DayUsage{Day: l.Day(time.Unix(0, t)), Used: map[string]int64{}}
	for i := range l.b {
		b := &l.b[i]
		if b.kind != TokensPerDay {
			continue
		}
		b.advance(t)
		if b.counter {
			u.Used[b.name] = b.charged
		} else {
			u.Used[b.name] = max(b.eff-b.level, 0)
		}
	}
	return u
}

// RestoreDay raises each per-day bucket's consumption to what u says, when
// u is for the day containing now; it never lowers it, so restoring twice,
// or after traffic, is harmless. Names the ledger does not know are
// ignored. It reports whether u was for the current day. A Rolling bucket
// is restored as if the usage were consumed at now (conservative: the
// refill during the downtime is not credited).
func (l *Ledger) RestoreDay(now time.Time, u DayUsage) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.clock(now)
	if u.Day != l.Day(time.Unix(0, t)) {
		return false
	}
	for i := range l.b {
		b := &l.b[i]
		used, ok := u.Used[b.name]
		if b.kind != TokensPerDay || !ok {
			continue
		}
		b.advance(t)
		if b.counter {
			b.charged = max(b.charged, used)
		} else if lvl := b.eff - used; lvl < b.level {
			b.level, b.frac = lvl, 0
		}
	}
	return true
}
