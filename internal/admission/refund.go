package admission

import (
	"container/heap"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
)

// Refunds held back by SettleAfter wait in a heap by due time; every pump
// settles the ones due, and NextWake reports the earliest, so the
// simulator's virtual clock and the blocking form's timer both reach it.

// refunds is a min-heap of ended tickets by refundAt.
type refunds []*Ticket

func (h refunds) Len() int           { return len(h) }
func (h refunds) Less(i, j int) bool { return h[i].refundAt.Before(h[j].refundAt) }
func (h refunds) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *refunds) Push(x any)        { *h = append(*h, x.(*Ticket)) }
func (h *refunds) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}

// holdRefund schedules the ledger settlement of the ended ticket t at at
// (it ended at now). Callers hold c.mu.
func (c *Controller) holdRefund(t *Ticket, now, at time.Time, cost quota.Cost) {
	t.refundAt, t.refundBy, t.refundCost = at, at.Add(refundSlack(at.Sub(now))), cost
	heap.Push(&c.refunds, t)
	c.willConsume(t, cost.Sub(t.consumed))
	if !t.core {
		c.timedRefunds++
	}
}

// refundDue settles in the ledger every held refund due at now, each at
// its due time (the ledger never runs its clock backwards, so a late pump
// settles at the latest time the ledger has seen). Callers hold c.mu.
func (c *Controller) refundDue(now time.Time) {
	for len(c.refunds) > 0 && !c.refunds[0].refundAt.After(now) {
		t := heap.Pop(&c.refunds).(*Ticket)
		t.res.Settle(t.refundAt, t.refundCost)
		c.willConsume(t, t.consumed.Sub(t.refundCost))
		if !t.core {
			c.timedRefunds--
		}
	}
}

// nextRefund is when the earliest held refund is due.
func (c *Controller) nextRefund() (time.Time, bool) {
	if len(c.refunds) == 0 {
		return time.Time{}, false
	}
	return c.refunds[0].refundAt, true
}

// willConsume adds d to what held-back refunds will consume in t's token
// buckets, each the part of d it counts.
func (c *Controller) willConsume(t *Ticket, d quota.Cost) {
	for m := t.req.Set; m != 0; m &= m - 1 {
		if i := lowBit(m); c.kinds[i] != quota.RequestsPerMinute {
			c.toConsume[i] += d.Of(c.kinds[i])
		}
	}
}
