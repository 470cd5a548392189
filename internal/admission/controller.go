package admission

import (
	"math/bits"
	"slices"
	"sync"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
)

// Key is a developer key's admission settings.
type Key struct {
	Name string
	// Weight is the key's share relative to other keys (0 means 1).
	Weight float64
	// DailyTokens is the key's budget per day (0: no budget).
	DailyTokens int64
	// MaxConcurrency caps the key's requests in flight (0: unlimited).
	MaxConcurrency int
	// MaxOutputTokens overrides the policy's max_tokens cap (0: policy).
	MaxOutputTokens int
}

func (k Key) weight() float64 {
	if k.Weight > 0 {
		return k.Weight
	}
	return 1
}

// Options tune a Controller. The zero value is the default.
type Options struct {
	// ProtectedFraction of every daily bucket is split between the known
	// keys by weight; no key can consume another's unused part. 0 means
	// 0.5; a negative value turns protection off.
	ProtectedFraction float64
	// MaxInFlight caps requests in flight on the upstream (0: unlimited).
	MaxInFlight int
	// DefaultMaxWait is the deadline of a request that sets none (0: 60 s).
	DefaultMaxWait time.Duration
	// Budgets holds the keys' daily budgets and concurrency caps shared
	// with the controllers of the server's other upstreams (nil: this
	// controller's own).
	Budgets *Budgets
	// Shared is the ledger shared with the gateway's other replicas (nil:
	// none; shared.go).
	Shared Shared
}

func (o Options) withDefaults() Options {
	if o.ProtectedFraction == 0 {
		o.ProtectedFraction = 0.5
	}
	if o.ProtectedFraction < 0 {
		o.ProtectedFraction = 0
	}
	o.ProtectedFraction = min(o.ProtectedFraction, 1)
	if o.DefaultMaxWait <= 0 {
		o.DefaultMaxWait = 60 * time.Second
	}
	if o.Budgets == nil {
		o.Budgets = newPrivateBudgets()
	}
	return o
}

// Request is one request asking for admission.
type Request struct {
	Key Key
	// Set is the buckets the request draws from (the gateway matches scopes).
	Set quota.Set
	// Cost is the admission charge as each bucket counts it: the profile's
	// reservation (quota.Tokens) on the runtime endpoint; input +
	// max_tokens in Cost.Input, and no output, on Mantle. Its total is what
	// the request charges its key (fair order, daily budget).
	Cost quota.Cost
	// Deadline is the latest time to admit it; zero means now+DefaultMaxWait;
	// a deadline at or before now means "do not wait".
	Deadline time.Time
}

// tokens is what the request charges its key at admission.
func (r Request) tokens() int64 { return r.Cost.Total() }

// Controller admits requests to one upstream's ledger. It is safe for
// concurrent use.
type Controller struct {
	mu    sync.Mutex
	l     *quota.Ledger
	kinds []quota.Kind // of each bucket of l
	opts  Options
	b     *Budgets // opts.Budgets
	daily quota.Set

	keys        map[string]*keyState
	totalWeight float64 // of every known key
	waiting     []*keyState
	queued      int
	inflight    int
	vtime       float64 // virtual time: see fair.go
	ratio       float64 // recent cost / reservation of every key
	learned     bool    // ratio has been measured
	day         string  // label of the day per-key usage counts
	dayStart    time.Time
	dayEnd      time.Time
	pumpGen     uint64
	nextOrder   uint64
	holdSeq     uint64 // shared holds named so far

	decided []*Ticket // core tickets decided since the last Pump
	refunds refunds   // ledger refunds held back by SettleAfter
	// toConsume is, per bucket, what the held-back refunds will count as
	// consumed when they land: part of the ledger's holds until then.
	toConsume []int64
	// wake is the other controllers to pump once c.mu is released: a key's
	// request ended here, and their waiting requests wait for its limits.
	wake []*Controller
	// drop is the tickets to cancel once c.mu is released: the other
	// candidates of a Group granted here.
	drop []*Ticket

	// Blocking wrapper only: the timer exists while Admit callers wait or
	// refunds of their tickets are held back.
	blockingWaiting int
	timedRefunds    int
	timer           *time.Timer
	timerAt         time.Time // when the timer fires, while timerSet
	timerSet        bool

	// Shadow mode: tickets granted but not yet held in the ledger, and
	// how many ever were (shadow.go).
	pending    int
	pendingSeq uint64
}

