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
// containing now, in-flight reservations' holds included (a crash must not
// give them back): what the window counts (the day's counter of a Fixed
// bucket, the last 24 hours of a Rolling one) plus what is held.
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
		u.Used[b.name] = b.used + b.reserved
	}
	return u
}

// RestoreDay raises each per-day bucket's consumption (what the window
// counts plus what is held) to what u says, when u is for the day
// containing now; it never lowers it, so restoring twice, or after
// traffic, is harmless. The difference is counted as consumed at now.
// Names the ledger does not know are ignored. It reports whether u was for
// the current day. A Rolling bucket thus forgets the restored usage 24
// hours after the restore rather than after it was consumed (conservative:
// the minutes are not stored).
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
		if add := used - b.used - b.reserved; add > 0 {
			b.consume(t, add)
		}
	}
	return true
}
