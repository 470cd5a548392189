package quota

import (
	"math/bits"
	"time"
)

// Reservation is a charge held in a Ledger by one request. It is a small
// value: copy it freely; all copies name the same charge. It ends exactly
// once, by Settle or Cancel; after that every method is a no-op, as are the
// methods of the zero Reservation.
type Reservation struct {
	l   *Ledger
	id  uint32
	gen uint32
}

// slot is a live reservation's record in the ledger. gen changes when the
// slot is freed, so a stale Reservation can never touch its successor.
type slot struct {
	gen  uint32
	live bool
	set  Set
	// tokens is the token charge held now.
	tokens int64
	// Per Kind: the charge held now (tokens, or requests for RPM), and for
	// counter windows the window it was charged in and the part of it
	// charged in that window (only that part can be given back).
	held  [numKinds]int64
	epoch [numKinds]int64
	in    [numKinds]int64
}

// alloc takes a free slot. Callers hold l.mu.
func (l *Ledger) alloc(set Set) uint32 {
	var id uint32
	if n := len(l.free); n > 0 {
		id = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		l.slots = append(l.slots, slot{gen: 1})
		id = uint32(len(l.slots) - 1)
	}
	s := &l.slots[id]
	*s = slot{gen: s.gen, live: true, set: set}
	return id
}

// slot returns r's live slot, or nil. Callers hold l.mu.
func (r Reservation) slot() *slot {
	if int(r.id) >= len(r.l.slots) {
		return nil
	}
	s := &r.l.slots[r.id]
	if !s.live || s.gen != r.gen {
		return nil
	}
	return s
}

// change moves the reservation's charge to tok tokens and req requests at
// time t and, with end, releases it. Refunds go back per window rule: a
// token bucket regains them (capped at its effective limit); a counter
// window loses them only from the window they were charged in, if that
// window is still current. Extra charges land in the current window.
// Callers hold l.mu.
func (l *Ledger) change(s *slot, t int64, tok, req int64, end bool) {
	var add, release [numKinds]int64
	s.tokens = tok
	for k := range Kind(numKinds) {
		if s.set&l.byKind[k] == 0 {
			continue
		}
		target := tok
		if k == RequestsPerMinute {
			target = req
		}
		d := target - s.held[k]
		if l.counterKind[k] {
			e := l.b[bits.TrailingZeros64(uint64(s.set&l.byKind[k]))].epochAt(t)
			if s.epoch[k] != e {
				s.epoch[k], s.in[k] = e, 0
			}
			if d < 0 {
				d = -min(-d, s.in[k])
			}
			s.in[k] += d
			if end {
				release[k] = s.in[k]
				s.in[k] = 0
			}
		} else if end {
			release[k] = target
		}
		add[k] = d
		s.held[k] = target
	}
	for m := uint64(s.set); m != 0; m &= m - 1 {
		b := &l.b[bits.TrailingZeros64(m)]
		b.advance(t)
		k := b.kind
		if b.counter {
			b.charged += add[k]
		} else {
			b.level -= add[k]
			if b.level >= b.eff {
				b.level, b.frac = b.eff, 0
			}
		}
		b.held += add[k] - release[k]
		if end {
			b.inflight--
		}
	}
	if end {
		s.live = false
		s.gen++
		if s.gen == 0 {
			s.gen = 1
		}
	}
}

// epochAt is the counter window number containing t.
func (b *bucket) epochAt(t int64) int64 { return floorDiv(t-b.offset, b.period) }

// update applies one step to a live reservation and reports whether it was
// live.
func (r Reservation) update(now time.Time, tok, req int64, end bool) bool {
	if r.l == nil {
		return false
	}
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	s := r.slot()
	if s == nil {
		return false
	}
	l.change(s, l.clock(now), max(tok, 0), req, end)
	if end {
		l.free = append(l.free, r.id)
	}
	return true
}

// Adjust moves the held charge to tokens, the cost seen so far while
// streaming; it may raise it (even past what the buckets have) or lower it.
func (r Reservation) Adjust(now time.Time, tokens int64) { r.update(now, tokens, 1, false) }

// Settle ends the reservation at its final cost: the difference to the held
// charge is given back, or charged extra (which may drive a bucket below
// zero). The request counts one request in RPM buckets. It reports whether
// this call ended the reservation.
func (r Reservation) Settle(now time.Time, tokens int64) bool {
	return r.update(now, tokens, 1, true)
}

// Cancel ends the reservation giving everything back, the request included.
// It reports whether this call ended the reservation.
func (r Reservation) Cancel(now time.Time) bool { return r.update(now, 0, 0, true) }

// Live reports whether the reservation has not ended yet.
func (r Reservation) Live() bool {
	if r.l == nil {
		return false
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	return r.slot() != nil
}

// Held returns the tokens the reservation holds now (0 once ended).
func (r Reservation) Held() int64 {
	if r.l == nil {
		return 0
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	s := r.slot()
	if s == nil {
		return 0
	}
	return s.tokens
}
