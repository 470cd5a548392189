package admission

import (
	"errors"
	"strconv"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
)

// Shadow mode: the gateway forwards every request, and the controller
// grants each one at once, whatever the limits say, so that the ledger,
// the keys' usage and fair order follow the upstream that really receives
// them. Before it grants, it judges the request as Admit would have, and
// says so in a Verdict: admitted, queued (and for how long, by the
// ledger's estimate) or refused (and why).

// Action is what enforce mode would have done with a request.
type Action uint8

const (
	WouldAdmit  Action = iota // granted at once
	WouldQueue                // waited in the fair queue, then granted
	WouldRefuse               // answered 429 (or 400 for too large)
)

func (a Action) String() string {
	switch a {
	case WouldQueue:
		return "queue"
	case WouldRefuse:
		return "refuse"
	}
	return "admit"
}

// Refusal reasons of a Verdict, the values of the would_refuse "reason"
// label.
const (
	ReasonTooLarge = "too_large" // can never fit a bucket or the key's budget
	ReasonBudget   = "budget"    // the key's daily budget is spent
	ReasonDaily    = "daily"     // a daily bucket, or the key's protected share of it, is spent
	ReasonDeadline = "deadline"  // it would have waited past its deadline (queue.max_wait)
)

// Verdict is what Admit would have done with a request at one instant.
type Verdict struct {
	Action Action
	// Wait is, for WouldQueue, how long until it would have fitted (the
	// ledger's estimate: exact when the windows alone make room); for
	// WouldRefuse, how long it would have had to wait.
	Wait time.Duration
	// Reason is a Reason* for WouldRefuse.
	Reason string
	// Bucket names the binding bucket, "" when the binding limit is the
	// key's own (budget, concurrency) or the upstream's in-flight cap.
	Bucket string
}

// Fits reports whether the request would have been admitted at once.
func (v Verdict) Fits() bool { return v.Action == WouldAdmit }

// Shadow grants req at once, holding its cost in the ledger even where it
// does not fit (quota.Ledger.Overdraw: the upstream may admit it, and
// settlement must stay exact) and charging its key as a granted request,
// and returns the ticket with two verdicts: would, for a request of the
// same key and buckets costing enforced (the charge enforce mode would
// have reserved after its max_tokens policy), and fits, for req as it is
// (the charge the upstream sees, which predicts its throttles). The ticket
// ends like any other (Adjust, Settle, SettleAfter, Cancel).
//
// A request judged not to fit is pending until its answer (Confirm, or
// its end): while one is in flight, a throttle of another request may be
// the upstream's admitting the pending one first (Contested).
func (c *Controller) Shadow(now time.Time, req Request, enforced quota.Cost) (t *Ticket, would, fits Verdict) {
	req.Cost = req.Cost.Max(quota.Cost{})
	enforced = enforced.Max(quota.Cost{})
	if req.Deadline.IsZero() {
		req.Deadline = now.Add(c.opts.DefaultMaxWait)
	}
	c.mu.Lock()
	defer c.unlock(now)
	c.pump(now) // day, refunds due
	ks := c.keyFor(req.Key)
	fits = c.judge(now, ks, req)
	would = fits
	if enforced != req.Cost {
		alt := req
		alt.Cost = enforced
		would = c.judge(now, ks, alt)
	}
	tokens := req.tokens()
	t = &Ticket{c: c, k: ks, req: req, state: Granted, enqueued: now, granted: now,
		pendingSeen: c.pendingSeq, contested: c.pending > 0}
	t.res = c.l.Overdraw(now, req.Set, req.Cost)
	if c.opts.Shared != nil {
		// Every replica's mirror counts it too: their verdicts judge the
		// whole account's use, as enforce mode's shared reserve would.
		c.holdSeq++
		h := SharedHold{ID: strconv.FormatUint(c.holdSeq, 36), Key: req.Key, Set: req.Set, Cost: req.Cost, Day: c.day}
		t.shared = &h
		c.opts.Shared.Overdraw(h)
	}
	if !fits.Fits() {
		t.pending = true
		c.pending++
		c.pendingSeq++
		t.pendingSeen = c.pendingSeq // not contested by itself
	}
	c.b.claim(ks.use, tokens, c.day)
	ks.inflight++
	ks.granted++
	c.inflight++
	c.fairGrant(t)
	c.charge(t, tokens)
	return t, would, fits
}

// judge is what Admit would have done with req at now, with nothing
// waiting in the queue (shadow mode queues nothing). Callers hold c.mu.
func (c *Controller) judge(now time.Time, ks *keyState, req Request) Verdict {
	if err := c.tooLarge(now, req); err != nil {
		var tl *TooLarge
		errors.As(err, &tl)
		return Verdict{Action: WouldRefuse, Reason: ReasonTooLarge, Bucket: tl.Bucket}
	}
	tokens := req.tokens()
	if c.spent(ks, tokens) {
		return Verdict{Action: WouldRefuse, Reason: ReasonBudget, Wait: c.untilDayEnd(now)}
	}
	// The longest of the waits that bind, as the queue's head would see
	// them (headWait), with the limit that sets it.
	var v Verdict
	wait := func(w time.Duration, reason, bucket string) {
		if w > v.Wait || v.Action == WouldAdmit {
			v = Verdict{Action: WouldQueue, Wait: w, Reason: reason, Bucket: bucket}
		}
	}
	if err := c.l.Fits(now, req.Set, req.Cost); err != nil {
		le := err.(*quota.LimitError)
		reason := ReasonDeadline
		if le.Kind.Daily() {
			reason = ReasonDaily
		}
		wait(max(le.RetryAfter, time.Nanosecond), reason, le.Bucket)
	}
	if c.overBudget(ks, tokens) {
		// Held by the key's own requests in flight until they settle.
		wait(c.l.HoldEstimate(), ReasonBudget, "")
	}
	if i, r := c.protectedBy(now, ks, req); i >= 0 {
		wait(c.protectionWait(now, i, req.Cost.Tokens+r), ReasonDaily, c.l.Spec(i).Name)
	}
	if c.atConcurrency(ks) || c.opts.MaxInFlight > 0 && c.inflight >= c.opts.MaxInFlight {
		wait(c.l.HoldEstimate(), ReasonDeadline, "")
	}
	if v.Action == WouldAdmit {
		return v
	}
	if left := req.Deadline.Sub(now); v.Wait > left {
		v.Action = WouldRefuse
		return v
	}
	v.Reason = ""
	return v
}

// Confirm ends a shadow ticket's pending state: the upstream admitted the
// request. It does nothing to any other ticket.
func (t *Ticket) Confirm() {
	if t == nil {
		return
	}
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.c.unpend(t)
}

// Contested reports whether, since the shadow ticket t was granted, a
// pending request (forwarded though the mirror judged it would not fit)
// was in flight: the upstream may have admitted that one first, so a
// throttle of t does not show the mirror's capacity too high.
func (t *Ticket) Contested() bool {
	if t == nil {
		return false
	}
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.contested || t.c.pendingSeq != t.pendingSeen
}

// unpend takes t out of the pending count. Callers hold c.mu.
func (c *Controller) unpend(t *Ticket) {
	if t.pending {
		t.pending = false
		c.pending--
	}
}
