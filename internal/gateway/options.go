package gateway

import (
	"net/http"
	"slices"
	"strings"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// Bedrock's X-Amzn-Bedrock-* request options go upstream with the
// gateway's credentials, so a client may send only those its route allows
// (config routes[].forward_headers, routes[].service_tiers). Always
// allowed: X-Amzn-Bedrock-Accept (the answer's content type) and
// X-Amzn-Bedrock-Service-Tier (Claude Code's ANTHROPIC_BEDROCK_SERVICE_TIER),
// whose tier the route may restrict. Anything else (a guardrail to apply,
// a trace to return, a performance setting) is refused with a message
// naming the header, rather than dropped: a client that asked for a
// guardrail must not believe it got one.
const optionPrefix = "X-Amzn-Bedrock-"

var alwaysForwarded = []string{"X-Amzn-Bedrock-Accept", bedrock.HeaderServiceTier}

// checkOptions refuses a request whose X-Amzn-Bedrock-* options its route
// does not allow.
func (g *Gateway) checkOptions(r *http.Request, m bedrock.Model, key string) error {
	if g.options == nil {
		return nil
	}
	var allowed, tiers []string
	got := false
	for k := range r.Header {
		if !strings.HasPrefix(k, optionPrefix) || slices.Contains(alwaysForwarded, k) {
			continue
		}
		if !got {
			allowed, tiers = g.options(m.Base, key)
			got = true
		}
		if !slices.ContainsFunc(allowed, func(a string) bool { return http.CanonicalHeaderKey(a) == k }) {
			return bedrock.Errorf(bedrock.ValidationException,
				"Headroom does not pass the request option %s upstream for this key and model; ask the operator to allow it (routes[].forward_headers)", k)
		}
	}
	v := r.Header.Get(bedrock.HeaderServiceTier)
	if v == "" {
		return nil
	}
	if !got {
		_, tiers = g.options(m.Base, key)
	}
	if tier := bedrock.TierLabel(v); len(tiers) > 0 && !slices.Contains(tiers, tier) {
		return bedrock.Errorf(bedrock.ValidationException,
			"Headroom: key %s may not use the %s service tier for %s (this route allows %s); unset ANTHROPIC_BEDROCK_SERVICE_TIER or ask the operator (routes[].service_tiers)",
			key, tier, m.ID, strings.Join(tiers, ", "))
	}
	return nil
}
