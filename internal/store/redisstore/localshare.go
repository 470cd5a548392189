package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/quota"
)

// The local share (redis.when_down: local_share; README, "Replicas on
// Redis").
//
// When Redis stops answering, a replica set to carry on divides its local
// ledger by N (quota.Ledger.Share): every bucket's limit, refill rate and
// room at that moment, so N replicas together admit no more than the
// account's buckets would. N is the larger of redis.replicas and the
// replicas Redis last reported alive: none can join meanwhile, since
// `serve` does not start without Redis. Requests admitted alone hold
// nothing in Redis; what they use is kept (outage), and the holds still
// in flight (localLive).
//
// While alone, every round queues what was used since the last one as an
// absorb (merged into the last one while it was never sent) and sends the
// absorbs, then the settlements queued. A hold admitted alone is published
// under an ID of its own (the ID it had may be cancelled in Redis: its
// reserve may have landed there with the reply lost), and from then on its
// settlement is queued like any other, behind the absorb that publishes
// it. Once Redis took all of it and nothing new was used meanwhile, the
// replica leaves its share (Unshare) and reserves in Redis again. An absorb is counted
// once per token (a retry after a lost reply counts nothing), and only in
// the generation it was counted in: if Redis came back empty, the replica
// re-publishes everything it used today instead (restore), which includes
// what it used alone.

// absorbOp is what a replica used alone, to publish once (Ledger.Absorb):
// its token, the generation it was counted in, and whether it was sent (a
// sent one is retried as it is, never merged into).
type absorbOp struct {
	token, gen string
	share      *RestoreArgs
	tried      bool
}

// outage is what a replica used alone and has not yet queued to absorb.
type outage struct {
	day    string
	used   map[int]int64    // day buckets: tokens
	minute minutes          // minute buckets: tokens (requests) by the second
	keys   map[string]int64 // tokens charged to each key
}

func newOutage(day string) outage {
	return outage{day: day, used: map[int]int64{}, minute: minutes{}, keys: map[string]int64{}}
}

func (o *outage) empty() bool { return len(o.used) == 0 && len(o.minute) == 0 && len(o.keys) == 0 }

// goAlone starts the local share. Callers hold s.mu.
func (s *Shared) goAlone(err error) {
	now := time.Now()
	n := max(s.opts.Replicas, s.replicas, 1)
	s.alone, s.downAt = n, now
	s.local.Share(now, n, s.pending)
	s.opts.Keys.setAlone(1)
	s.log.Warn("shared ledger unreachable: carrying on with a local share of every bucket until Redis answers (redis.when_down: local_share)",
		"upstream", s.l.opts.Upstream, "share", "1/"+strconv.Itoa(n), "err", err)
}

// pend adds (sign 1) or takes back (-1) h's hold to what reserves sent
// to Redis hold locally before Redis answered them: the local ledger's
// view of the shared one does not count it yet (quota.Ledger.Share).
// Callers hold s.mu.
func (s *Shared) pend(h admission.SharedHold, sign int64) {
	h.Set.Each(func(i int) {
		s.pending[i] += sign * h.Cost.Of(s.local.Spec(i).Kind)
	})
}

// isLocal reports whether h was admitted alone and is not yet published.
func (s *Shared) isLocal(h admission.SharedHold) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.localLive[s.rid(h)]
	return ok
}

// reserveAlone holds h in this replica's share: the local ledger, already
// holding it, decided. A request admitted against the shared state just
// before Redis went away may not fit the share: it waits in the queue
// again. Callers hold s.mu.
func (s *Shared) reserveAlone(h admission.SharedHold) error {
	now := time.Now()
	short := false
	h.Set.Each(func(i int) {
		if s.local.Available(now, i) < 0 {
			short = true
		}
	})
	if short {
		s.busyAt = now
		return &admission.Busy{}
	}
	if !s.opts.Keys.allows(h.Key.Name, h.Day, h.Key.DailyTokens, h.Cost.Total(), s.alone) {
		return &admission.Refusal{Budget: true, RetryAfter: 30 * time.Second,
			Message: fmt.Sprintf("Headroom: while the quota ledger the gateway's replicas share does not answer, this replica may charge a key 1/%d of what its daily budget had left, and this key's part is spent; retry when the ledger is back.", s.alone)}
	}
	s.opts.Keys.charge(h.Key.Name, h.Cost.Total())
	s.localLive[s.rid(h)] = h
	h.Set.Each(func(i int) {
		if s.local.Spec(i).Kind == quota.RequestsPerMinute {
			s.consumed(now, i, 1)
			s.out.minute.add(now, i, 1)
		}
	})
	return nil
}