// keyState is one key's queue and usage.
type keyState struct {
	key        Key
	registered bool
	order      uint64 // tie-break between equal tags: first seen first
	queue      []*Ticket
	inflight   int     // requests in flight here (the key's, everywhere: use)
	done       float64 // fair order: ended requests' costs / weight (fair.go)
	held       float64 // fair order: charges in flight / weight
	measured   float64 // fair order: the part of held from measured ratios
	ratio      float64 // fair order: recent cost / reservation
	learned    bool    // ratio has been measured
	stuck      uint64  // pumpGen in which its head could not go

	live    []int64 // per bucket: tokens held by live tickets
	today   []int64 // per bucket: tokens charged today (daily buckets)
	granted int64   // requests granted today
	use     *keyUse // in c.b: the budget and in-flight count, all upstreams
}

// New returns a controller over l. Every per-day bucket of l takes part in
// daily protection.
func New(l *quota.Ledger, opts Options) *Controller {
	opts = opts.withDefaults()
	kinds := make([]quota.Kind, l.Len())
	for i := range kinds {
		kinds[i] = l.Spec(i).Kind
	}
	return &Controller{
		l:         l,
		kinds:     kinds,
		opts:      opts,
		b:         opts.Budgets,
		daily:     l.OfKind(quota.TokensPerDay),
		keys:      map[string]*keyState{},
		toConsume: make([]int64, l.Len()),
	}
}

// Ledger returns the ledger the controller admits to.
func (c *Controller) Ledger() *quota.Ledger { return c.l }

// SetKeys declares every key that exists (call at start and whenever keys
// change): daily protection splits each bucket between all of them, not
// only those that sent something today. A key missing from keys stops
// counting once it has nothing queued or in flight; a key that was never
// declared counts from its first request until the day ends.
func (c *Controller) SetKeys(keys []Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	for _, k := range keys {
		seen[k.Name] = true
		c.keyFor(k).registered = true
	}
	for name, ks := range c.keys {
		if !seen[name] {
			ks.registered = false
			c.forgetIfIdle(ks)
		}
	}
}

// keyFor returns the state of k, creating it or refreshing its settings.
// Callers hold c.mu.
func (c *Controller) keyFor(k Key) *keyState {
	ks := c.keys[k.Name]
	if ks == nil {
		n := c.l.Len()
		ks = &keyState{key: k, order: c.nextOrder, live: make([]int64, n), today: make([]int64, n), done: c.vtime, use: c.b.join(k.Name)}
		c.nextOrder++
		c.keys[k.Name] = ks
		c.totalWeight += k.weight()
		return ks
	}
	c.totalWeight += k.weight() - ks.key.weight()
	ks.key = k
	return ks
}

func (c *Controller) forgetIfIdle(ks *keyState) {
	if ks.registered || len(ks.queue) > 0 || ks.inflight > 0 {
		return
	}
	delete(c.keys, ks.key.Name)
	c.totalWeight -= ks.key.weight()
	c.b.leave(ks.use)
}

// rollDay starts a new day of per-key usage when the ledger's day changed.
// Per-key usage counts per Ledger.Day (from the reset hour) even when the
// ledger's day buckets are Rolling.
func (c *Controller) rollDay(now time.Time) {
	if now.Before(c.dayEnd) && (!now.Before(c.dayStart) || c.day != "") {
		return // today, or a late caller's reading from just before midnight
	}
	c.dayStart, c.dayEnd = c.l.DayWindow(now)
	c.day = c.l.Day(now)
	c.wake = c.b.roll(c.wake, c.day, c)
	for _, ks := range c.keys {
		clear(ks.today)
		ks.granted = 0
		c.forgetIfIdle(ks)
	}
}

// Enqueue asks for admission at now. A request that can never fit returns
// *TooLarge; one whose key's budget is already spent, or that may not wait
// and does not fit, returns *Refusal. Otherwise the ticket is Granted (it
// fitted at once) or Waiting: Pump grants or refuses it later.
func (c *Controller) Enqueue(now time.Time, req Request) (*Ticket, error) {
	c.mu.Lock()
	defer c.unlock(now)
	t, err := c.enqueue(now, req, false)
	if err != nil {
		return nil, err
	}
	t.core = true
	return t, nil
}

