package admission

import (
	"time"

	"github.com/headroomhq/headroom/internal/quota"
)

// Room returns what the output policy needs to know, before admission,
// about the buckets of set for key k at now: the least room any token
// bucket has (after the other keys' protected daily remainders, which k
// may not take), how many requests wait, and k's weighted share among the
// keys active now of the smallest effective token limit. It lands the
// held refunds due at now first, as a pump would (the timer may land them
// a little late, see arm), and otherwise only reads: the queue is as it
// was (a request admitted a moment later sees it and the ledger changed,
// so Room is advice, never a promise).
func (c *Controller) Room(now time.Time, k Key, set quota.Set) Room {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refundDue(now) // the timer may land them a little late (arm)
	r := Room{Known: true, Waiting: c.queued, Available: -1}
	ks := c.keys[k.Name]
	weight := k.weight()
	var smallest int64 = -1
	for m := set & c.l.All(); m != 0; m &= m - 1 {
		i := lowBit(m)
		st := c.l.Bucket(now, i)
		if st.Kind == quota.RequestsPerMinute || st.Kind == quota.OutputTokensPerMinute {
			continue // max_tokens is not charged there
		}
		avail := st.Available
		if c.daily.Has(i) && c.opts.ProtectedFraction > 0 {
			avail -= c.reserveAgainst(ks, weight, i, st.Effective)
		}
		if r.Available < 0 || avail < r.Available {
			r.Available = avail
		}
		if smallest < 0 || st.Effective < smallest {
			smallest = st.Effective
		}
	}
	if r.Available < 0 {
		// No token bucket: nothing limits max_tokens here.
		r.Available = 1 << 62
		r.FairShare = 1 << 62
		return r
	}
	r.Available = max(r.Available, 0)
	total := weight
	for _, j := range c.keys {
		if j != ks && (len(j.queue) > 0 || j.inflight > 0) {
			total += j.key.weight()
		}
	}
	r.FairShare = int64(float64(smallest) * weight / total)
	return r
}

// reserveAgainst is the unused protected remainder, in daily bucket i, of
// every key but ks (nil: a key not seen yet, of weight w, which would
// join the split). Callers hold c.mu.
func (c *Controller) reserveAgainst(ks *keyState, w float64, i int, eff int64) int64 {
	if ks != nil {
		return c.othersReserve(ks, i, eff)
	}
	total := c.totalWeight + w
	var sum int64
	for _, j := range c.keys {
		share := int64(c.opts.ProtectedFraction * float64(eff) * j.key.weight() / total)
		sum += max(0, share-j.today[i])
	}
	return sum
}
