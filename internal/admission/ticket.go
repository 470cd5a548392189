package admission

import (
	"time"

	"github.com/headroomhq/headroom/internal/quota"
)

// State is where a ticket is in its life.
type State uint8

const (
	Waiting   State = iota + 1 // queued
	Granted                    // admitted: holds a reservation
	Refused                    // deadline passed; Err is a *Refusal
	Settled                    // ended by Settle
	Cancelled                  // ended by Cancel (while waiting or granted)
)

func (s State) String() string {
	switch s {
	case Waiting:
		return "waiting"
	case Granted:
		return "granted"
	case Refused:
		return "refused"
	case Settled:
		return "settled"
	case Cancelled:
		return "cancelled"
	}
	return "invalid"
}

// Ticket is one request's place in the controller, from Enqueue (or Admit)
// to its end. Its methods are safe for concurrent use and nil-safe, and a
// ticket ends exactly once: after Settle or Cancel, both are no-ops, so
// `defer t.Cancel(now)` after admission is always safe.
type Ticket struct {
	c   *Controller
	k   *keyState
	req Request

	// Guarded by c.mu.
	state     State
	res       quota.Reservation
	err       error
	enqueued  time.Time
	granted   time.Time
	charged   int64      // tokens charged now in the key's usage
	vcharge   float64    // its charge in its key's fair tag while in flight
	vmeasured float64    // the part of vcharge from a measured ratio
	consumed  quota.Cost // usage cost reported by Adjust so far
	day       string     // day label the charge counts in
	dayIn     int64      // part of charged counted in day
	core      bool       // from Enqueue: reported by Pump
	ready     chan struct{}
	grp       *Group      // the request's placement across a route (Place), or nil
	gi        int         // its candidate index in grp
	shared    *SharedHold // its hold in Options.Shared, while granted
	// Shadow mode: pending is set while the ledger does not hold it yet
	// (Confirm); pendingSeen is the controller's pendingSeq it was
	// granted at, contested whether a pending ticket was in flight then
	// (Contested).
	pending     bool
	contested   bool
	pendingSeen uint64

	// A settlement whose ledger refund is held back (SettleAfter).
	refundAt   time.Time
	refundBy   time.Time // refundAt plus its refundSlack
	refundCost quota.Cost
}

// Request returns the request as queued (Deadline filled in).
func (t *Ticket) Request() Request { return t.req }

// State returns the ticket's state.
func (t *Ticket) State() State {
	if t == nil {
		return 0
	}
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.state
}

// Err returns the *Refusal of a refused ticket, or nil.
func (t *Ticket) Err() error {
	if t == nil {
		return nil
	}
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.err
}

// wasGranted reports whether the ticket was ever granted.
func (t *Ticket) wasGranted() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return !t.granted.IsZero()
}

// Waited returns how long the ticket queued before it was granted (0 if it
// was not granted).
func (t *Ticket) Waited() time.Duration {
	if t == nil {
		return 0
	}
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.granted.IsZero() {
		return 0
	}
	return t.granted.Sub(t.enqueued)
}

// Adjust reports cost, the cost of the usage seen so far while the answer
// streams: the ledger counts what is new of it as consumed, out of the
// ticket's hold (see quota.Reservation.Adjust), and the key is charged the
// larger of its reservation's total and that cost's (in fair order, the
// larger of its expected cost and that cost). Usage never shrinks: a part
// smaller than an earlier one does nothing.
func (t *Ticket) Adjust(now time.Time, cost quota.Cost) {
	if t == nil {
		return
	}
	c := t.c
	c.mu.Lock()
	defer c.unlock(now)
	if t.state != Granted || t.consumed.Covers(cost) {
		return
	}
	t.consumed = t.consumed.Max(cost)
	t.res.Adjust(now, t.consumed)
	c.adjustShared(t, t.consumed)
	c.rollDay(now)
	used := t.consumed.Total()
	dd := c.charge(t, max(t.req.tokens(), used))
	c.b.add(t.k.use, t.day, dd)
	c.refair(t, used)
	// Consumption drains where a hold did not: waits may be shorter now.
	c.pump(now)
}