// enqueue queues req and pumps. Callers hold c.mu.
func (c *Controller) enqueue(now time.Time, req Request, blocking bool) (*Ticket, error) {
	return c.enqueueGroup(now, req, blocking, nil, 0)
}

// enqueueGroup is enqueue for candidate gi of grp (nil: no group). Callers
// hold c.mu.
func (c *Controller) enqueueGroup(now time.Time, req Request, blocking bool, grp *Group, gi int) (*Ticket, error) {
	req.Cost = req.Cost.Max(quota.Cost{})
	if err := c.tooLarge(now, req); err != nil {
		return nil, err
	}
	if req.Deadline.IsZero() {
		req.Deadline = now.Add(c.opts.DefaultMaxWait)
	}
	if req.Deadline.Before(now) {
		// "Do not wait" (the caller read its clock a moment earlier): it
		// is still admitted if it fits now, not refused unseen.
		req.Deadline = now
	}
	c.rollDay(now)
	ks := c.keyFor(req.Key)
	if c.spent(ks, req.tokens()) {
		// Spent by settled charges: nothing coming back can make room today.
		t := &Ticket{c: c, k: ks, req: req}
		return nil, c.refusal(now, t)
	}
	t := &Ticket{c: c, k: ks, req: req, state: Waiting, enqueued: now, grp: grp, gi: gi}
	if grp != nil {
		t.core = !blocking
		grp.join(t)
	}
	if blocking {
		t.ready = make(chan struct{})
	}
	if len(ks.queue) == 0 {
		c.join(ks)
		c.waiting = append(c.waiting, ks)
	}
	ks.queue = append(ks.queue, t)
	c.queued++
	if blocking {
		c.blockingWaiting++
	}
	c.pump(now) // refuses it at once if hopeless
	if t.state == Refused {
		return nil, t.err
	}
	return t, nil
}

// tooLarge reports a request that can never fit.
func (c *Controller) tooLarge(now time.Time, req Request) error {
	if b := req.Key.DailyTokens; b > 0 && req.tokens() > b {
		return &TooLarge{Budget: true, Capacity: b, Cost: req.tokens(),
			Hint: "lower max_tokens (the reservation grows with it) or raise the key's daily budget (headroom keys create --daily-tokens)"}
	}
	if _, never := c.l.Wait(now, req.Set, req.Cost); !never {
		return nil
	}
	var le *quota.LimitError
	if err := c.l.Fits(now, req.Set, req.Cost); err != nil {
		le = err.(*quota.LimitError)
	}
	if le == nil || !le.Never {
		return nil
	}
	if le.Share > 1 {
		return shareTooSmall(le)
	}
	hint := "lower max_tokens (the reservation is input + max_tokens × the model's burndown rate), or set a smaller cap for the key (--max-output-tokens), or ask AWS for a higher quota"
	if le.Limit == 0 {
		hint = "its limit is 0, which is what a new AWS account's applied quota can be: ask AWS Support to check the effective quota for this model, with a request ID"
	}
	if le.Kind == quota.RequestsPerMinute {
		hint = "the requests-per-minute limit is 0: raise it in the configuration or ask AWS Support"
	}
	if le.Kind == quota.InputTokensPerMinute && le.Limit > 0 {
		hint = "lower max_tokens (Mantle reserves input + max_tokens against the input-tokens-per-minute quota), or set a smaller cap for the key (--max-output-tokens), or ask AWS for a higher quota"
	}
	return &TooLarge{Bucket: le.Bucket, Kind: le.Kind, Capacity: le.Limit, Cost: le.Need, Hint: hint}
}

// Pump settles the ledger refunds held back by SettleAfter that are due,
// grants the waiting tickets that fit at now, in fair order, and refuses
// those whose deadline has passed or that a daily limit keeps out past it.
// It returns every ticket from Enqueue that was decided (granted or
// refused) since the previous Pump, including by Settle, Cancel and
// Adjust, which pump too (and pump the other controllers sharing
// Options.Budgets that wait for the ending request's key).
func (c *Controller) Pump(now time.Time) []*Ticket {
	c.mu.Lock()
	defer c.unlock(now)
	c.pump(now)
	out := c.decided
	c.decided = nil
	return out
}

