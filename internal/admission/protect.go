package admission

import (
	"fmt"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/headroomhq/headroom/internal/quota"
)

// Daily protection: in every per-day bucket, key j's protected share is
// ProtectedFraction × effective limit × weight_j / Σ weights of the known
// keys. Key k may take at most available − Σ_{j≠k} max(0, share_j − used_j):
// whatever it does, every other key can still use the rest of its share.

// protectedShare is key ks's protected part of a daily bucket of effective
// limit eff.
func (c *Controller) protectedShare(ks *keyState, eff int64) int64 {
	if c.totalWeight <= 0 {
		return 0
	}
	return int64(c.opts.ProtectedFraction * float64(eff) * ks.key.weight() / c.totalWeight)
}

// othersReserve is the unused protected remainder of every key but ks in
// daily bucket i.
func (c *Controller) othersReserve(ks *keyState, i int, eff int64) int64 {
	var sum int64
	for _, j := range c.keys {
		if j != ks {
			sum += max(0, c.protectedShare(j, eff)-j.today[i])
		}
	}
	return sum
}

// protectedBy returns the daily bucket in which req would eat into another
// key's protected remainder, with that remainder, or -1.
func (c *Controller) protectedBy(now time.Time, ks *keyState, req Request) (int, int64) {
	if c.opts.ProtectedFraction <= 0 {
		return -1, 0
	}
	for m := req.Set & c.daily; m != 0; m &= m - 1 {
		i := lowBit(m)
		st := c.l.Bucket(now, i)
		// Fast path: all protected parts together cannot exceed fraction × eff.
		if st.Available-int64(c.opts.ProtectedFraction*float64(st.Effective)) >= req.Cost.Tokens {
			continue
		}
		if r := c.othersReserve(ks, i, st.Effective); req.Cost.Tokens > st.Available-r {
			return i, r
		}
	}
	return -1, 0
}

// refuseHopeless refuses at once every waiting ticket that a daily limit
// keeps out past its deadline even if every in-flight hold were given
// back, instead of making the client wait for a certain refusal (Claude
// Code then stops on x-should-retry: false). Every pump looks again: a
// ticket that joined with hope loses it when requests in flight end
// having consumed what it waited for, and then nothing comes back before
// the day resets.
func (c *Controller) refuseHopeless(now time.Time) {
	if c.queued == 0 {
		return
	}
	// Per daily bucket, read once per pump: what it could admit were every
	// hold given back (but what held-back refunds will consume) and every
	// protected remainder taken. A request no larger fits whatever the
	// keys' shares are.
	var slack [quota.MaxBuckets]int64
	var seen quota.Set
	hopeless := func(t *Ticket) bool {
		if c.spent(t.k, t.req.tokens()) {
			return c.untilDayEnd(now) > t.req.Deadline.Sub(now)
		}
		for m := t.req.Set & c.daily; m != 0; m &= m - 1 {
			i := lowBit(m)
			if !seen.Has(i) {
				st := c.l.Bucket(now, i)
				slack[i] = st.Available + st.Reserved - c.toConsume[i] - int64(c.opts.ProtectedFraction*float64(st.Effective))
				seen |= quota.Bit(i)
			}
			if t.req.Cost.Tokens > slack[i] && c.hopelessIn(now, t, i, t.req.Deadline.Sub(now)) {
				return true
			}
		}
		return false
	}
	for _, ks := range c.waiting {
		for _, t := range ks.queue {
			if hopeless(t) {
				c.refuseWhere(now, hopeless)
				return
			}
		}
	}
}

// hopelessIn reports whether daily bucket i keeps t out for longer than
// left, were every hold given back; a hold whose request has ended gives
// back only what it will not consume.
func (c *Controller) hopelessIn(now time.Time, t *Ticket, i int, left time.Duration) bool {
	st := c.l.Bucket(now, i)
	var r int64
	if c.opts.ProtectedFraction > 0 {
		r = c.othersReserve(t.k, i, st.Effective)
	}
	return t.req.Cost.Tokens > st.Available+st.Reserved-c.toConsume[i]-r && c.protectionWait(now, i, t.req.Cost.Tokens+r) > left
}

// fairShare is ks's weighted share of eff among the keys active now (queued
// or in flight), ks included.
func (c *Controller) fairShare(ks *keyState, eff int64) int64 {
	w := ks.key.weight()
	total := w
	for _, j := range c.keys {
		if j != ks && (len(j.queue) > 0 || j.inflight > 0) {
			total += j.key.weight()
		}
	}
	return int64(float64(eff) * w / total)
}

