package keys

import "time"

// DefaultMissRate is how many secrets absent from the cache the Registry
// looks up in the store per second, at most (with as large a burst). New
// keys reach the cache by Refresh anyway, so the store is asked only for a
// key created since the last Refresh, or a bad one: a handful a second
// even for a large team.
const DefaultMissRate = 20

// missBudget is a token bucket for store lookups of uncached secrets, so
// that a client trying random secrets, each new to the negative cache,
// costs the store at most rate queries a second. Guarded by Registry.mu;
// time comes from the Registry's clock.
type missBudget struct {
	rate   float64 // lookups per second, and the burst; 0: unlimited
	tokens float64
	last   time.Time
	dry    bool // the last take failed (the warning is logged once per dry spell)
}

func newMissBudget(rate int) missBudget {
	return missBudget{rate: float64(rate), tokens: float64(rate)}
}

// take spends one lookup at now, or reports there is none left.
func (b *missBudget) take(now time.Time) bool {
	if b.rate <= 0 {
		return true
	}
	if !b.last.IsZero() {
		b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
