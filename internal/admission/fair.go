package admission

// Fair order is start-time fair queueing on tokens divided by weight, with
// one twist: a request's cost is known only when it ends, and the
// reservation it is admitted with can be ten times that (the seed profile
// reserves 20,487 for a request that costs 2,000-4,000). So a key's tag
// is what its ended requests cost plus what its requests in flight are
// expected to cost (below), all divided by its weight: exact once they end.
//
// A request in flight is charged its reservation scaled by its key's
// recent ratio of cost to reservation (the controller's, for a key with no
// history yet; 1 before anything settled: unmeasured), or what Adjust
// reported if more. Charging whole reservations instead would let a key
// that is owed service (one that came back, or whose burst was corrected
// down) take it back only a request or two per refund, as each grant would
// overstate its tag until the request ends.
//
// The virtual time a key coming back from idle is moved up to (no credit
// for idle time) is the start tag of the latest grant, as in start-time
// fair queueing, but counting only measured charges: an unmeasured one is
// the whole reservation, and a virtual time that kept it after the request
// was charged its real cost would put every key that comes back behind a
// burst that has long since been corrected. So a key coming back may be
// credited what others have in flight unmeasured, never charged for it.

// ratioLearn is the memory of the cost-to-reservation ratio: each
// settlement moves it 1/ratioLearn of the way to its own ratio (the first
// one sets it).
const ratioLearn = 4

// tag is the key's start tag: the virtual time its next request starts at.
func (ks *keyState) tag() float64 { return ks.done + ks.held }

// join moves a key whose queue was empty up to the virtual time: it gets
// no credit for the time it sent nothing. What it has in flight counts
// toward the tag as it is charged now.
func (c *Controller) join(ks *keyState) {
	ks.done = max(ks.done, c.vtime-ks.held)
}

// fairGrant books a grant of t in fair order. Callers hold c.mu.
func (c *Controller) fairGrant(t *Ticket) {
	ks := t.k
	c.vtime = max(c.vtime, ks.done+ks.measured)
	est, measured := c.expected(ks, t.req.tokens())
	t.vcharge = est / ks.key.weight()
	ks.held += t.vcharge
	if measured {
		t.vmeasured = t.vcharge
		ks.measured += t.vmeasured
	}
}

// expected is what a request reserving tokens is expected to cost, and
// whether that comes from a measured ratio.
func (c *Controller) expected(ks *keyState, tokens int64) (float64, bool) {
	switch {
	case ks.learned:
		return ks.ratio * float64(tokens), true
	case c.learned:
		return c.ratio * float64(tokens), true
	}
	return float64(tokens), false
}

// refair raises t's charge in fair order to what Adjust reported, tokens,
// when that is more than its expected cost.
func (c *Controller) refair(t *Ticket, tokens int64) {
	ks := t.k
	v := float64(tokens) / ks.key.weight()
	if v <= t.vcharge {
		return
	}
	ks.held += v - t.vcharge
	ks.measured += v - t.vmeasured
	t.vcharge, t.vmeasured = v, v
}

// unfair replaces t's charge in fair order by its final cost, tokens, and
// learns from it when the upstream ran the request (ran). Callers take t
// out of flight next (release).
func (c *Controller) unfair(t *Ticket, tokens int64, ran bool) {
	ks := t.k
	ks.done += float64(tokens) / ks.key.weight()
	ks.held -= t.vcharge
	ks.measured -= t.vmeasured
	t.vcharge, t.vmeasured = 0, 0
	if ks.inflight <= 1 {
		ks.held, ks.measured = 0, 0 // no rounding left once nothing is in flight
	}
	if !ran || t.req.tokens() <= 0 {
		return
	}
	r := min(float64(tokens)/float64(t.req.tokens()), 1)
	learn(&ks.ratio, &ks.learned, r)
	learn(&c.ratio, &c.learned, r)
}

func learn(avg *float64, learned *bool, x float64) {
	if !*learned {
		*avg, *learned = x, true
		return
	}
	*avg += (x - *avg) / ratioLearn
}