// endAlone ends h if it was admitted alone and not yet published, keeping
// what it used for the absorb and the restore. Callers hold s.mu.
func (s *Shared) endAlone(id string, h admission.SharedHold, cost quota.Cost, cancel bool) bool {
	if _, ok := s.localLive[id]; !ok {
		return false
	}
	delete(s.localLive, id)
	// Room came back in the share: a request sent back (Busy) tries again.
	s.notifyLocked()
	if cancel {
		return true // its request stays counted in the minute: conservative
	}
	now := time.Now()
	s.record(now, h, cost)
	if h.Day != s.out.day && !s.out.empty() {
		s.queueAbsorb(now) // the day turned: the keys' usage goes to the old day
	}
	if s.out.empty() {
		s.out.day = h.Day
	}
	h.Set.Each(func(i int) {
		switch sp := s.local.Spec(i); sp.Kind {
		case quota.TokensPerDay:
			if n := cost.Of(sp.Kind); n > 0 {
				s.out.used[i] += n
			}
		case quota.RequestsPerMinute:
		default:
			s.out.minute.add(now, i, cost.Of(sp.Kind))
		}
	})
	if h.Key.Name != "" && cost.Total() > 0 {
		s.out.keys[h.Key.Name] += cost.Total()
	}
	return true
}

// queueAbsorb queues what was used alone since the last call, and the
// holds admitted alone (from now on they are shared holds: their ends are
// queued behind the absorb that publishes them). Nothing is queued while
// a restore is due: it publishes all of it. Callers hold s.mu.
func (s *Shared) queueAbsorb(now time.Time) bool {
	if s.restore || (s.out.empty() && len(s.localLive) == 0) {
		return false
	}
	a := &RestoreArgs{Day: s.out.day, Used: map[int]int64{}, Keys: s.out.keys}
	for i, n := range s.out.used {
		a.Used[i] = n
	}
	for i, m := range s.out.minute {
		if n := m.sum(now); n > 0 {
			a.Used[i] = n
		}
	}
	for id, h := range s.localLive {
		pid := s.publish(id, h)
		a.Holds = append(a.Holds, Hold{ID: pid, Set: h.Set, Held: h.Cost, Key: h.Key.Name, Tokens: h.Cost.Total(), Weight: h.Key.Weight})
		if a.Day == "" {
			a.Day = h.Day
		}
	}
	clear(s.localLive)
	s.out = newOutage(s.out.day)
	if n := len(s.absorbs); n > 0 && !s.absorbs[n-1].tried && s.absorbs[n-1].share.Day == a.Day && s.absorbs[n-1].gen == s.gen {
		last := s.absorbs[n-1].share
		for i, v := range a.Used {
			last.Used[i] += v
		}
		for k, v := range a.Keys {
			last.Keys[k] += v
		}
		last.Holds = append(last.Holds, a.Holds...)
		return true
	}
	s.queueShare(a)
	return true
}

// queueShare queues a as a new absorb. Callers hold s.mu.
func (s *Shared) queueShare(a *RestoreArgs) {
	s.absorbSeq++
	s.absorbs = append(s.absorbs, absorbOp{token: s.l.Replica() + ":" + strconv.FormatUint(s.absorbSeq, 36), gen: s.gen, share: a})
}