// untilDayEnd is the wait until the ledger's day changes.
func (c *Controller) untilDayEnd(now time.Time) time.Duration {
	_, end := c.l.DayWindow(now)
	return end.Sub(now)
}

// headWait is how long until t could go if nothing else changed: the
// longest of the ledger's wait, its key's protection and budget waits.
func (c *Controller) headWait(now time.Time, t *Ticket) time.Duration {
	ks := t.k
	w, _ := c.l.Wait(now, t.req.Set, t.req.Cost)
	if c.overBudget(ks, t.req.tokens()) {
		w = max(w, c.untilDayEnd(now))
	}
	if i, r := c.protectedBy(now, ks, t.req); i >= 0 {
		w = max(w, c.protectionWait(now, i, t.req.Cost.Tokens+r))
	}
	return w
}

// protectionWait is when daily bucket i will have need available: at the
// day's end for a counter, or by refill for a rolling bucket.
func (c *Controller) protectionWait(now time.Time, i int, need int64) time.Duration {
	end := c.untilDayEnd(now)
	if w, never := c.l.WaitFor(now, i, need); !never && w < end {
		return max(w, time.Nanosecond)
	}
	return end
}

// nextWake is NextWake. Callers hold c.mu.
func (c *Controller) nextWake(now time.Time) (time.Time, bool) {
	var at time.Time
	found := false
	consider := func(t time.Time) {
		if !found || t.Before(at) {
			at, found = t, true
		}
	}
	if at, ok := c.nextRefund(); ok {
		consider(at)
	}
	full := c.opts.MaxInFlight > 0 && c.inflight >= c.opts.MaxInFlight
	for _, ks := range c.waiting {
		for _, t := range ks.queue {
			consider(t.req.Deadline)
		}
		if full {
			continue
		}
		if c.atConcurrency(ks) { // a request of the key ending anywhere pumps
			continue
		}
		if w := c.headWait(now, ks.queue[0]); w > 0 {
			consider(now.Add(w))
		}
	}
	return at, found
}

// NextWake returns when a Pump could next change something without any
// Settle, Cancel or Enqueue in between: the earliest time at which the head
// of some key's queue fits the ledger, the earliest deadline, or the
// earliest ledger refund held back by SettleAfter. It reports false when
// nothing waits and no refund is held back. A head kept out by requests in
// flight has no such time (their holds end on Settle or Cancel, which
// pump, in whichever controller sharing Options.Budgets they end): the
// ledger's hold estimate stands in for it (quota.LimitError.Holds).
func (c *Controller) NextWake(now time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nextWake(now)
}

// MaxRetryAfter is the longest Retry-After a refusal that is not Daily
// says. Claude Code sleeps and retries on 1-60 s, again and again, and gives
// up at once on 61 s or more (BEDROCK.md section 6), so a request the
// gateway wants back says at most this, and says it again when asked again.
const MaxRetryAfter = 60 * time.Second

// budgetHeldRetry is the Retry-After of a request kept out of its key's
// daily budget only by the key's own requests in flight: when they settle
// below their reservations (they usually do) it fits.
const budgetHeldRetry = 10 * time.Second

// refusal explains why t is not admitted at now, naming the binding limit.
// A refusal is Daily (x-should-retry: false, a wait to when it frees) only
// when settled usage spends the limit: were every hold in flight given back,
// the request would still wait longer than MaxRetryAfter. Any other refusal
// says at most MaxRetryAfter.
func (c *Controller) refusal(now time.Time, t *Ticket) *Refusal {
	r := c.refusalAt(now, t)
	if !r.Daily {
		r.RetryAfter = min(max(r.RetryAfter, time.Second), MaxRetryAfter)
	}
	return r
}

// spentDaily reports whether daily bucket i is spent for a request of
// need tokens by what it has consumed: were every hold given back (but what
// held-back refunds will consume), need would still not fit.
func (c *Controller) spentDaily(now time.Time, i int, need int64) bool {
	st := c.l.Bucket(now, i)
	return need > st.Available+st.Reserved-c.toConsume[i]
}