// pump is Pump without collecting. Callers hold c.mu.
func (c *Controller) pump(now time.Time) {
	c.rollDay(now)
	c.refundDue(now)
	c.expire(now, false)
	c.grant(now)
	c.refuseHopeless(now) // none could be granted: hopeless means it does not fit
	c.expire(now, true)
	if c.blockingWaiting > 0 || c.timedRefunds > 0 || c.timer != nil {
		c.arm(now)
	}
}

// grant admits heads in fair order while they fit.
func (c *Controller) grant(now time.Time) {
	c.pumpGen++
	var blocked quota.Set
	for {
		if c.opts.MaxInFlight > 0 && c.inflight >= c.opts.MaxInFlight {
			return
		}
		var best *keyState
		for _, ks := range c.waiting {
			if ks.stuck == c.pumpGen {
				continue
			}
			if best == nil || ks.tag() < best.tag() || ks.tag() == best.tag() && ks.order < best.order {
				best = ks
			}
		}
		if best == nil {
			return
		}
		t := best.queue[0]
		if !c.tryGrant(now, t, &blocked) {
			best.stuck = c.pumpGen
		}
	}
}

// tryGrant reserves for t, the head of its key's queue, if every rule
// allows. Buckets found short are added to blocked: later (less fair) heads
// drawing from them wait behind t.
func (c *Controller) tryGrant(now time.Time, t *Ticket, blocked *quota.Set) bool {
	ks := t.k
	if t.grp != nil && t.grp.lost(t) {
		return false // granted by another candidate: about to be cancelled
	}
	if !c.b.allows(ks.use, &ks.key, t.req.tokens(), c) { // concurrency and budget, every upstream
		return false
	}
	if t.req.Set&*blocked != 0 {
		return false
	}
	if i, _ := c.protectedBy(now, ks, t.req); i >= 0 {
		return false
	}
	if short := c.l.Short(now, t.req.Set, t.req.Cost); short != 0 {
		// Hold the others back only if t can still make its deadline:
		// otherwise it would block them for nothing (bounded bypass).
		if w, never := c.l.Wait(now, t.req.Set, t.req.Cost); !never && !now.Add(w).After(t.req.Deadline) {
			*blocked |= short
		}
		return false
	}
	if t.grp != nil && !t.grp.claim(t) {
		return false
	}
	res, err := c.l.Reserve(now, t.req.Set, t.req.Cost)
	if err != nil { // someone else used the ledger in between
		*blocked |= t.req.Set
		c.unclaim(t)
		return false
	}
	if !c.b.take(ks.use, &ks.key, t.req.tokens(), c.day, c) { // another upstream took the key's room in between
		res.Cancel(now)
		c.unclaim(t)
		return false
	}
	c.unqueue(t)
	t.state, t.res, t.granted = Granted, res, now
	ks.inflight++
	ks.granted++
	c.inflight++
	c.fairGrant(t)
	c.charge(t, t.req.tokens()) // take counted it in the budget
	c.decide(t)
	return true
}

// unqueue removes a waiting ticket from its key's queue.
func (c *Controller) unqueue(t *Ticket) {
	ks := t.k
	if i := slices.Index(ks.queue, t); i >= 0 {
		ks.queue = slices.Delete(ks.queue, i, i+1)
	}
	if len(ks.queue) == 0 {
		if i := slices.Index(c.waiting, ks); i >= 0 {
			c.waiting = slices.Delete(c.waiting, i, i+1)
		}
	}
	c.queued--
	if t.ready != nil {
		c.blockingWaiting--
	}
}

// decide records a ticket that left the queue, granted or refused.
func (c *Controller) decide(t *Ticket) {
	if t.grp != nil {
		c.drop = append(c.drop, t.grp.decided(t)...)
	}
	if t.core {
		c.decided = append(c.decided, t)
	}
	if t.ready != nil {
		close(t.ready)
	}
}

// expire refuses waiting tickets past their deadline (at it, with atOrAfter).
func (c *Controller) expire(now time.Time, atOrAfter bool) {
	late := func(t *Ticket) bool {
		return now.After(t.req.Deadline) || atOrAfter && now.Equal(t.req.Deadline)
	}
	// Most pumps refuse nothing: look first, with a call the compiler
	// inlines (a pump under load walks every queued ticket three times).
	for _, ks := range c.waiting {
		for _, t := range ks.queue {
			if late(t) {
				c.refuseWhere(now, late)
				return
			}
		}
	}
}

