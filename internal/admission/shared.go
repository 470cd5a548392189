package admission

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
)

// Shared is the mirror ledger that the replicas of a gateway share, one
// per upstream (README, "Replicas on Redis"; internal/store/redisstore
// implements it on Redis). The controller's own ledger stays the fast
// path: a ticket it grants then reserves in the shared ledger before the
// blocking form (Admit) returns it, and gives it back and waits again when
// the shared ledger refuses. Every later step of the ticket (Adjust,
// Settle, SettleAfter, Cancel) is handed on to it.
//
// Only Reserve may block (on the network): it is called outside the
// controller's lock, from Admit only. The other methods are called under
// the lock and must return at once; the implementation does their network
// work on its own goroutine (in order: a hold's Overdraw before its End).
type Shared interface {
	// Reserve holds h's cost across replicas. It returns nil when held,
	// *Busy when the shared ledger has no room now (try again after
	// Changed), a *Refusal or *TooLarge that stands, or *Unavailable.
	Reserve(ctx context.Context, h SharedHold) error
	// Overdraw holds h's cost across replicas whether or not it fits
	// (shadow mode: the request goes upstream anyway); it returns at once.
	Overdraw(h SharedHold)
	// Adjust counts cost as consumed so far by a held h.
	Adjust(h SharedHold, cost quota.Cost)
	// End settles a held h at cost, its refund held back for delay, or
	// cancels it.
	End(h SharedHold, cost quota.Cost, cancel bool, delay time.Duration)
	// Throttled applies an upstream throttle to the buckets of set for
	// every replica.
	Throttled(set quota.Set)
	// Changed returns a channel closed the next time the shared state is
	// heard from (a reply or a poll).
	Changed() <-chan struct{}
	// Waiting says that a request waits in the controller's queue: the
	// shared state should be read (and the waiting keys told) soon.
	Waiting()
}

// SharedHold is one granted ticket's hold in the shared ledger.
type SharedHold struct {
	// ID is unique across replicas (the implementation's prefix and a
	// counter).
	ID   string
	Key  Key
	Set  quota.Set
	Cost quota.Cost
	// Day labels the key's day (the key's budget counts in it).
	Day string
}

// Busy is a shared reserve refused for now: the buckets lack room across
// replicas (Fair false), or the key is ahead, in fair order, of a key
// another replica has waiting (Fair true).
type Busy struct{ Fair bool }

func (e *Busy) Error() string {
	if e.Fair {
		return "shared ledger: key is ahead of a key waiting on another replica"
	}
	return "shared ledger: no room across replicas"
}

// Unavailable is a request refused because the shared ledger cannot be
// reached and the gateway is set to refuse rather than guess: the gateway
// answers 503 ServiceUnavailableException.
type Unavailable struct {
	Err        error
	RetryAfter time.Duration
	// Share is N when the gateway runs on 1/N of the quota meanwhile
	// (when_down: local_share) and the request is larger than that.
	Share int
}

func (e *Unavailable) Error() string {
	return fmt.Sprintf("shared ledger unavailable: %v", e.Err)
}

func (e *Unavailable) Unwrap() error { return e.Err }

// share reserves a granted ticket in the shared ledger, or gives the
// ticket back and returns why not.
func (c *Controller) share(ctx context.Context, t *Ticket) error {
	c.mu.Lock()
	c.holdSeq++ // the implementation's ID prefix makes it unique across replicas
	h := SharedHold{ID: strconv.FormatUint(c.holdSeq, 36), Key: t.req.Key, Set: t.req.Set, Cost: t.req.Cost, Day: c.day}
	c.mu.Unlock()
	err := c.opts.Shared.Reserve(ctx, h)
	if err == nil {
		c.mu.Lock()
		ok := t.state == Granted
		if ok {
			t.shared = &h
		}
		c.mu.Unlock()
		if ok {
			return nil
		}
		// Ended meanwhile (it cannot be: the caller owns it); give it back.
		c.opts.Shared.End(h, quota.Cost{}, true, 0)
		return context.Canceled
	}
	t.Cancel(time.Now())
	return err
}

// admitShared is Admit with a shared ledger: admitted locally, then held
// across replicas; a busy shared ledger sends the request back to the
// queue once the shared state has changed, until its deadline.
func (c *Controller) admitShared(ctx context.Context, req Request) (*Ticket, error) {
	_, t, err := admitAnyShared(ctx, []Candidate{{C: c, Req: req}})
	return t, err
}

