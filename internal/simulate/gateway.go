package simulate

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/quota"
)

// gatewayDoor is Headroom in front of the shared account: the gateway's
// own policy (admission.Clamp), ledger (quota.Ledger) and fair queue
// (admission.Controller), driven on the simulation's clock, forwarding
// admitted calls to the emulated Bedrock account.
type gatewayDoor struct {
	bedrock *emulator.Account
	ledger  *quota.Ledger
	ctl     *admission.Controller
	policy  capPolicy
	keys    []admission.Key
	sets    map[*modelInfo]quota.Set
	maxWait time.Duration
	// waiting maps the controller's undecided tickets to their calls.
	waiting map[*admission.Ticket]*call
	// wakeAt is the pending evWake's time, or -1.
	wakeAt int64
}

func newGatewayDoor(w *world) (frontDoor, error) {
	sc := w.sc
	acct, err := newBedrock(sc, w.base)
	if err != nil {
		return nil, err
	}
	specs := make([]quota.BucketSpec, len(sc.Buckets))
	for i, b := range sc.Buckets {
		k, err := quota.ParseKind(b.Kind)
		if err != nil {
			return nil, err
		}
		specs[i] = quota.BucketSpec{Name: b.Name, Kind: k, Limit: b.Limit}
	}
	win, err := quota.ParseWindows(sc.Windows.Minute, sc.Windows.Day, sc.Windows.DayResetHourUTC)
	if err != nil {
		return nil, err
	}
	ledger := quota.NewLedger(specs, win, w.base)
	pf := sc.Headroom.ProtectedFraction
	if pf == 0 {
		pf = -1 // admission.Options: 0 means the default, negative means off
	}
	d := &gatewayDoor{
		bedrock: acct,
		ledger:  ledger,
		ctl:     admission.New(ledger, admission.Options{ProtectedFraction: pf}),
		sets:    map[*modelInfo]quota.Set{},
		maxWait: seconds(sc.Headroom.MaxWaitSeconds),
		waiting: map[*admission.Ticket]*call{},
		wakeAt:  -1,
	}
	if d.policy, err = newCapPolicy(w.st, sc); err != nil {
		return nil, err
	}
	for _, dev := range w.devs {
		d.keys = append(d.keys, admission.Key{Name: dev.name, Weight: dev.weight})
		for _, m := range []*modelInfo{dev.main, dev.small} {
			var set quota.Set
			for _, i := range m.buckets {
				set |= quota.Bit(i)
			}
			d.sets[m] = set
		}
	}
	d.ctl.SetKeys(d.keys)
	return d, nil
}

// send is a call reaching the gateway: the policy chooses max_tokens and
// the thinking budget, then the call queues for its admission charge.
func (d *gatewayDoor) send(w *world, c *call) {
	maxTokens, budget := c.clientAsk(w.st)
	req := bedrock.Request{MaxTokens: maxTokens, HasMaxTokens: w.st.ClientMaxTokens != 0}
	switch {
	case c.plan.kind == kindBackground:
	case c.dev.w.AdaptiveThinking:
		req.Thinking = bedrock.ThinkingAdaptive
	default:
		req.Thinking, req.ThinkingBudget = bedrock.ThinkingEnabled, budget
	}
	key := d.keys[c.dev.idx]
	now := w.wall(w.now)
	set := d.sets[c.m]
	cost := func(mt int) int64 {
		dm := c.demand()
		dm.MaxTokens = mt
		return w.profile.Admission(dm, c.m.burndown)
	}
	mt, bt, escalated := d.policy.decide(now, capAsk{key: key, model: c.m, req: req, cost: cost,
		room:    func() admission.Room { return d.ctl.Room(now, key, set) },
		answers: c.answers, recovery: c.recovery > 0, session: c.session()})
	if escalated {
		w.stats.escalated++
	}
	c.generateAt(mt, bt)
	deadline := w.wall(c.queuedAt).Add(d.maxWait)
	tokens := w.profile.Admission(c.demand(), c.m.burndown)
	t, err := d.ctl.Enqueue(now, admission.Request{Key: key, Set: set, Cost: quota.Tokens(tokens), Deadline: deadline})
	if err != nil {
		d.refused(w, c, err)
		d.pump(w)
		return
	}
	c.ticket = t
	c.gwAttempt = 0
	if t.State() == admission.Granted {
		// It fitted at once; Pump reports only later decisions.
		d.forward(w, c, t)
	} else {
		d.waiting[t] = c
	}
	d.pump(w)
}

// refused answers a call the controller will not admit.
func (d *gatewayDoor) refused(w *world, c *call, err error) {
	var r *admission.Refusal
	var tl *admission.TooLarge
	switch {
	case errors.As(err, &r):
		// 429 with Retry-After in whole seconds, rounded up, and at most
		// 60 s unless a daily bucket is spent (issue 10 section 2: Claude
		// Code gives up on more); a spent daily bucket adds
		// x-should-retry: false.
		ra := (r.RetryAfter + time.Second - 1).Truncate(time.Second)
		if !r.Daily {
			ra = min(ra, maxRetryAfter)
		}
		w.refuse(c, max(ra, time.Second), r.Daily, true)
	case errors.As(err, &tl):
		// ValidationException: no client retries a 400.
		w.stats.rejected++
		w.refuse(c, 0, true, true)
	default:
		w.abort(fmt.Errorf("gateway: %w", err))
	}
}

