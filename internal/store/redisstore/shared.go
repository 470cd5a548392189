package redisstore

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/quota"
)

var _ admission.Shared = (*Shared)(nil)

// SharedOptions configure a Shared.
type SharedOptions struct {
	LedgerOptions
	// Poll is how often the shared state is read while requests wait
	// here (0: 50 ms); Beat how often otherwise (0: 1 s, under the lease).
	Poll, Beat time.Duration
	// Timeout bounds each call to Redis (0: 1 s); a call that fails marks
	// the ledger unreachable until a beat succeeds.
	Timeout time.Duration
	Log     *slog.Logger
	// LocalShare carries on while Redis does not answer, admitting
	// against 1/N of every bucket (localshare.go), N the larger of
	// Replicas and the live replicas Redis last reported; false refuses.
	LocalShare bool
	Replicas   int
	// Keys keeps the keys' daily budgets conservative while alone; one
	// per process (nil: a key's budget is then only this replica's).
	Keys *KeyShares
}

// Shared is one upstream's ledger shared by replicas, as an admission
// controller uses it (admission.Shared): the reserve on the request path,
// everything else (adjustments, settlements, throttles, beats, and the
// re-publishing after Redis lost the ledger) on its own goroutine (Run).
//
// While Redis cannot be reached, reserves are refused at once with
// *admission.Unavailable (the gateway answers 503): the replicas cannot
// know what the others admit, and the account's quota is what Headroom
// protects. Requests already admitted run on; their settlements wait in
// order and are sent when Redis answers again, so nothing settled is
// lost. If Redis came back empty, the replica first re-publishes what it
// holds and what it consumed today (Restore).
type Shared struct {
	l     *Ledger
	local *quota.Ledger
	opts  SharedOptions
	log   *slog.Logger
	kick  chan struct{}

	mu      sync.Mutex
	ctl     *admission.Controller
	changed chan struct{}
	gen     string
	restore bool // Redis lost the ledger: re-publish before anything else
	down    error
	busyAt  time.Time // last busy refusal: poll fast for a while
	beatAt  time.Time // last beat sent
	beatNow bool      // a request started to wait, or was refused busy: beat at once
	// stepAt is when Run steps next by itself (zero: it is stepping, or
	// has not started). An operation queued for later than that needs no
	// wake: a wake per settlement cost the request two scheduler switches
	// and a step that sent nothing (an operation waits carryFor for a
	// reserve to carry it).
	stepAt  time.Time
	ops     []sharedOp
	live    map[string]admission.SharedHold // by Redis ID
	day     string
	dayUsed map[int]int64    // own consumption of each day bucket, day
	keyUsed map[string]int64 // own charge of each key, day
	minute  minutes

	// carrying: a call in flight carries operations (a reserve's Before,
	// a batch); no other call takes any meanwhile, so that they reach
	// Redis in order (a shadow hold is made before it is settled).
	carrying bool

	// The local share (localshare.go).
	replicas  int       // live replicas at the last reply
	alone     int       // N while admitting against 1/N locally, else 0
	downAt    time.Time // when Redis stopped answering
	localLive map[string]admission.SharedHold
	published map[string]string // holds admitted alone and published: Redis ID by local ID
	pending   []int64           // per bucket: held by reserves sent to Redis and not yet answered
	out       outage
	absorbs   []absorbOp
	absorbSeq uint64
}

// lastMinute is what this replica consumed in one minute bucket in the
// last 60 s, by the second: an upper bound of its share of what a refill
// or clock minute still counts (a minute window never counts consumption
// older than its drain or its reset, unless settlements overran it).
type lastMinute struct {
	n  [60]int64
	at [60]int64 // the Unix second slot i counts
}

func (m *lastMinute) add(now time.Time, n int64) {
	sec := now.Unix()
	i := sec % 60
	if m.at[i] != sec {
		m.at[i], m.n[i] = sec, 0
	}
	m.n[i] += n
}

