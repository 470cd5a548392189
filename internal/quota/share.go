package quota

import "time"

// A replica that shares its buckets with n-1 others through a shared
// ledger (SetShared) and loses it can go on alone on a conservative part
// of them: Share divides every bucket by n, Unshare gives the whole back.
//
// The part is 1/n of everything that sets how much a bucket admits: its
// limit, its effective limit (and with it a refill window's rate), its
// AIMD floor and step, and its room at the moment of the split (what it
// had available across replicas, as SetShared last said). n replicas that
// each run on such a part together never admit more than the whole bucket
// would (TestShareNeverAdmitsMoreThanTheWhole): they start with at most
// its room between them, and regain at most its rate between them.

// shareState is what a shared-out bucket gives back on Unshare.
type shareState struct {
	n                  int64 // the divisor; 0 when the bucket is whole
	limit, floor, step int64
}

// Share makes every bucket admit against 1/n of itself from now on (see
// above), until Unshare. The part's room is 1/n of what the bucket had
// available across replicas, less what this ledger alone holds of it:
// unshared[i] (nil: nothing) is what bucket i holds that the shared
// ledger it last heard from does not count (reservations whose shared
// reserve had no answer yet); the rest of its available is counted as
// used by a minute bucket (its window gives it back at the part's rate),
// as held by the others by a day bucket (External; the day's own usage
// stays exact). n below 2, or a ledger already shared out, changes
// nothing.
func (l *Ledger) Share(now time.Time, n int, unshared []int64) {
	if n < 2 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.clock(now)
	if len(l.b) == 0 || l.b[0].share.n != 0 {
		return
	}
	for i := range l.b {
		b := &l.b[i]
		b.advance(t)
		var own int64
		if i < len(unshared) {
			own = max(unshared[i], 0)
		}
		room := floorDiv(b.available()+own, int64(n)) - own
		b.share = shareState{n: int64(n), limit: b.limit, floor: b.floor, step: b.step}
		b.limit /= int64(n)
		b.eff /= int64(n)
		b.floor /= int64(n)
		if b.floor < 1 && b.limit > 0 {
			b.floor = 1
		}
		b.step = max(b.step/int64(n), 1)
		if b.kind == TokensPerDay {
			b.ext = max(0, b.eff-b.used-b.reserved-room)
		} else {
			b.ext = 0
			b.used, b.frac = max(0, b.eff-b.reserved-room), 0
		}
	}
}

// Unshare gives every bucket its whole limit back, keeping the AIMD state
// its part reached (scaled up). It forgets what the parts counted as the
// others' (minute buckets' use, day buckets' External): the next
// SetShared says what the shared ledger has available.
func (l *Ledger) Unshare(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.clock(now)
	for i := range l.b {
		b := &l.b[i]
		s := b.share
		if s.n == 0 {
			continue
		}
		b.advance(t)
		eff := s.limit
		if b.eff < b.limit {
			eff = min(s.limit, max(s.floor, b.eff*s.n))
		}
		b.limit, b.floor, b.step, b.eff = s.limit, s.floor, s.step, eff
		b.share = shareState{}
		b.ext = 0
		if b.kind != TokensPerDay {
			b.used, b.frac = 0, 0
		}
	}
}
