package bedrock

import "strings"

// HeaderServiceTier is the request header that picks Bedrock's service tier
// (Reserved, Priority, Standard, Flex); the response carries the tier used in
// the same header. Claude Code sends ANTHROPIC_BEDROCK_SERVICE_TIER in it
// (BEDROCK.md section 6).
const HeaderServiceTier = "X-Amzn-Bedrock-Service-Tier"

// Service tier labels: the known tiers, TierNone for a request that names
// none, and TierOther for anything else, so that a metric labelled with a
// client's value stays bounded.
const (
	TierReserved = "reserved"
	TierPriority = "priority"
	TierStandard = "standard"
	TierFlex     = "flex"
	TierOther    = "other"
	TierNone     = "none"
)

// TierLabel returns the bounded label of a service tier header value:
// a known tier in lower case (any spelling of its case), TierNone for an
// empty value, TierOther for anything else.
func TierLabel(v string) string {
	switch {
	case v == "":
		return TierNone
	case strings.EqualFold(v, TierReserved):
		return TierReserved
	case strings.EqualFold(v, TierPriority):
		return TierPriority
	case strings.EqualFold(v, TierStandard):
		return TierStandard
	case strings.EqualFold(v, TierFlex):
		return TierFlex
	}
	return TierOther
}