// publish makes the hold id, admitted alone, a shared hold under an ID of
// its own, and returns that ID. Callers hold s.mu.
func (s *Shared) publish(id string, h admission.SharedHold) string {
	pid := id + "~alone"
	s.published[id] = pid
	s.live[pid] = h
	return pid
}

// redisID is the ID of h's hold in Redis.
func (s *Shared) redisID(h admission.SharedHold) string {
	id := s.rid(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if pid, ok := s.published[id]; ok {
		return pid
	}
	return id
}

// sendAbsorbs sends the queued absorbs in order and reports whether Redis
// took them all. One refused for its generation (Redis lost the ledger)
// is dropped: the restore that follows publishes it all.
func (s *Shared) sendAbsorbs(ctx context.Context) bool {
	for {
		s.mu.Lock()
		if len(s.absorbs) == 0 {
			s.mu.Unlock()
			return true
		}
		s.absorbs[0].tried = true
		op := s.absorbs[0]
		s.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		rep, err := s.l.Absorb(cctx, op.token, op.gen, *op.share)
		cancel()
		s.mu.Lock()
		if err != nil {
			s.fail(err)
			s.mu.Unlock()
			return false
		}
		if len(s.absorbs) > 0 && s.absorbs[0].token == op.token {
			s.absorbs = s.absorbs[1:]
		}
		s.mu.Unlock()
		s.apply(rep, 0, quota.Cost{})
	}
}

// foldAlone drops what a restore re-publishes anyway: the absorbs queued
// and what was used alone since (all of it is in the day's usage), and
// makes the holds admitted alone shared ones. Callers hold s.mu.
func (s *Shared) foldAlone() {
	s.absorbs = nil
	for id, h := range s.localLive {
		s.publish(id, h)
	}
	clear(s.localLive)
	s.out = newOutage(s.out.day)
}

// stepAlone is a round while alone: queue what was used, send the queue
// (the probe: an absorb, even an empty one, also says whether Redis still
// has this generation), and leave the share once Redis took everything.
func (s *Shared) stepAlone(ctx context.Context) time.Duration {
	now := time.Now()
	s.mu.Lock()
	if !s.queueAbsorb(now) && len(s.absorbs) == 0 && !s.restore {
		s.queueShare(&RestoreArgs{Day: s.day})
	}
	s.mu.Unlock()
	ok := s.sendAbsorbs(ctx) && s.flush(ctx, 0)
	ctl := s.controller()
	if !ok {
		s.wakeAlone(ctl)
		return s.opts.Poll
	}
	s.mu.Lock()
	if s.restore || s.queueAbsorb(time.Now()) || len(s.absorbs) > 0 {
		s.mu.Unlock()
		return time.Millisecond // Redis answers: the rest at once
	}
	n, since := s.alone, time.Since(s.downAt)
	s.alone, s.down = 0, nil
	s.local.Unshare(time.Now())
	s.opts.Keys.setAlone(-1)
	s.notifyLocked()
	s.mu.Unlock()
	s.log.Info("shared ledger reachable again: what this replica used on its local share is published; back on the shared ledger",
		"upstream", s.l.opts.Upstream, "share", "1/"+strconv.Itoa(n), "after", since.Round(time.Millisecond).String())
	if ctl != nil {
		ctl.Poke(time.Now())
	}
	return time.Millisecond // beat now: the shared state
}

// wakeAlone lets the requests that wait for a change (a reserve refused
// as Busy) try the local share again.
func (s *Shared) wakeAlone(ctl *admission.Controller) {
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
	if ctl != nil {
		ctl.Poke(time.Now())
	}
}

// State implements what admission reads for /v1/status and the metrics.
func (s *Shared) State() admission.SharedState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := admission.SharedState{Mode: admission.SharedUp, Replicas: s.replicas}
	switch {
	case s.alone > 0:
		st.Mode, st.Share, st.Since = admission.SharedLocalShare, s.alone, s.downAt
	case s.down != nil:
		st.Mode, st.Since = admission.SharedRefusing, s.downAt
	}
	return st
}
