package gateway

import (
	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/metrics"
	"github.com/headroomhq/headroom/internal/quota"
)

// charge owns one admitted request's ticket and guarantees it ends exactly
// once. Its guard, deferred right after admission, ends a ticket that no
// other path ended: after a panic, a client gone before the answer, or any
// early return. It settles rather than cancels whenever the upstream may
// have run the model, so nothing generated is refunded wholesale.
type charge struct {
	g     *Gateway
	u     *Upstream
	t     *admission.Ticket
	key   string
	model bedrock.Model
	rate  int
	set   quota.Set
	// mantle charges as Mantle counts (input and output apart, no
	// burndown) instead of the runtime's combined tokens.
	mantle bool

	reserved quota.Cost // the admission charge
	held     quota.Cost // what the ticket holds now (raised while streaming)
	rawInput int        // uncorrected input estimate, for learning
	estInput int        // corrected input estimate, charged when usage is unknown

	bound   usageBound // the most the request could have used
	clamped bool       // a reported usage was cut to bound (logged once)

	sent      bool // the request reached the upstream at least once
	inputOnly bool // the client left before an answer: charge the input
	ended     bool
}

// renew replaces the ticket after a re-admission (upstream throttle).
func (ch *charge) renew(t *admission.Ticket) {
	ch.t, ch.ended, ch.held = t, false, ch.reserved
	ch.countReserved()
}

// move replaces the ticket after a failover to another upstream.
func (ch *charge) move(pl placement, t *admission.Ticket) {
	ch.u, ch.set, ch.mantle, ch.reserved = pl.u, pl.set, pl.u.mantle, pl.cost
	ch.renew(t)
}

// adjust raises the held charge when the usage streamed so far costs more
// than is held; like Bedrock (and the emulator), it never lowers it before
// the end, so the mirror stays at least as strict as the upstream.
func (ch *charge) adjust(u bedrock.Usage) {
	if ch.ended {
		return
	}
	u = ch.bounded(u)
	if u.InputTokens == 0 {
		u.InputTokens = ch.estInput
	}
	if cost := ch.cost(u); !ch.held.Covers(cost) {
		ch.t.Adjust(ch.g.now(), cost)
		ch.held = ch.held.Max(cost)
	}
}

// cost is what usage u costs the upstream's ledger: the runtime's combined
// input + cacheWrite + output × burndown, or Mantle's input + cacheWrite
// and output apart (BEDROCK.md section 6). On Mantle the first adjust
// (the stream's first usage) thus counts the input as used, as Mantle does
// from admission, and the rest of the input hold, max_tokens, stays held
// to the end.
func (ch *charge) cost(u bedrock.Usage) quota.Cost {
	if ch.mantle {
		return quota.Cost{Input: bedrock.MantleInput(u), Output: bedrock.MantleOutput(u)}
	}
	return quota.Tokens(ch.g.profile.Settlement(u, ch.rate))
}

// settle ends the ticket at the cost of u and returns its total.
func (ch *charge) settle(u bedrock.Usage) int64 {
	cost := ch.cost(ch.bounded(u))
	ch.settleAt(cost)
	return cost.Total()
}

// settleAt ends the ticket at a charge in tokens. An extra charge lands at
// once; a refund waits settleDelay, because the upstream settles its own
// reservation only after it sent the last byte: handing the refund to the
// next request the moment that byte arrives would let it reach the
// upstream before the upstream has given the room back. The ticket ends
// now (fair shares and the key's usage take the final cost at once); the
// admission controller holds the ledger's refund back and lets it go on
// its own clock, with no timer or goroutine per request.
func (ch *charge) settleAt(cost quota.Cost) {
	if ch.ended {
		return
	}
	// Settle first: whatever a metric does afterwards (a panic included),
	// the reservation has ended.
	ch.ended = true
	ch.t.SettleAfter(ch.g.now(), cost, ch.g.settleDelay)
	ch.count(cost)
	ch.record(cost)
}