// refuseWhere refuses the waiting tickets for which out is true.
func (c *Controller) refuseWhere(now time.Time, out func(*Ticket) bool) {
	for i := 0; i < len(c.waiting); {
		ks := c.waiting[i]
		var gone []*Ticket
		for _, t := range ks.queue {
			if out(t) {
				gone = append(gone, t)
			}
		}
		for _, t := range gone {
			// A hopeless ticket is refused now rather than at its
			// deadline; the refusal says Daily only if settled usage spent
			// the limit (refusal), else the client comes back within
			// MaxRetryAfter and is told the same.
			r := c.refusal(now, t)
			t.err = r
			c.unqueue(t)
			t.state = Refused
			c.decide(t)
		}
		if i < len(c.waiting) && c.waiting[i] == ks {
			i++
		}
	}
}

// charge moves t's charge in the key's usage to tokens: live per bucket,
// and today's usage (only the part charged today can be given back today).
// It returns the change to today's usage, which the caller books in the
// key's budget (c.b), in t.day.
func (c *Controller) charge(t *Ticket, tokens int64) int64 {
	ks := t.k
	d := tokens - t.charged
	for m := t.req.Set; m != 0; m &= m - 1 {
		i := lowBit(m)
		ks.live[i] += d
	}
	if t.day != c.day {
		t.day, t.dayIn = c.day, 0
	}
	dd := d
	if dd < 0 {
		dd = -min(-dd, t.dayIn)
	}
	t.dayIn += dd
	for m := t.req.Set & c.daily; m != 0; m &= m - 1 {
		ks.today[lowBit(m)] += dd
	}
	t.charged = tokens
	return dd
}

// release ends t's hold in the key's usage after its final charge, whose
// change to today's usage was dd: the key's other requests waiting in
// other controllers are pumped once c.mu is released.
func (c *Controller) release(t *Ticket, dd int64) {
	ks := t.k
	for m := t.req.Set; m != 0; m &= m - 1 {
		ks.live[lowBit(m)] -= t.charged
	}
	c.wake = c.b.end(c.wake, ks.use, t.day, dd, t.dayIn, c)
	ks.inflight--
	c.inflight--
}

// spent reports whether the key's settled charges today, in every
// upstream, leave no room for tokens: nothing coming back can make room
// before the day ends.
func (c *Controller) spent(ks *keyState, tokens int64) bool {
	b := ks.key.DailyTokens
	if b <= 0 {
		return false
	}
	total, held, _ := c.b.usage(ks.use)
	return total-held+tokens > b
}

// overBudget reports whether tokens more would exceed the key's budget
// now, holds in flight included.
func (c *Controller) overBudget(ks *keyState, tokens int64) bool {
	b := ks.key.DailyTokens
	if b <= 0 {
		return false
	}
	total, _, _ := c.b.usage(ks.use)
	return total+tokens > b
}

// atConcurrency reports whether the key has as many requests in flight, in
// every upstream, as its cap allows.
func (c *Controller) atConcurrency(ks *keyState) bool {
	m := ks.key.MaxConcurrency
	if m <= 0 {
		return false
	}
	_, _, n := c.b.usage(ks.use)
	return n >= m
}

// unlock releases c.mu, then pumps at now the other controllers that a
// request ending here (or a new day) may let a waiting request in: after,
// never under, c.mu, so no one holds two controllers' locks.
func (c *Controller) unlock(now time.Time) {
	if len(c.wake) != 0 || len(c.drop) != 0 {
		c.unlockWake(now)
		return
	}
	c.mu.Unlock()
}

func (c *Controller) unlockWake(now time.Time) {
	wake, drop := c.wake, c.drop
	c.wake, c.drop = nil, nil
	c.mu.Unlock()
	for _, t := range drop {
		t.Cancel(now)
	}
	for _, o := range wake {
		o.poke(now)
	}
}

// unclaim gives back t's claim on its group; callers hold c.mu.
func (c *Controller) unclaim(t *Ticket) {
	if t.grp != nil {
		c.wake = t.grp.unclaim(t, c.wake)
	}
}

// poke pumps c at now for another controller (Budgets): Pump for core
// tickets collects what it decided.
func (c *Controller) poke(now time.Time) {
	c.mu.Lock()
	defer c.unlock(now)
	c.pump(now)
}

func lowBit(s quota.Set) int { return bits.TrailingZeros64(uint64(s)) }
