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
//
// While nothing waits, only held refunds need the timer, and nobody is kept
// waiting by one that lands a little late: a request that comes pumps (and
// so lands every refund due) before it is decided, and Room lands them
// before it reads the ledger. The timer then wakes at the earliest refund's
// refundBy, up to refundSlack after it is due, and lands every refund due
// by then at once; a timer already set between the refund's due time and
// that is left as it is. Under a steady load, where each request's refund
// falls due moments after the previous one's, that is one timer goroutine
// (a thread wake-up) per refundSlack instead of one per request, and no
// timer reset per pump.
func (c *Controller) arm(now time.Time) {
	if c.blockingWaiting == 0 && c.timedRefunds == 0 {
		if c.timer != nil {
			c.timer.Stop()
			c.timer = nil
		}
		c.timerSet = false
		return
	}
	at, ok := c.nextWake(now)
	if !ok {
		return
	}
	if c.blockingWaiting == 0 && c.queued == 0 && len(c.refunds) > 0 {
		by := c.refunds[0].refundBy
		if c.timerSet && !c.timerAt.Before(at) && !c.timerAt.After(by) {
			return
		}
		at = by
	}
	c.timerAt, c.timerSet = at, true
	d := max(at.Sub(now), 0)
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.onTimer)
		return
	}
	c.timer.Reset(d)
}

// refundSlack is at most how late the timer lands a held refund while
// nothing waits (see arm): an eighth of the refund's delay, at most
// maxRefundSlack.
func refundSlack(delay time.Duration) time.Duration {
	return min(delay/8, maxRefundSlack)
}

const maxRefundSlack = 25 * time.Millisecond

// onTimer pumps on the wall clock; the pump re-arms.
func (c *Controller) onTimer() {
	now := time.Now()
	c.mu.Lock()
	defer c.unlock(now)
	c.timerSet = false
	c.pump(now)
}
