package gateway

import (
	"sync"
	"time"
)

// FailoverOptions tune the circuit breaker (config.Failover).
type FailoverOptions struct {
	// TripAfter failures in a row take an upstream out (default 3).
	TripAfter int
	// OutFor is how long it stays out before a probe (default 10 s); each
	// failed probe doubles it, up to MaxOutFor (default 5 min).
	OutFor, MaxOutFor time.Duration
}

func (o FailoverOptions) withDefaults() FailoverOptions {
	if o.TripAfter <= 0 {
		o.TripAfter = 3
	}
	if o.OutFor <= 0 {
		o.OutFor = 10 * time.Second
	}
	if o.MaxOutFor < o.OutFor {
		o.MaxOutFor = max(o.OutFor, 5*time.Minute)
	}
	return o
}

// Breaker states (/v1/status, headroom_upstream_out).
const (
	BreakerIn      = "in"      // in its routes
	BreakerOut     = "out"     // taken out until its probe
	BreakerProbing = "probing" // one request probes it
)

// breaker takes an upstream that keeps failing out of its routes for a
// while and lets one request probe it back in. Time is a parameter.
type breaker struct {
	mu      sync.Mutex
	fails   int // failures in a row
	out     bool
	since   time.Time // out since
	until   time.Time // out until: then a probe
	outFor  time.Duration
	probeAt time.Time // a probe was let through at; zero: none
	cause   string    // of the last failure
}

// allow reports whether the upstream may be tried at now: it is in, or
// its time out is over and no probe is under way (this request becomes
// the probe). A probe that never reports back (its request went
// elsewhere or ended early) is replaced after o.OutFor.
func (b *breaker) allow(now time.Time, o FailoverOptions) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.out {
		return true
	}
	if now.Before(b.until) {
		return false
	}
	if !b.probeAt.IsZero() && now.Sub(b.probeAt) < o.OutFor {
		return false
	}
	b.probeAt = now
	return true
}

// success records an answer: the upstream is in again. It reports whether
// that brought it back.
func (b *breaker) success() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	back := b.out
	b.fails, b.out, b.outFor, b.probeAt, b.cause = 0, false, 0, time.Time{}, ""
	return back
}

// failure records a failure at now; trip takes the upstream out at once
// (a daily quota spent). It reports whether this failure took it out.
func (b *breaker) failure(now time.Time, cause string, trip bool, o FailoverOptions) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fails++
	b.cause = cause
	if b.out {
		if b.probeAt.IsZero() {
			return false // a request sent before it went out
		}
		// The probe failed: out again, for twice as long.
		b.outFor = min(2*b.outFor, o.MaxOutFor)
		b.until, b.probeAt = now.Add(b.outFor), time.Time{}
		return false
	}
	if !trip && b.fails < o.TripAfter {
		return false
	}
	b.out, b.since, b.outFor, b.probeAt = true, now, o.OutFor, time.Time{}
	b.until = now.Add(b.outFor)
	return true
}

// BreakerState is an upstream's place in its routes, for /v1/status.
type BreakerState struct {
	State string `json:"state"`
	// Cause is the last failure's ("unavailable", "timeout", "connection",
	// "throttled", "daily_quota").
	Cause        string    `json:"cause,omitempty"`
	FailsInARow  int       `json:"failures_in_a_row,omitempty"`
	OutSince     time.Time `json:"out_since,omitzero"`
	ProbeAfter   time.Time `json:"probe_after,omitzero"`
	ProbeStarted time.Time `json:"probe_started,omitzero"`
}

func (b *breaker) state() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := BreakerState{State: BreakerIn, Cause: b.cause, FailsInARow: b.fails}
	if b.out {
		s.State, s.OutSince, s.ProbeAfter, s.ProbeStarted = BreakerOut, b.since, b.until, b.probeAt
		if !b.probeAt.IsZero() {
			s.State = BreakerProbing
		}
	}
	return s
}

// Failure causes (headroom_failovers_total's cause, BreakerState.Cause).
const (
	causeThrottled   = "throttled"
	causeDailyQuota  = "daily_quota"
	causeUnavailable = "unavailable"
	causeConnection  = "connection"
)

// upstreamFailed records a failure of u in its circuit breaker; trip takes
// it out at once.
func (g *Gateway) upstreamFailed(u *Upstream, cause string, trip bool) {
	now := g.now()
	if !u.brk.failure(now, cause, trip, g.breakerOpts) {
		return
	}
	g.m.UpstreamOut.WithLabelValues(u.Name).Set(1)
	g.log.Warn("upstream taken out of its routes", "upstream", u.Name, "cause", cause,
		"probe_in", g.breakerOpts.OutFor.String())
}

// upstreamAnswered records an answer of u: it is in its routes again.
func (g *Gateway) upstreamAnswered(u *Upstream) {
	if u.brk.success() {
		g.m.UpstreamOut.WithLabelValues(u.Name).Set(0)
		g.log.Info("upstream back in its routes", "upstream", u.Name)
	}
}