// admitAnyShared is AdmitAny with shared ledgers: placed on the
// candidates' own ledgers, then held in the winner's shared ledger (if it
// has one); a busy shared ledger sends the request back to the queues once
// a shared state has changed, until its deadline.
func admitAnyShared(ctx context.Context, cands []Candidate) (int, *Ticket, error) {
	now := time.Now()
	cands = slices.Clone(cands)
	for i := range cands {
		if cands[i].Req.Deadline.IsZero() {
			cands[i].Req.Deadline = now.Add(cands[i].C.opts.DefaultMaxWait)
		}
	}
	deadline := cands[0].Req.Deadline
	for {
		var changed []<-chan struct{}
		for _, c := range cands {
			if sh := c.C.opts.Shared; sh != nil {
				changed = append(changed, sh.Changed())
			}
		}
		var i int
		var t *Ticket
		var err error
		if len(cands) == 1 {
			t, err = cands[0].C.admitLocal(ctx, cands[0].Req)
		} else {
			i, t, err = admitAnyLocal(ctx, cands)
		}
		if err != nil {
			return -1, nil, err
		}
		c := cands[i].C
		if c.opts.Shared == nil {
			return i, t, nil
		}
		err = c.share(ctx, t)
		var busy *Busy
		if err == nil {
			return i, t, nil
		}
		if !errors.As(err, &busy) {
			return -1, nil, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return -1, nil, c.busyRefusal(time.Now(), cands[i].Req, busy)
		}
		if !waitAny(ctx, changed, left) {
			return -1, nil, ctx.Err()
		}
	}
}

// waitAny waits until one of chs is closed or d passes; false when ctx
// ended first.
func waitAny(ctx context.Context, chs []<-chan struct{}, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	if len(chs) == 1 {
		select {
		case <-chs[0]:
		case <-timer.C:
		case <-ctx.Done():
			return false
		}
		return true
	}
	// Several upstreams' shared ledgers: the first to change.
	first := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	var once sync.Once
	for _, ch := range chs {
		go func() {
			select {
			case <-ch:
				once.Do(func() { close(first) })
			case <-stop:
			}
		}()
	}
	select {
	case <-first:
	case <-timer.C:
	case <-ctx.Done():
		return false
	}
	return true
}

// busyRefusal is the refusal of a request the shared ledger kept out past
// its deadline.
func (c *Controller) busyRefusal(now time.Time, req Request, busy *Busy) *Refusal {
	wait, _ := c.l.Wait(now, req.Set, req.Cost)
	wait = max(wait, time.Second)
	msg := "Headroom: the quota this gateway shares with its other replicas had no room for this request before its deadline"
	if busy.Fair {
		msg = "Headroom: other keys waiting on the gateway's other replicas are owed their fair share of the quota first"
	}
	return &Refusal{RetryAfter: wait, Holds: true, Message: fmt.Sprintf("%s; retry after %d s.", msg, int((wait+time.Second-1)/time.Second))}
}

// endShared hands a ticket's end to the shared ledger. Callers hold c.mu.
func (c *Controller) endShared(t *Ticket, cost quota.Cost, cancel bool, delay time.Duration) {
	if t.shared == nil {
		return
	}
	c.opts.Shared.End(*t.shared, cost, cancel, delay)
	t.shared = nil
}

// adjustShared hands an Adjust to the shared ledger. Callers hold c.mu.
func (c *Controller) adjustShared(t *Ticket, cost quota.Cost) {
	if t.shared != nil {
		c.opts.Shared.Adjust(*t.shared, cost)
	}
}

// Throttled applies an upstream throttle to the buckets of set: in the
// controller's ledger, and in the shared ledger for the other replicas.
func (c *Controller) Throttled(now time.Time, set quota.Set) {
	c.l.Throttled(now, set)
	if c.opts.Shared != nil {
		c.opts.Shared.Throttled(set)
	}
}

// Backlog returns the keys with requests waiting here whose heads wait
// for the ledger alone (not for their key's own concurrency cap or
// budget): what a shared ledger counts as waiting for fair order across
// replicas. It appends to dst.
func (c *Controller) Backlog(now time.Time, dst []Key) []Key {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ks := range c.waiting {
		if len(ks.queue) > 0 && c.b.allows(ks.use, &ks.key, ks.queue[0].req.tokens(), c) {
			dst = append(dst, ks.key)
		}
	}
	return dst
}

// ShareWith makes the controller hold every request it admits in s too
// (Options.Shared). Call it before the first request.
func (c *Controller) ShareWith(s Shared) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opts.Shared = s
}

// Poke pumps the controller at now: the shared ledger's state changed,
// and waiting requests may fit.
func (c *Controller) Poke(now time.Time) { c.poke(now) }

// RaiseKeysToday raises the usage today of each known key (what its daily
// budget counts) to at least used[name]: the whole account's settlements,
// as the gateway's replicas pool them. It never lowers one, so this
// replica's own requests since are counted once.
func (c *Controller) RaiseKeysToday(now time.Time, used map[string]int64) {
	c.mu.Lock()
	defer c.unlock(now)
	c.rollDay(now)
	for name, v := range used {
		if ks := c.keys[name]; ks != nil {
			c.b.restore(ks.use, c.day, v)
		}
	}
}
