package admission

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// Candidate is one upstream a request may be placed on: that upstream's
// controller and the request as its buckets count it (its bucket set and
// cost there; the key and the deadline are the same on every candidate).
type Candidate struct {
	C   *Controller
	Req Request
}

// Group is one request placed across the controllers of a route's
// upstreams (Place). It is granted by the first candidate, in preference
// order, whose ledger admits it at once; when none does, it waits in the
// fair queue of every candidate and the first that grants it wins: the
// ticket waiting in each other one leaves its queue at once, and no other
// candidate can grant it meanwhile (a candidate's grant claims the group
// under the group's lock). So a request is never queued behind one
// upstream while another has room, and the key's daily budget and
// concurrency cap, which the controllers share through Budgets, count it
// once.
//
// Lock order: a controller's mutex, then the group's; a group never
// takes a controller's lock.
type Group struct {
	mu      sync.Mutex
	tickets []*Ticket // per candidate; nil when it refused at once
	errs    []error   // per candidate: why it refused
	won     int       // the candidate whose grant claimed the group, or -1
	pending int       // tickets waiting
	done    bool      // granted, or every candidate refused
	placing bool      // Place has not tried every candidate yet
	ready   chan struct{}
}

// claim makes t's grant the group's: false when another candidate's
// grant got there first. Callers hold t's controller's mutex.
func (g *Group) claim(t *Ticket) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.won >= 0 {
		return g.won == t.gi
	}
	g.won = t.gi
	return true
}

// unclaim gives a claim back after the ledger refused the reservation
// after all; the controllers of the other waiting tickets are returned so
// that the caller pumps them (they skipped it meanwhile).
func (g *Group) unclaim(t *Ticket, wake []*Controller) []*Controller {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.won != t.gi {
		return wake
	}
	g.won = -1
	for _, o := range g.tickets {
		if o != nil && o != t && !slices.Contains(wake, o.c) {
			wake = append(wake, o.c)
		}
	}
	return wake
}

// lost reports whether another candidate granted the group: t only waits
// to be cancelled and must neither be granted nor hold others back.
func (g *Group) lost(t *Ticket) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.won >= 0 && g.won != t.gi
}

// decided records that t left its queue, granted or refused, and returns
// the tickets of the other candidates to cancel (t won). Callers hold t's
// controller's mutex.
func (g *Group) decided(t *Ticket) []*Ticket {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pending--
	if t.state == Granted {
		g.done = true
		close(g.ready)
		var drop []*Ticket
		for _, o := range g.tickets {
			if o != nil && o != t {
				drop = append(drop, o)
			}
		}
		return drop
	}
	g.errs[t.gi] = t.err
	if g.pending == 0 && g.won < 0 && !g.done && !g.placing {
		g.done = true
		close(g.ready)
	}
	return nil
}

// Place asks for admission at now on the first of cands (in preference
// order) whose ledger admits the request at once, and otherwise queues it
// on all of them (see Group). A candidate that can never admit it
// (*TooLarge) or refuses it at once is passed over; when every candidate
// does, Place returns the error of the one whose refusal ends soonest (a
// *Refusal before a *TooLarge). Core API: time is a parameter and it
// never blocks. Each controller's Pump reports the group's tickets it
// decides (after the first Pump, the group's candidate tickets too); Winner
// is the authority on where the request went.
func Place(now time.Time, cands []Candidate) (*Group, error) {
	return place(now, cands, false)
}

func place(now time.Time, cands []Candidate, blocking bool) (*Group, error) {
	g := &Group{tickets: make([]*Ticket, len(cands)), errs: make([]error, len(cands)), won: -1, ready: make(chan struct{}), placing: true}
	for i, cd := range cands {
		c := cd.C
		c.mu.Lock()
		_, err := c.enqueueGroup(now, cd.Req, blocking, g, i)
		c.unlock(now)
		g.mu.Lock()
		if err != nil {
			g.errs[i] = err
		}
		won := g.won >= 0
		g.mu.Unlock()
		if won {
			break // granted here, or by an earlier candidate freeing meanwhile
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.placing = false
	if g.won < 0 && g.pending == 0 && !g.done {
		g.done = true
		close(g.ready)
		return nil, g.errLocked()
	}
	return g, nil
}

// errLocked is the group's refusal: the one ending soonest. Callers hold g.mu.
func (g *Group) errLocked() error {
	var best error
	var bestWait time.Duration
	for _, err := range g.errs {
		var r *Refusal
		switch {
		case err == nil:
		case errors.As(err, &r):
			if _, isRef := best.(*Refusal); !isRef || r.RetryAfter < bestWait {
				best, bestWait = r, r.RetryAfter
			}
		case best == nil:
			best = err
		}
	}
	if best == nil {
		return errors.New("admission: no candidate to place the request on")
	}
	return best
}

// Winner returns the candidate index and ticket that admitted the group,
// or -1 and nil while it waits or after every candidate refused it.
func (g *Group) Winner() (int, *Ticket) {
	if g == nil {
		return -1, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.done || g.won < 0 {
		return -1, nil
	}
	return g.won, g.tickets[g.won]
}

// Err returns the group's refusal once every candidate refused it, or nil.
func (g *Group) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.done || g.won >= 0 {
		return nil
	}
	return g.errLocked()
}

// Cancel takes the group out of every queue, giving back the reservation
// of a candidate that granted it; it reports whether it ended a granted
// ticket.
func (g *Group) Cancel(now time.Time) bool {
	g.mu.Lock()
	ts := slices.Clone(g.tickets)
	g.mu.Unlock()
	granted := false
	for _, t := range ts {
		if t != nil && t.Cancel(now) && t.wasGranted() {
			granted = true
		}
	}
	return granted
}

// AdmitAny is the blocking form of Place, on the wall clock: it returns
// the index of the candidate that admitted the request and its granted
// ticket, or an error as Admit does.
//
// A candidate whose controller shares its ledger with other replicas
// (Options.Shared) then holds the request there too; when the shared
// ledger has no room, the request is placed again (admitAnyShared).
func AdmitAny(ctx context.Context, cands []Candidate) (int, *Ticket, error) {
	for _, c := range cands {
		if c.C.opts.Shared != nil {
			return admitAnyShared(ctx, cands)
		}
	}
	return admitAnyLocal(ctx, cands)
}

// admitAnyLocal is AdmitAny on the controllers' own ledgers.
func admitAnyLocal(ctx context.Context, cands []Candidate) (int, *Ticket, error) {
	if err := ctx.Err(); err != nil {
		return -1, nil, err
	}
	g, err := place(time.Now(), cands, true)
	if err != nil {
		return -1, nil, err
	}
	select {
	case <-g.ready:
	case <-ctx.Done():
		if g.Cancel(time.Now()) {
			return -1, nil, ctx.Err()
		}
		g.mu.Lock()
		done := g.done
		g.mu.Unlock()
		if !done {
			return -1, nil, ctx.Err()
		}
	}
	if i, t := g.Winner(); t != nil {
		return i, t, nil
	}
	return -1, nil, g.Err()
}

// join records a ticket waiting in its candidate's queue. Callers hold
// t's controller's mutex.
func (g *Group) join(t *Ticket) {
	g.mu.Lock()
	g.tickets[t.gi] = t
	g.pending++
	g.mu.Unlock()
}
