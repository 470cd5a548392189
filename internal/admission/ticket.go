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
	state    State
	res      quota.Reservation
	err      error
	enqueued time.Time
	granted  time.Time
	charged  int64  // tokens charged now in the key's usage
	consumed int64  // usage cost reported by Adjust so far
	day      string // day label the charge counts in
	dayIn    int64  // part of charged counted in day
	core     bool   // from Enqueue: reported by Pump
	ready    chan struct{}
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

// Reservation returns the ledger reservation of a granted ticket (the zero
// Reservation before). Prefer the ticket's own Adjust, Settle and Cancel:
// they also keep the key's usage and let waiting requests in.
func (t *Ticket) Reservation() quota.Reservation {
	if t == nil {
		return quota.Reservation{}
	}
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.res
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

// Adjust reports tokens, the cost of the usage seen so far while the
// answer streams: the ledger counts what is new of it as consumed, out of
// the ticket's hold (see quota.Reservation.Adjust), and the key is charged
// the larger of its reservation and that cost. Usage never shrinks: a
// smaller value than an earlier one does nothing.
func (t *Ticket) Adjust(now time.Time, tokens int64) {
	if t == nil {
		return
	}
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.state != Granted || tokens <= t.consumed {
		return
	}
	t.consumed = tokens
	t.res.Adjust(now, tokens)
	c.rollDay(now)
	c.charge(now, t, max(t.req.Tokens, tokens))
	// Consumption drains where a hold did not: waits may be shorter now.
	c.pump(now)
}

// Settle ends a granted ticket at its final cost and lets waiting requests
// in. It reports whether this call ended the ticket.
func (t *Ticket) Settle(now time.Time, tokens int64) bool {
	if t == nil {
		return false
	}
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.state != Granted {
		return false
	}
	tokens = max(tokens, 0, t.consumed)
	t.res.Settle(now, tokens)
	c.end(now, t, tokens, Settled)
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
	defer c.mu.Unlock()
	switch t.state {
	case Waiting:
		c.unqueue(t)
		t.state = Cancelled
		c.pump(now) // it may have been the head others waited behind
		return true
	case Granted:
		t.res.Cancel(now)
		c.end(now, t, t.consumed, Cancelled)
		return true
	}
	return false
}

// end books a granted ticket's final charge and lets others in. Fair order
// is corrected to what the request really cost, so that served tokens, not
// reservations, are shared by weight.
func (c *Controller) end(now time.Time, t *Ticket, tokens int64, s State) {
	c.rollDay(now)
	c.charge(now, t, tokens)
	t.k.finish += float64(tokens-t.req.Tokens) / t.k.key.weight()
	c.release(t)
	t.state = s
	c.pump(now)
}