// pump collects the controller's decisions and schedules its next wake.
func (d *gatewayDoor) pump(w *world) {
	now := w.wall(w.now)
	// Forwarding a call can decide others (a throttled call's Cancel lets
	// waiting ones in), so collect until nothing new was decided.
	for decided := d.ctl.Pump(now); len(decided) > 0; decided = d.ctl.Pump(now) {
		for _, t := range decided {
			c, ok := d.waiting[t]
			if !ok {
				continue
			}
			delete(d.waiting, t)
			switch t.State() {
			case admission.Granted:
				d.forward(w, c, t)
			case admission.Refused:
				c.ticket = nil
				d.refused(w, c, t.Err())
			}
		}
	}
	at, ok := d.ctl.NextWake(now)
	if !ok {
		return
	}
	next := max(at.Sub(w.base).Nanoseconds(), w.now+int64(time.Millisecond))
	if d.wakeAt >= w.now && d.wakeAt <= next {
		return
	}
	d.wakeAt = next
	w.at(next-w.now, event{kind: evWake})
}

// forward sends a granted call to Bedrock. Should Bedrock throttle it
// anyway (the mirror is off), the gateway lowers the bucket's effective
// capacity and queues the call again while its deadline allows, as
// `headroom serve` does before any byte reached the client.
func (d *gatewayDoor) forward(w *world, c *call, t *admission.Ticket) {
	te, err := admit(w, d.bedrock, c)
	if err != nil {
		t.Cancel(w.wall(w.now))
		w.abort(err)
		return
	}
	if te == nil {
		w.answer(c, c.reserved)
		return
	}
	w.stats.upstream429++
	now := w.wall(w.now)
	// Lower the effective capacity of the buckets of the kind that refused,
	// give the reservation back and queue again after a pause, as long as
	// the attempts and the deadline allow; else pass Bedrock's 429 on.
	if k, err := quota.ParseKind(te.Kind); err == nil {
		d.ledger.Throttled(now, t.Request().Set&d.ledger.OfKind(k))
	}
	t.Cancel(now)
	c.ticket = nil
	c.gwAttempt++
	delay := gatewayBackoff(c.gwAttempt, c.dev.jitter)
	if c.gwAttempt >= gatewayMaxAttempts || now.Add(delay).After(t.Request().Deadline) {
		w.refuse(c, 0, false, false)
		return
	}
	c.retryReq = t.Request()
	w.at(int64(delay), event{kind: evWake, call: c}) // a wake with a call requeues it

}

// The gateway's handling of an upstream throttle, as internal/gateway's
// send.go does it: at most gatewayMaxAttempts attempts, 100 ms doubling up
// to 2 s between them, jittered to between half and all of that.
const gatewayMaxAttempts = 6

func gatewayBackoff(attempt int, r *rand.Rand) time.Duration {
	d := min(100*time.Millisecond<<(attempt-1), 2*time.Second)
	return d/2 + time.Duration(r.Int64N(int64(d/2)+1))
}

// gatewaySettleDelay is how long the gateway holds a refund before its
// ledger gives it to others (gateway.DefaultSettleDelay): Bedrock settles
// only after the last byte, so an immediate refund could admit a request
// Bedrock would still throttle. Fair order takes the cost at once
// (admission.Ticket.SettleAfter).
const gatewaySettleDelay = 200 * time.Millisecond

// requeue queues a call Bedrock throttled, with its original deadline.
func (d *gatewayDoor) requeue(w *world, c *call) {
	nt, err := d.ctl.Enqueue(w.wall(w.now), c.retryReq)
	if err != nil {
		d.refused(w, c, err)
		return
	}
	c.ticket = nt
	if nt.State() == admission.Granted {
		d.forward(w, c, nt)
		return
	}
	d.waiting[nt] = c
}

// done settles the call at Bedrock, then its ticket with the same charge,
// as the gateway does: fair order and the key's usage at once, the
// ledger's refund after the settle delay (an extra charge lands at once).
// The controller holds the refund back and NextWake brings the wake that
// settles it.
func (d *gatewayDoor) done(w *world, c *call) {
	now := w.wall(w.now)
	cost := c.upstream.Settle(now, c.usage())
	c.upstream = nil
	o := capOutcome{model: c.m, key: c.dev.name, session: c.session(), output: c.thinkingOut + c.textOut,
		applied: c.maxTokens, asked: c.asked, cut: c.truncated}
	if c.plan.tool > 0 {
		o.toolUse = c.id
	}
	d.policy.observe(now, o)
	c.ticket.SettleAfter(now, quota.Tokens(cost), gatewaySettleDelay)
	c.ticket = nil
	d.pump(w)
}

func (d *gatewayDoor) wake(w *world, c *call) {
	if c != nil { // the only wake with a call: Bedrock throttled it
		d.requeue(w, c)
		d.pump(w)
		return
	}
	if w.now != d.wakeAt {
		return // superseded by an earlier wake
	}
	d.wakeAt = -1
	d.pump(w)
}
