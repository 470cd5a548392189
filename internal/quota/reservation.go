package quota

import (
	"math/bits"
	"time"
)

// Reservation is a charge held in a Ledger by one request. It is a small
// value: copy it freely; all copies name the same charge. It ends exactly
// once, by Settle or Cancel; after that every method is a no-op, as are the
// methods of the zero Reservation.
//
// Its life mirrors Bedrock's (BEDROCK.md sections 1 and 6, and the
// emulator): Reserve holds the admission charge in every token bucket of
// its set, outside their windows, and counts one request in every
// requests-per-minute bucket. Adjust and Settle count the cost of the
// usage so far as consumed, which the windows then give back by their
// rules, taking it out of the hold; Settle and Cancel release what is
// still held. Each part of the Cost (Tokens, Input, Output) is held,
// consumed and released on its own, in the buckets that count it.
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
	// held is, per Cost part, what it still holds in each token bucket of
	// set counting that part; charged is what it has counted as consumed
	// so far (held + charged never drops below the admission charge while
	// live).
	held, charged [numParts]int64
	// reqEpoch is the clock minute its request was counted in (Clock).
	reqEpoch int64
	// start is when it was reserved.
	start int64
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

// hold starts s at t: each part of cost held in the token buckets
// counting it, one request counted in its request buckets. The buckets
// are advanced to t. Callers hold l.mu.
func (l *Ledger) hold(s *slot, t int64, cost *[numParts]int64) {
	s.held, s.start = *cost, t
	for m := uint64(s.set); m != 0; m &= m - 1 {
		b := &l.b[bits.TrailingZeros64(m)]
		if b.part == partNone {
			b.consume(t, 1)
			s.reqEpoch = b.epoch
		} else {
			b.reserved += cost[b.part]
		}
		b.inflight++
	}
}

// consume counts the usage so far, costing tok, as consumed at t, part by
// part: what a part adds to what s already counted of it moves out of the
// hold (as far as the hold goes) into the window of every token bucket
// counting that part. A part smaller than before does nothing. Callers
// hold l.mu.
func (l *Ledger) consume(s *slot, t int64, tok *[numParts]int64) {
	for p := range numParts {
		delta := tok[p] - s.charged[p]
		if delta <= 0 {
			continue
		}
		take := min(delta, s.held[p])
		for m := uint64(s.set & l.byPart[p]); m != 0; m &= m - 1 {
			b := &l.b[bits.TrailingZeros64(m)]
			b.advance(t)
			b.reserved -= take
			b.consume(t, delta)
		}
		s.held[p] -= take
		s.charged[p] = tok[p]
	}
}

// end releases what s still holds and frees it; cancel also takes back
// its request. Callers hold l.mu.
func (l *Ledger) end(id uint32, s *slot, t int64, cancel bool) {
	for m := uint64(s.set); m != 0; m &= m - 1 {
		b := &l.b[bits.TrailingZeros64(m)]
		if b.part == partNone {
			if cancel {
				b.advance(t)
				b.unconsumeRequest(s.reqEpoch)
			}
		} else {
			b.reserved -= s.held[b.part]
		}
		b.inflight--
	}
	if !cancel {
		// Learn how long requests hold: the estimate for waits on holds.
		l.holdMean += (max(t-s.start, 0) - l.holdMean) / holdLearn
	}
	s.held = [numParts]int64{}
	s.live = false
	s.gen++
	if s.gen == 0 {
		s.gen = 1
	}
	l.free = append(l.free, id)
}

// update applies one step to a live reservation and reports whether it was
// live.
func (r Reservation) update(now time.Time, tok Cost, settle, cancel bool) bool {
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
	t := l.clock(now)
	if !cancel {
		c := tok.nonNegative().parts()
		l.consume(s, t, &c)
	}
	if settle || cancel {
		l.end(r.id, s, t, cancel)
	}
	return true
}

// Adjust counts cost, the cost of the usage seen so far while the answer
// streams (Bedrock's "periodically adjusted" charge, Mantle's output
// counted as generated), as consumed: in each part, what is not counted
// yet moves from the hold into the windows of the buckets counting that
// part, which start giving it back; beyond the hold it is charged extra
// (even past what the buckets have). Usage never shrinks: a part smaller
// than an earlier one does nothing.
func (r Reservation) Adjust(now time.Time, cost Cost) { r.update(now, cost, false, false) }

// Settle ends the reservation at its final cost: what each part adds to
// what Adjust counted is consumed (beyond the hold too, which may drive a
// bucket below zero), and what is still held is given back. The request
// stays counted in requests-per-minute buckets. It reports whether this
// call ended the reservation.
func (r Reservation) Settle(now time.Time, cost Cost) bool {
	return r.update(now, cost, true, false)
}

// Cancel ends the reservation for a request the upstream never ran (it
// refused it, or it was never sent): what is still held is given back, and
// the request too. What Adjust already counted as consumed stays consumed:
// the upstream ran the model for it. It reports whether this call ended the
// reservation.
func (r Reservation) Cancel(now time.Time) bool { return r.update(now, Cost{}, false, true) }

// Live reports whether the reservation has not ended yet.
func (r Reservation) Live() bool {
	if r.l == nil {
		return false
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	return r.slot() != nil
}

// Held returns what the reservation still holds: the admission charge
// less what Adjust has counted as consumed, part by part (zero once ended).
func (r Reservation) Held() Cost {
	if r.l == nil {
		return Cost{}
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	s := r.slot()
	if s == nil {
		return Cost{}
	}
	return Cost{Tokens: s.held[partTokens], Input: s.held[partInput], Output: s.held[partOutput]}
}
