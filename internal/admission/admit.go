package admission

import (
	"context"
	"time"
)

// Admit is the blocking form of Enqueue, on the wall clock: it returns a
// granted ticket, or an error: *TooLarge, *Refusal (deadline passed), or
// the context's error when ctx ends first (the request then leaves the
// queue, or gives its fresh reservation back).
//
// No goroutine waits on the caller's behalf: the caller waits on its
// ticket's channel, which is closed by whoever decides it: a Settle, Cancel
// or Adjust that frees room, or the controller's timer, armed for NextWake
// only while some Admit caller waits or a refund of a ticket from Admit is
// held back (Ticket.SettleAfter).
//
// With a shared ledger (Options.Shared) the granted ticket is then held
// across replicas; when the shared ledger has no room it waits again.
func (c *Controller) Admit(ctx context.Context, req Request) (*Ticket, error) {
	if c.opts.Shared != nil {
		return c.admitShared(ctx, req)
	}
	return c.admitLocal(ctx, req)
}

// admitLocal is Admit on the controller's own ledger.
func (c *Controller) admitLocal(ctx context.Context, req Request) (*Ticket, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := time.Now()
	c.mu.Lock()
	t, err := c.enqueue(now, req, true)
	c.unlock(now)
	if err != nil {
		return nil, err
	}
	if sh := c.opts.Shared; sh != nil {
		select {
		case <-t.ready:
		default:
			sh.Waiting()
		}
	}
	select {
	case <-t.ready:
	case <-ctx.Done():
		// Waiting: leave the queue; granted meanwhile: give it back.
		if t.Cancel(time.Now()) {
			return nil, ctx.Err()
		}
		// Refused meanwhile: the refusal stands.
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.state == Refused {
		return nil, t.err
	}
	return t, nil
}

// arm keeps the timer at NextWake while blocking callers wait or refunds
// of their tickets are held back (SettleAfter), and stops it otherwise.
// Callers hold c.mu.
func (c *Controller) arm(now time.Time) {
	if c.blockingWaiting == 0 && c.timedRefunds == 0 {
		if c.timer != nil {
			c.timer.Stop()
			c.timer = nil
		}
		return
	}
	at, ok := c.nextWake(now)
	if !ok {
		return
	}
	d := max(at.Sub(now), 0)
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.onTimer)
		return
	}
	c.timer.Reset(d)
}

// onTimer pumps on the wall clock; the pump re-arms.
func (c *Controller) onTimer() {
	now := time.Now()
	c.mu.Lock()
	defer c.unlock(now)
	c.pump(now)
}
