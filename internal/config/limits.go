package config

import (
	"strings"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// Limits bound what clients can make the gateway hold, whoever they are.
type Limits struct {
	// MaxConnections caps the client connections open at once. At the cap
	// the gateway stops accepting (new connections wait in the listen
	// backlog until one closes) and logs it once. Default 4096; keep it
	// below the process's descriptor limit (ulimit -n) minus what the
	// upstreams and the store need.
	MaxConnections int `yaml:"max_connections"`
	// MaxBodyMemoryMB bounds the request-body memory held at once, in MiB;
	// a body that would pass it is refused with a 429 the client retries.
	// Default 256.
	MaxBodyMemoryMB int `yaml:"max_body_memory_mb"`
	// BodyReadTimeout bounds how long a client may take to send its
	// request body once its headers are in. Default 60s.
	BodyReadTimeout Duration `yaml:"body_read_timeout"`
}

// DefaultLimits are the limits of a file that sets none.
func DefaultLimits() Limits {
	return Limits{MaxConnections: 4096, MaxBodyMemoryMB: 256, BodyReadTimeout: Duration{60 * time.Second}}
}

func (l Limits) validate(p *Problems) {
	if l.MaxConnections <= 0 {
		p.add("limits.max_connections: %d must be positive", l.MaxConnections)
	}
	if l.MaxBodyMemoryMB <= 0 {
		p.add("limits.max_body_memory_mb: %d must be positive", l.MaxBodyMemoryMB)
	}
	if l.BodyReadTimeout.Duration <= 0 {
		p.add("limits.body_read_timeout: %v must be positive", l.BodyReadTimeout.Duration)
	}
}

// validateUnmatched checks an upstream's unmatched policy and the model
// identifiers its inference profiles map to.
func validateUnmatched(at string, u Upstream, p *Problems) {
	switch u.Unmatched {
	case "", UnmatchedRefuse, UnmatchedUnlimited:
	default:
		p.add("%s.unmatched: %q is not refuse or unlimited", at, u.Unmatched)
	}
	for k, v := range u.InferenceProfiles {
		if _, err := bedrock.ParseModel(v); err != nil || strings.HasPrefix(v, "arn:") && strings.Contains(v, ":application-inference-profile/") {
			p.add("%s.inference_profiles[%s]: %q is not a model identifier", at, k, v)
		}
	}
}

// validateRouteOptions checks a route's forwarded headers and tiers.
func validateRouteOptions(at string, r Route, p *Problems) {
	for _, h := range r.ForwardHeaders {
		if len(h) <= len("X-Amzn-Bedrock-") || !strings.EqualFold(h[:len("X-Amzn-Bedrock-")], "X-Amzn-Bedrock-") {
			p.add("%s.forward_headers: %q is not an X-Amzn-Bedrock-* request option", at, h)
		}
	}
	for _, t := range r.ServiceTiers {
		switch t {
		case bedrock.TierReserved, bedrock.TierPriority, bedrock.TierStandard, bedrock.TierFlex:
		default:
			p.add("%s.service_tiers: %q is not reserved, priority, standard or flex", at, t)
		}
	}
}