// cancel ends the ticket giving everything back: the upstream refused the
// request without running it.
func (ch *charge) cancel() {
	if ch.ended {
		return
	}
	ch.ended = true
	ch.t.Cancel(ch.g.now())
}

// count adds a settled cost to the metrics, in each bucket the part it
// counts. Costs saturate and are never negative (bedrock.Profile); the
// check keeps a counter's Add, which panics on a negative value, away from
// one all the same.
func (ch *charge) count(cost quota.Cost) {
	l := ch.u.Ledger()
	ch.set.Each(func(i int) {
		s := l.Spec(i)
		if n := cost.Of(s.Kind); n > 0 && s.Kind != quota.RequestsPerMinute {
			ch.g.m.SettledTokens.WithLabelValues(ch.key, s.Name).Add(float64(n))
		}
	})
}

func (ch *charge) countReserved() {
	l := ch.u.Ledger()
	ch.set.Each(func(i int) {
		s := l.Spec(i)
		if n := ch.reserved.Of(s.Kind); n > 0 && s.Kind != quota.RequestsPerMinute {
			ch.g.m.ReservedTokens.WithLabelValues(ch.key, s.Name).Add(float64(n))
		}
	})
}

// finish settles a passed-through answer with what it told us: Bedrock's
// own usage when it gave it, else the usage metered so far (a stream cut
// by the client or the upstream), with the input estimate when the model
// had not even reported its input. A non-streaming answer without usage
// keeps its reservation: the model ran, and how much it wrote is unknown.
func (ch *charge) finish(res result, c *call) {
	u := ch.bounded(res.usage)
	if in := u.InputTokens + u.CacheReadInputTokens + u.CacheWriteInputTokens; res.known || c.stream && in > 0 {
		// What the model reported (a cut stream's so far), before any
		// estimate fills a gap: the convention counts reported tokens.
		ch.g.m.GenAI.ObserveTokens(metrics.GenAIOperationChat, ch.model.ID, in, u.OutputTokens)
	}
	switch {
	case res.known:
		actual := u.InputTokens + u.CacheWriteInputTokens
		if ch.g.profile.CacheReadAtAdmission {
			actual += u.CacheReadInputTokens
		}
		ch.g.estimator.learn(ch.model.Base, ch.rawInput, actual)
		c.settled = ch.settle(u)
	case !c.stream:
		cost := ch.held.Max(ch.cost(u))
		c.settled = cost.Total()
		ch.settleAt(cost)
	default:
		if u.InputTokens == 0 && u.CacheReadInputTokens == 0 && u.CacheWriteInputTokens == 0 {
			u.InputTokens = ch.estInput
		}
		c.settled = ch.settle(u)
	}
}

// guard ends a ticket no other path ended. Deferred; it runs during a
// panic too.
func (ch *charge) guard(c *call) {
	switch {
	case ch.ended:
		return
	case ch.inputOnly:
		c.settled = ch.settle(bedrock.Usage{InputTokens: ch.estInput})
	case ch.sent:
		// The outcome is unknown (a panic after sending): keep what is held.
		c.settled = ch.held.Total()
		ch.settleAt(ch.held)
	default:
		ch.cancel()
	}
}

// bounded cuts reported usage to what the request could have used
// (usageBound), logging the first cut and counting each field cut.
func (ch *charge) bounded(u bedrock.Usage) bedrock.Usage {
	b, cut := ch.bound.clamp(u)
	if len(cut) == 0 {
		return b
	}
	if !ch.clamped {
		ch.clamped = true
		ch.g.log.Warn("upstream reported more usage than the request could have used; charged the bound instead",
			"upstream", ch.u.Name, "key", ch.key, "model", ch.model.ID,
			"reported_input", u.InputTokens, "reported_output", u.OutputTokens,
			"reported_cache_read", u.CacheReadInputTokens, "reported_cache_write", u.CacheWriteInputTokens,
			"bound_input", ch.bound.input, "bound_output", ch.bound.output)
		for _, f := range cut {
			ch.g.m.UsageClamps.WithLabelValues(ch.u.Name, f).Inc()
		}
	}
	return b
}
