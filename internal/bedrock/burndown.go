package bedrock

// BurndownRule maps models whose foundation ID contains Match to the number
// of quota tokens one output token consumes.
type BurndownRule struct {
	Match string `yaml:"match" json:"match"`
	Rate  int    `yaml:"rate" json:"rate"`
}

// Burndown is an ordered table of rules; the first match wins and models that
// match no rule burn down at 1.
type Burndown []BurndownRule

// DefaultBurndown is AWS's burndown table as BEDROCK.md section 1 lists it
// (AWS User Guide, quotas-token-burndown). More specific rules come first.
// Families AWS's page does not name are marked unconfirmed: their rate is
// an assumption, and `accounting.burndown` in either config replaces it.
func DefaultBurndown() Burndown {
	return Burndown{
		// Claude 4.8: 15 (section 1).
		{Match: "anthropic.claude-4-8", Rate: 15},
		{Match: "anthropic.claude-opus-4-8", Rate: 15},
		{Match: "anthropic.claude-sonnet-4-8", Rate: 15},
		{Match: "anthropic.claude-haiku-4-8", Rate: 15},
		// Opus 5.5: 10 (section 1).
		{Match: "anthropic.claude-opus-5-5", Rate: 10},
		// Sonnet 5.5 and Haiku 5.5: unconfirmed by AWS; assumed as the
		// rest of the 5 generations.
		{Match: "anthropic.claude-sonnet-5-5", Rate: 10},
		{Match: "anthropic.claude-haiku-5", Rate: 10},
		// Sonnet 5, Opus 5, Fable 5.1: 10 (section 1). Fable 5 and 5.2 are
		// unconfirmed and share the rule.
		{Match: "anthropic.claude-sonnet-5", Rate: 10},
		{Match: "anthropic.claude-opus-5", Rate: 10},
		{Match: "anthropic.claude-fable-5", Rate: 10},
		// 3.7 Sonnet and every later Claude up to 4.7 (Sonnet 4, 4.5, 4.6;
		// Opus 4, 4.1, 4.5, 4.6, 4.7; Haiku 4.5): 5 (section 1).
		{Match: "anthropic.claude-3-7-sonnet", Rate: 5},
		{Match: "anthropic.claude-sonnet-4", Rate: 5},
		{Match: "anthropic.claude-opus-4", Rate: 5},
		{Match: "anthropic.claude-haiku-4", Rate: 5},
		// Older Claude: 1 (section 1), as every model no rule names.
		{Match: "anthropic.claude-3-5", Rate: 1},
		{Match: "anthropic.claude-3-haiku", Rate: 1},
	}
}

// Rate returns the output burndown rate for m.
func (b Burndown) Rate(m Model) int {
	for _, r := range b {
		if MatchModel(m.Base, r.Match) {
			return r.Rate
		}
	}
	return 1
}
