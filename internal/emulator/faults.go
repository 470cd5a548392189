package emulator

import (
	"strings"
	"sync/atomic"

	"github.com/headroomhq/headroom/internal/config"
)

// HeaderFault forces faults on one request: a comma-separated list of
// FaultUnavailable, FaultThrottleMidStream and FaultSlow.
const HeaderFault = "X-Headroom-Emulator-Fault"

// Fault names for HeaderFault.
const (
	FaultUnavailable       = "unavailable"
	FaultThrottleMidStream = "throttle-mid-stream"
	FaultSlow              = "slow"
)

// faultPlan is what goes wrong with one request.
type faultPlan struct {
	unavailable       bool // 503 before admission
	throttleMidStream bool // a throttlingException after some output
	slow              bool // added latency before the first byte
}

// faults draws fault plans. The n-th request to arrive (since the start or
// the last reset) always gets the same plan for the same seed and rates, so
// a run is repeatable.
type faults struct {
	cfg config.Faults
	n   atomic.Uint64
}

func (f *faults) reset() { f.n.Store(0) }

// next draws the plan of the next request; forced is the HeaderFault value.
func (f *faults) next(forced string) faultPlan {
	n := f.n.Add(1)
	var p faultPlan
	if f.cfg.UnavailableRate > 0 || f.cfg.MidStreamThrottleRate > 0 || f.cfg.SlowRate > 0 {
		rng := prng(f.cfg.Seed ^ n*0xd1b54a32d192ed03)
		p.unavailable = rng.float() < f.cfg.UnavailableRate
		p.throttleMidStream = rng.float() < f.cfg.MidStreamThrottleRate
		p.slow = rng.float() < f.cfg.SlowRate
	}
	for forced != "" {
		var name string
		name, forced, _ = strings.Cut(forced, ",")
		switch strings.TrimSpace(name) {
		case FaultUnavailable:
			p.unavailable = true
		case FaultThrottleMidStream:
			p.throttleMidStream = true
		case FaultSlow:
			p.slow = true
		}
	}
	return p
}