func (c *Controller) refusalAt(now time.Time, t *Ticket) *Refusal {
	ks, name := t.k, t.k.key.Name
	total, held, inflight := c.b.usage(ks.use) // every upstream's
	if b := ks.key.DailyTokens; b > 0 && total+t.req.tokens() > b {
		if settled := total - held; settled+t.req.tokens() > b {
			wait := c.untilDayEnd(now)
			return &Refusal{Daily: true, Budget: true, RetryAfter: wait, KeyShare: b, KeyUsed: settled,
				Message: fmt.Sprintf("Headroom: key %s's daily budget of %s tokens is spent (used %s, this request reserves %s); it resets in %s",
					name, humanize.Comma(b), humanize.Comma(settled), humanize.Comma(t.req.tokens()), human(wait))}
		}
		return &Refusal{RetryAfter: budgetHeldRetry, Holds: true, Budget: true, KeyShare: b, KeyUsed: total,
			Message: fmt.Sprintf("Headroom: key %s's daily budget of %s tokens has %s left, but its requests in flight hold %s of it until they settle (this request reserves %s); retry in %s",
				name, humanize.Comma(b), humanize.Comma(max(b-total+held, 0)), humanize.Comma(held), humanize.Comma(t.req.tokens()), human(budgetHeldRetry))}
	}
	if i, r := c.protectedBy(now, ks, t.req); i >= 0 {
		st := c.l.Bucket(now, i)
		share := c.protectedShare(ks, st.Effective)
		wait := c.protectionWait(now, i, t.req.Cost.Tokens+r)
		daily := wait > MaxRetryAfter && c.spentDaily(now, i, t.req.Cost.Tokens+r)
		when := "retry in " + human(min(wait, MaxRetryAfter))
		if daily {
			when = "it frees in " + human(wait)
		}
		return &Refusal{Bucket: st.Name, Kind: st.Kind, Daily: daily, RetryAfter: wait, Holds: !daily && wait > MaxRetryAfter, KeyShare: share, KeyUsed: ks.today[i],
			Message: fmt.Sprintf("Headroom: %s bucket %q has %s left, of which %s is protected for other keys; key %s's protected share is %s of %s and it has used %s today; %s",
				st.Kind.Phrase(), st.Name, humanize.Comma(max(st.Available, 0)), humanize.Comma(r), name, humanize.Comma(share), humanize.Comma(st.Effective), humanize.Comma(ks.today[i]), when)}
	}
	if err := c.l.Fits(now, t.req.Set, t.req.Cost); err != nil {
		le := err.(*quota.LimitError)
		share := c.fairShare(ks, le.Effective)
		used := ks.live[le.Index]
		daily := le.Kind.Daily() && le.RetryAfter > MaxRetryAfter && c.spentDaily(now, le.Index, t.req.Cost.Tokens)
		if le.Kind.Daily() {
			used = ks.today[le.Index]
		}
		if le.Kind == quota.RequestsPerMinute {
			used = int64(ks.inflight)
		}
		full := "is full"
		if le.Holds {
			full = "is full (requests in flight hold part of the quota)"
		}
		if le.Kind == quota.OutputTokensPerMinute {
			full = "is over its limit (output is counted as it is generated; no call goes in until the refill has drained it)"
		}
		when := "retry in " + human(min(le.RetryAfter, MaxRetryAfter))
		if daily {
			full, when = "is spent", "it frees in "+human(le.RetryAfter)
		}
		return &Refusal{Bucket: le.Bucket, Kind: le.Kind, Daily: daily, RetryAfter: le.RetryAfter, Holds: le.Holds, KeyShare: share, KeyUsed: used,
			Message: fmt.Sprintf("Headroom: %s bucket %q %s; key %s's fair share is %s of %s; %s",
				le.Kind.Phrase(), le.Bucket, full, name, humanize.Comma(share), humanize.Comma(le.Effective), when)}
	}
	if m := ks.key.MaxConcurrency; m > 0 && inflight >= m {
		return &Refusal{RetryAfter: time.Second,
			Message: fmt.Sprintf("Headroom: key %s already has %d requests in flight, its limit; retry when one ends", name, inflight)}
	}
	if m := c.opts.MaxInFlight; m > 0 && c.inflight >= m {
		return &Refusal{RetryAfter: time.Second,
			Message: fmt.Sprintf("Headroom: the upstream already has %d requests in flight, its limit; retry in 1s", c.inflight)}
	}
	// It fits alone, but fairer requests sharing its buckets are ahead.
	ahead := t.req.Cost
	n := 0
	for _, j := range c.waiting {
		for _, o := range j.queue {
			if o != t && o.req.Set&t.req.Set != 0 {
				ahead = ahead.Add(o.req.Cost)
				n++
			}
		}
	}
	wait, never := c.l.Wait(now, t.req.Set, ahead)
	if never || wait < time.Second {
		wait = time.Second
	}
	wait = min(wait, MaxRetryAfter)
	return &Refusal{RetryAfter: wait,
		Message: fmt.Sprintf("Headroom: %d requests of other keys are ahead of key %s's in fair order; retry in %s", n, name, human(wait))}
}
