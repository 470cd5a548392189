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
// Its life mirrors Bedrock's (BEDROCK.md section 1, and the emulator):
// Reserve holds the admission charge in every token bucket of its set,
// outside their windows, and counts one request in every
// requests-per-minute bucket. Adjust and Settle count the cost of the
// usage so far as consumed, which the windows then give back by their
// rules, taking it out of the hold; Settle and Cancel release what is
// still held.
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
	// held is what it still holds in each token bucket of set; charged is
	// what it has counted as consumed so far (held + charged never drops
	// below the admission charge while live).
	held, charged int64
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

// hold starts s at t: tokens held in its token buckets, one request
// counted in its request buckets. The buckets are advanced to t. Callers
// hold l.mu.
func (l *Ledger) hold(s *slot, t, tokens int64) {
	s.held, s.start = tokens, t
	for m := uint64(s.set); m != 0; m &= m - 1 {
		b := &l.b[bits.TrailingZeros64(m)]
		if b.kind == RequestsPerMinute {
			b.consume(t, 1)
			s.reqEpoch = b.epoch
		} else {
			b.reserved += tokens
		}
		b.inflight++
	}
}

// consume counts the usage so far, costing tok, as consumed at t: what it
// adds to what s already counted moves out of the hold (as far as the hold
// goes) into every token bucket's window. A smaller tok does nothing.
// Callers hold l.mu.
func (l *Ledger) consume(s *slot, t, tok int64) {
	delta := tok - s.charged
	if delta <= 0 {
		return
	}
	take := min(delta, s.held)
	for m := uint64(s.set &^ l.byKind[RequestsPerMinute]); m != 0; m &= m - 1 {
		b := &l.b[bits.TrailingZeros64(m)]
		b.advance(t)
		b.reserved -= take
		b.consume(t, delta)
	}
	s.held -= take
	s.charged = tok
}

// end releases what s still holds and frees it; cancel also takes back
// its request. Callers hold l.mu.
func (l *Ledger) end(id uint32, s *slot, t int64, cancel bool) {
	for m := uint64(s.set); m != 0; m &= m - 1 {
		b := &l.b[bits.TrailingZeros64(m)]
		if b.kind == RequestsPerMinute {
			if cancel {
				b.advance(t)
				b.unconsumeRequest(s.reqEpoch)
			}
		} else {
			b.reserved -= s.held
		}
		b.inflight--
	}
	if !cancel {
		// Learn how long requests hold: the estimate for waits on holds.
		l.holdMean += (max(t-s.start, 0) - l.holdMean) / holdLearn
	}
	s.held = 0
	s.live = false
	s.gen++
	if s.gen == 0 {
		s.gen = 1
	}
	l.free = append(l.free, id)
}

// update applies one step to a live reservation and reports whether it was
// live.
func (r Reservation) update(now time.Time, tok int64, settle, cancel bool) bool {
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
		l.consume(s, t, max(tok, 0))
	}
	if settle || cancel {
		l.end(r.id, s, t, cancel)
	}
	return true
}

// Adjust counts tokens, the cost of the usage seen so far while the answer
// streams (Bedrock's "periodically adjusted" charge), as consumed: the
// part not counted yet moves from the hold into the buckets' windows, which
// start giving it back; beyond the hold it is charged extra (even past what
// the buckets have). Usage never shrinks: a smaller value than an earlier
// one does nothing.
func (r Reservation) Adjust(now time.Time, tokens int64) { r.update(now, tokens, false, false) }

// Settle ends the reservation at its final cost: what tokens adds to what
// Adjust counted is consumed (beyond the hold too, which may drive a bucket
// below zero), and what is still held is given back. The request stays
// counted in requests-per-minute buckets. It reports whether this call
// ended the reservation.
func (r Reservation) Settle(now time.Time, tokens int64) bool {
	return r.update(now, tokens, true, false)
}

// Cancel ends the reservation for a request the upstream never ran (it
// refused it, or it was never sent): what is still held is given back, and
// the request too. What Adjust already counted as consumed stays consumed:
// the upstream ran the model for it. It reports whether this call ended the
// reservation.
func (r Reservation) Cancel(now time.Time) bool { return r.update(now, 0, false, true) }

// Live reports whether the reservation has not ended yet.
func (r Reservation) Live() bool {
	if r.l == nil {
		return false
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	return r.slot() != nil
}

// Held returns the tokens the reservation still holds: the admission
// charge less what Adjust has counted as consumed (0 once ended).
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
	return s.held
}