func (m *lastMinute) sum(now time.Time) int64 {
	var t int64
	for i, at := range m.at {
		if at > now.Unix()-60 {
			t += m.n[i]
		}
	}
	return t
}

// minutes holds a lastMinute per minute bucket (by index).
type minutes map[int]*lastMinute

// add counts n (if positive) now in bucket i.
func (ms minutes) add(now time.Time, i int, n int64) {
	if n <= 0 {
		return
	}
	m := ms[i]
	if m == nil {
		m = &lastMinute{}
		ms[i] = m
	}
	m.add(now, n)
}

// consumed records n consumed now in bucket i, for re-publishing. Callers
// hold s.mu.
func (s *Shared) consumed(now time.Time, i int, n int64) {
	if s.local.Spec(i).Kind != quota.TokensPerDay {
		s.minute.add(now, i, n)
	}
}

// sharedOp is an Op waiting to be sent: due then or later, in a call on
// day (a throttle goes on any).
type sharedOp struct {
	Op
	due time.Time
	day string
}

// NewShared returns the shared ledger of the upstream whose local mirror
// is local (its buckets, in order, are the shared ledger's). Run must be
// started for it to settle, beat and recover.
func NewShared(l *Ledger, local *quota.Ledger, opts SharedOptions) *Shared {
	if opts.Poll <= 0 {
		opts.Poll = 50 * time.Millisecond
	}
	if opts.Beat <= 0 {
		opts.Beat = time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Shared{l: l, local: local, opts: opts, log: opts.Log, kick: make(chan struct{}, 1),
		changed: make(chan struct{}), live: map[string]admission.SharedHold{},
		dayUsed: map[int]int64{}, keyUsed: map[string]int64{}, minute: minutes{},
		localLive: map[string]admission.SharedHold{}, published: map[string]string{}, out: newOutage(""), pending: make([]int64, local.Len())}
}

func (s *Shared) rid(h admission.SharedHold) string { return s.l.Replica() + ":" + h.ID }

// Reserve implements admission.Shared.
func (s *Shared) Reserve(ctx context.Context, h admission.SharedHold) error {
	s.mu.Lock()
	if s.alone > 0 {
		defer s.mu.Unlock()
		return s.reserveAlone(h)
	}
	down := s.down
	var carry []sharedOp
	if down == nil {
		// The settlements (and adjustments, throttles) that are due ride
		// on this reserve, with no round trip of their own, unless
		// another call is carrying some.
		if !s.carrying {
			carry = s.takeOps(time.Now(), h.Day, 0, maxCarry)
			s.carrying = len(carry) > 0
		}
		s.pend(h, 1)
	}
	s.mu.Unlock()
	if down != nil {
		return &admission.Unavailable{Err: down, RetryAfter: 2 * time.Second}
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	id := s.rid(h)
	rep, err := s.l.Reserve(ctx, ReserveArgs{ID: id, Set: h.Set, Cost: h.Cost, Key: h.Key.Name,
		Weight: h.Key.Weight, DailyTokens: h.Key.DailyTokens, Day: h.Day, Before: ledgerOps(carry)})
	if err != nil {
		// The hold may have been made and its reply lost: cancel it
		// (a hold that does not exist cancels to nothing). What it
		// carried goes back first, to be sent again (a second time
		// counts nothing twice).
		s.mu.Lock()
		if len(carry) > 0 {
			s.carrying = false
		}
		s.ops = append(append(carry, s.ops...), sharedOp{Op{Kind: OpCancel, ID: id}, time.Now(), h.Day})
		s.fail(err)
		s.pend(h, -1)
		if s.alone > 0 {
			defer s.mu.Unlock()
			return s.reserveAlone(h)
		}
		s.mu.Unlock()
		return &admission.Unavailable{Err: err, RetryAfter: 2 * time.Second}
	}
	if len(carry) > 0 {
		s.mu.Lock()
		s.carrying = false
		s.mu.Unlock()
	}
	if rep.Outcome == OK {
		s.applyHeard(rep, 0, quota.Cost{}, &h)
	} else {
		// The caller gives its local hold back next: the local ledger
		// must then have what the shared one has, not that much more.
		s.applyHeard(rep, h.Set, h.Cost, &h)
	}
	switch rep.Outcome {
	case OK:
		s.mu.Lock()
		s.holdLocked(time.Now(), id, h)
		s.mu.Unlock()
		s.opts.Keys.charge(h.Key.Name, h.Cost.Total())
		return nil
	case Full, Fair:
		s.mu.Lock()
		s.busyAt, s.beatNow = time.Now(), true
		s.mu.Unlock()
		s.wake()
		return &admission.Busy{Fair: rep.Outcome == Fair}
	case Budget:
		return &admission.Refusal{Daily: true, Budget: true, RetryAfter: time.Hour,
			Message: "Headroom: this key's daily token budget is spent (counted across every replica of the gateway); it renews at the start of the next day."}
	}
	return &admission.TooLarge{Cost: h.Cost.Total(),
		Hint: "a bucket's limit in the ledger the gateway's replicas share is smaller than the request: check that every replica has the same bucket configuration"}
}

// Overdraw implements admission.Shared: the hold is sent by Run, before
// any later step of it.
func (s *Shared) Overdraw(h admission.SharedHold) {
	id := s.rid(h)
	now := time.Now()
	s.mu.Lock()
	s.holdLocked(now, id, h)
	s.ops = append(s.ops, sharedOp{Op{Kind: OpOverdraw, ID: id, Cost: h.Cost, Set: h.Set, Key: h.Key.Name, Weight: h.Key.Weight}, now, h.Day})
	s.mu.Unlock()
	s.wake()
}

// holdLocked records h as live under id, held in Redis, and counts its
// request in each requests-per-minute bucket of its set. s.mu is held.
func (s *Shared) holdLocked(now time.Time, id string, h admission.SharedHold) {
	s.live[id] = h
	h.Set.Each(func(i int) {
		if s.local.Spec(i).Kind == quota.RequestsPerMinute {
			s.consumed(now, i, 1)
		}
	})
}

// Adjust implements admission.Shared.
func (s *Shared) Adjust(h admission.SharedHold, cost quota.Cost) {
	if s.isLocal(h) {
		return // the local ledger counts it; its end is published
	}
	s.push(sharedOp{Op{Kind: OpAdjust, ID: s.redisID(h), Cost: cost}, time.Now(), h.Day})
}

// End implements admission.Shared.
func (s *Shared) End(h admission.SharedHold, cost quota.Cost, cancel bool, delay time.Duration) {
	id := s.rid(h)
	op := sharedOp{Op{Kind: OpSettle, ID: id, Cost: cost}, time.Now().Add(max(delay, 0)), h.Day}
	s.mu.Lock()
	if s.endAlone(id, h, cost, cancel) {
		s.mu.Unlock()
		return
	}
	if pid, ok := s.published[id]; ok {
		delete(s.published, id)
		id, op.ID = pid, pid
	}
	delete(s.live, id)
	if cancel {
		op.Kind, op.Cost = OpCancel, quota.Cost{} // a cancel carries no cost
	} else {
		s.record(time.Now(), h, cost)
	}
	s.ops = append(s.ops, op)
	wake := s.needWake(op.due)
	s.mu.Unlock()
	if wake {
		s.wake()
	}
}

// needWake reports whether Run must be woken for an operation due at
// due: it steps by itself no later than due+carryFor, when a batch would
// send it. Callers hold s.mu.
func (s *Shared) needWake(due time.Time) bool {
	return s.stepAt.IsZero() || s.stepAt.After(due.Add(carryFor))
}

// record counts what h consumed (cost) as this replica's today, for
// re-publishing. Callers hold s.mu.
func (s *Shared) record(now time.Time, h admission.SharedHold, cost quota.Cost) {
	if h.Day != s.day {
		s.day, s.dayUsed, s.keyUsed = h.Day, map[int]int64{}, map[string]int64{}
	}
	h.Set.Each(func(i int) {
		switch sp := s.local.Spec(i); sp.Kind {
		case quota.TokensPerDay:
			s.dayUsed[i] += cost.Of(sp.Kind)
		case quota.RequestsPerMinute:
		default:
			s.consumed(now, i, cost.Of(sp.Kind))
		}
	})
	if h.Key.Name != "" {
		s.keyUsed[h.Key.Name] += cost.Total()
	}
}

// Throttled implements admission.Shared.
func (s *Shared) Throttled(set quota.Set) {
	s.push(sharedOp{Op{Kind: OpThrottle, Set: set}, time.Now(), ""})
}

// Changed implements admission.Shared.
func (s *Shared) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Waiting implements admission.Shared.
func (s *Shared) Waiting() {
	s.mu.Lock()
	s.beatNow = true
	s.mu.Unlock()
	s.wake()
}

func (s *Shared) push(op sharedOp) {
	s.mu.Lock()
	s.ops = append(s.ops, op)
	wake := s.needWake(op.due)
	s.mu.Unlock()
	if wake {
		s.wake()
	}
}

func (s *Shared) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// fail marks Redis unreachable. Callers hold s.mu.
func (s *Shared) fail(err error) {
	if s.down == nil {
		s.downAt = time.Now()
	}
	if s.down == nil && s.opts.LocalShare {
		s.goAlone(err)
	} else if s.down == nil {
		s.log.Warn("shared ledger unreachable: refusing new requests until it answers", "upstream", s.l.opts.Upstream, "err", err)
	}
	s.down = err
	// Requests waiting for room try again, and are refused.
	s.notifyLocked()
}

// apply takes a reply's shared state into the local ledger and wakes
// whoever waits for a change. The local ledger holds cost in the buckets
// of set that the shared one does not: it is about to give it back.
func (s *Shared) apply(rep Reply, set quota.Set, cost quota.Cost) { s.applyHeard(rep, set, cost, nil) }

// applyHeard is apply for the reply to the reserve of heard: from now on
// the local ledger's view counts it (pend).
func (s *Shared) applyHeard(rep Reply, set quota.Set, cost quota.Cost, heard *admission.SharedHold) {
	now := time.Now()
	s.mu.Lock()
	if heard != nil {
		s.pend(*heard, -1)
	}
	// Alone, the local ledger runs on its share: a late reply must not
	// set it to the shared state.
	for i, b := range rep.Buckets {
		if s.alone > 0 {
			break
		}
		avail := b.Available()
		if set.Has(i) {
			avail -= cost.Of(s.local.Spec(i).Kind)
		}
		s.local.SetShared(now, i, avail)
	}
	s.replicas = rep.Replicas
	if s.gen != "" && rep.Gen != s.gen {
		s.restore = true
	}
	s.gen = rep.Gen
	restore := s.restore
	s.notifyLocked()
	s.mu.Unlock()
	if restore {
		s.wake()
	}
}

// notifyLocked tells whoever waits on Changed that the shared state was
// heard from. s.mu is held.
func (s *Shared) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Run beats, settles and recovers until ctx ends, pumping ctl whenever
// the shared state changed. Its last act is to send what is pending.
func (s *Shared) Run(ctx context.Context, ctl *admission.Controller) {
	s.mu.Lock()
	s.ctl = ctl
	s.mu.Unlock()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var backlog []admission.Key
	for {
		select {
		case <-ctx.Done():
			now := time.Now()
			s.mu.Lock()
			if s.alone > 0 {
				s.queueAbsorb(now)
			}
			// Settlements whose refund the settle delay holds back are sent
			// now, a little early: otherwise another replica's reaper would
			// settle their holds at all they hold, a lease after this one
			// stops.
			for i := range s.ops {
				s.ops[i].due = now
			}
			s.mu.Unlock()
			if s.sendAbsorbs(context.WithoutCancel(ctx)) {
				s.flush(context.WithoutCancel(ctx), 0)
			}
			return
		case <-s.kick:
		case <-timer.C:
		}
		s.mu.Lock()
		s.stepAt = time.Time{}
		s.mu.Unlock()
		backlog = ctl.Backlog(time.Now(), backlog[:0])
		next := s.step(ctx, backlog)
		s.mu.Lock()
		s.stepAt = time.Now().Add(next)
		s.mu.Unlock()
		timer.Reset(next)
	}
}

// step does one round: re-publish if Redis lost the ledger, send the
// operations that are due, beat. It returns when to come back.
func (s *Shared) step(ctx context.Context, backlog []admission.Key) time.Duration {
	s.mu.Lock()
	restore, alone := s.restore, s.alone > 0
	s.mu.Unlock()
	if restore {
		if err := s.republish(ctx); err != nil {
			return s.opts.Poll
		}
	}
	if alone {
		return s.stepAlone(ctx)
	}
	if !s.flush(ctx, carryFor) {
		s.refuseWaiting(s.controller())
		return s.opts.Poll
	}
	// Between beats the replies to settlements carry the shared state: a
	// round that only settles beats only when a beat is due (one round
	// trip per request fewer under load).
	if wait := s.beatIn(time.Now(), len(backlog) > 0); wait > 0 {
		if ctl := s.controller(); ctl != nil {
			ctl.Poke(time.Now())
		}
		return wait
	}
	names := make([]string, len(backlog))
	for i, k := range backlog {
		names[i] = k.Name
	}
	cctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	rep, err := s.l.Beat(cctx, names)
	cancel()
	s.mu.Lock()
	s.beatAt, s.beatNow = time.Now(), false
	if err != nil {
		s.fail(err)
		ctl := s.ctl
		s.mu.Unlock()
		s.refuseWaiting(ctl)
		return s.opts.Poll
	}
	if s.down != nil {
		s.log.Info("shared ledger reachable again", "upstream", s.l.opts.Upstream)
	}
	s.down = nil
	ctl := s.ctl
	busy := time.Since(s.busyAt) < 2*s.opts.Beat
	next := s.opts.Beat
	if len(backlog) > 0 || busy {
		next = s.opts.Poll
	}
	for _, op := range s.ops {
		next = min(next, max(time.Until(op.due.Add(carryFor)), time.Millisecond))
	}
	s.mu.Unlock()
	s.apply(rep, 0, quota.Cost{})
	if ctl != nil {
		ctl.Poke(time.Now())
	}
	if s.opts.LocalShare && s.opts.Keys != nil {
		cctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		s.opts.Keys.refresh(cctx, s.l, s.local.Day(time.Now()))
		cancel()
	}
	return next
}

// beatIn is how long until the next beat is due (0: now): every Beat,
// every Poll while keys wait here or a reserve was refused busy lately, at
// once when asked (beatNow) or while Redis does not answer. It is no later
// than the next operation's due time.
func (s *Shared) beatIn(now time.Time, backlog bool) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.beatNow || s.down != nil {
		return 0
	}
	every := s.opts.Beat
	if backlog || now.Sub(s.busyAt) < 2*s.opts.Beat {
		every = s.opts.Poll
	}
	wait := s.beatAt.Add(every).Sub(now)
	for _, op := range s.ops {
		wait = min(wait, max(op.due.Add(carryFor).Sub(now), time.Millisecond))
	}
	return max(wait, 0)
}

func (s *Shared) controller() *admission.Controller {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctl
}

// refuseWaiting lets the requests waiting in the local queue for room the
// other replicas held go on to their shared reserve, which refuses them
// at once while Redis is unreachable: they must not wait out their
// deadline for news that cannot come.
func (s *Shared) refuseWaiting(ctl *admission.Controller) {
	now := time.Now()
	s.mu.Lock()
	alone := s.alone > 0
	s.mu.Unlock()
	if alone {
		s.wakeAlone(ctl)
		return
	}
	for i := range s.local.Len() {
		s.local.SetShared(now, i, math.MaxInt64/2)
	}
	if ctl != nil {
		ctl.Poke(now)
	}
}

// carryFor is how long a due settlement, adjustment or throttle waits for
// a reserve to carry it (ReserveArgs.Before) before Run sends it in a
// batch of its own: under load a request's settlement rides on a later
// request's reserve, and costs no round trip of its own. It is a bound on
// how late a settlement reaches Redis when no request comes, not a delay
// when one does; a late settlement only holds its tokens longer.
const carryFor = 5 * time.Millisecond

// maxCarry and maxBatch bound how many operations a reserve carries (on
// the request path) and a batch sends, hence the script's time.
const (
	maxCarry = 16
	maxBatch = 64
)

// takeOps takes, in order, up to n operations due lag ago or earlier
// that may go in one call on day (a throttle goes on any). Callers hold
// s.mu.
func (s *Shared) takeOps(now time.Time, day string, lag time.Duration, n int) []sharedOp {
	var took []sharedOp
	keep := s.ops[:0]
	for _, op := range s.ops {
		if len(took) < n && !op.due.Add(lag).After(now) && (op.Kind == OpThrottle || op.day == day) {
			took = append(took, op)
		} else {
			keep = append(keep, op)
		}
	}
	clear(s.ops[len(keep):])
	s.ops = keep
	return took
}

// ledgerOps is ops as the ledger takes them.
func ledgerOps(ops []sharedOp) []Op {
	if len(ops) == 0 {
		return nil
	}
	out := make([]Op, len(ops))
	for i, op := range ops {
		out[i] = op.Op
	}
	return out
}

// flush sends, in batches, the operations due lag ago or earlier (but
// none while a reserve carries some: the next round does), and reports
// whether Redis took them all.
func (s *Shared) flush(ctx context.Context, lag time.Duration) bool {
	for {
		now := time.Now()
		s.mu.Lock()
		var batch []sharedOp
		for _, op := range s.ops {
			if s.carrying {
				break // a reserve is carrying some: next round
			}
			if !op.due.Add(lag).After(now) {
				batch = s.takeOps(now, op.day, lag, maxBatch)
				s.carrying = true
				break
			}
		}
		s.mu.Unlock()
		if len(batch) == 0 {
			return true
		}
		cctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		rep, err := s.l.Batch(cctx, batch[0].day, ledgerOps(batch))
		cancel()
		s.mu.Lock()
		s.carrying = false
		if err != nil {
			// Keep them, in order, ahead of what came meanwhile.
			s.ops = append(batch, s.ops...)
			s.fail(err)
			s.mu.Unlock()
			return false
		}
		s.mu.Unlock()
		s.apply(rep, 0, quota.Cost{})
	}
}

// republish gives a ledger Redis lost this replica's share of it: its
// live holds, what it consumed today in each day bucket and in the last
// minute in each minute bucket, and what it charged each key today.
func (s *Shared) republish(ctx context.Context) error {
	now := time.Now()
	s.mu.Lock()
	s.foldAlone()
	a := RestoreArgs{Used: map[int]int64{}, Keys: map[string]int64{}, Day: s.day}
	for i, n := range s.dayUsed {
		a.Used[i] = n
	}
	for i, m := range s.minute {
		a.Used[i] = m.sum(now)
	}
	for k, n := range s.keyUsed {
		a.Keys[k] = n
	}
	for id, h := range s.live {
		a.Holds = append(a.Holds, Hold{ID: id, Set: h.Set, Held: h.Cost, Key: h.Key.Name, Tokens: h.Cost.Total(), Weight: h.Key.Weight})
		if a.Day == "" {
			a.Day = h.Day
		}
	}
	s.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	rep, err := s.l.Restore(cctx, a)
	if err != nil {
		s.mu.Lock()
		s.fail(err)
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	s.restore = false
	s.mu.Unlock()
	s.log.Warn("shared ledger was lost by Redis (restarted empty?): re-published this replica's holds and today's usage",
		"upstream", s.l.opts.Upstream, "holds", len(a.Holds))
	s.apply(rep, 0, quota.Cost{})
	return nil
}