// Settle ends a granted ticket at its final cost and lets waiting requests
// in. It reports whether this call ended the ticket.
func (t *Ticket) Settle(now time.Time, cost quota.Cost) bool {
	return t.SettleAfter(now, cost, 0)
}

// SettleAfter is Settle with the ledger's refund held back for delay: the
// ticket ends at now, and fair order, the key's usage and the concurrency
// caps take the final cost at once, but the ledger keeps what the ticket
// holds until now+delay and settles it then. It is for an upstream that
// gives its own reservation back only a moment after the last byte:
// handing the refund to the next request at once could send it before the
// upstream has the room. A settlement that refunds nothing (every part at
// least what is held) lands at once; so does the extra charge of a part
// that exceeds its hold (Mantle's output) when another part refunds.
//
// No goroutine waits for it: the refund is due at a time NextWake reports,
// and the next Pump at or after it settles the ledger (the blocking form's
// timer pumps then for tickets from Admit). Reservation stays live until
// then.
func (t *Ticket) SettleAfter(now time.Time, cost quota.Cost, delay time.Duration) bool {
	if t == nil {
		return false
	}
	c := t.c
	c.mu.Lock()
	defer c.unlock(now)
	if t.state != Granted {
		return false
	}
	cost = cost.Max(t.consumed).Max(quota.Cost{})
	held := t.req.Cost.Max(t.consumed)
	c.end(now, t, cost.Total(), Settled)
	c.endShared(t, cost, false, delay)
	if delay <= 0 || cost.Covers(held) {
		t.res.Settle(now, cost)
	} else {
		// The parts charged beyond their hold land now; the refund waits.
		if extra := landNow(cost, held, t.consumed); extra != t.consumed {
			t.res.Adjust(now, extra)
			t.consumed = extra
		}
		c.holdRefund(t, now, now.Add(delay), cost)
	}
	c.pump(now)
	return true
}

// Cancel ends the ticket giving everything back: a waiting ticket leaves the
// queue, a granted one returns its reservation (for a request the upstream
// never ran; what Adjust reported stays charged). It reports whether this
// call ended the ticket.
func (t *Ticket) Cancel(now time.Time) bool {
	if t == nil {
		return false
	}
	c := t.c
	c.mu.Lock()
	defer c.unlock(now)
	switch t.state {
	case Waiting:
		c.unqueue(t)
		t.state = Cancelled
		c.pump(now) // it may have been the head others waited behind
		return true
	case Granted:
		t.res.Cancel(now)
		c.end(now, t, t.consumed.Total(), Cancelled)
		c.endShared(t, quota.Cost{}, true, 0)
		c.pump(now)
		return true
	}
	return false
}

// end books a granted ticket's final charge in its key's usage and in fair
// order, and takes it out of flight; the caller settles the ledger and
// pumps. Fair order counts what the request really cost, so that served
// tokens, not reservations, are shared by weight.
func (c *Controller) end(now time.Time, t *Ticket, tokens int64, s State) {
	c.unpend(t)
	c.rollDay(now)
	dd := c.charge(t, tokens)
	c.unfair(t, tokens, s == Settled)
	c.release(t, dd)
	t.state = s
}

// landNow is what a settlement at cost counts as consumed at once when its
// refund is held back: each part that refunds nothing (cost at least held)
// in full, the others as consumed so far.
func landNow(cost, held, consumed quota.Cost) quota.Cost {
	pick := func(c, h, u int64) int64 {
		if c >= h {
			return c
		}
		return u
	}
	return quota.Cost{
		Tokens: pick(cost.Tokens, held.Tokens, consumed.Tokens),
		Input:  pick(cost.Input, held.Input, consumed.Input),
		Output: pick(cost.Output, held.Output, consumed.Output),
	}
}
