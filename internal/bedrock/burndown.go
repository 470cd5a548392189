package bedrock

import "strings"

// BurndownRule maps models whose foundation ID contains Match to the number
// of quota tokens one output token consumes.
type BurndownRule struct {
	Match string `yaml:"match" json:"match"`
	Rate  int    `yaml:"rate" json:"rate"`
}

// Burndown is an ordered table of rules; the first match wins and models that
// match no rule burn down at 1.
type Burndown []BurndownRule

// DefaultBurndown is AWS's burndown table as BEDROCK.md section 1 lists it.
// More specific rules come first.
func DefaultBurndown() Burndown {
	return Burndown{
		{Match: "anthropic.claude-4-8", Rate: 15},
		{Match: "anthropic.claude-opus-4-8", Rate: 15},
		{Match: "anthropic.claude-sonnet-4-8", Rate: 15},
		{Match: "anthropic.claude-haiku-4-8", Rate: 15},
		{Match: "anthropic.claude-sonnet-5", Rate: 10},
		{Match: "anthropic.claude-opus-5", Rate: 10},
		{Match: "anthropic.claude-fable-5", Rate: 10},
		{Match: "anthropic.claude-3-7-sonnet", Rate: 5},
		{Match: "anthropic.claude-sonnet-4", Rate: 5},
		{Match: "anthropic.claude-opus-4", Rate: 5},
		{Match: "anthropic.claude-haiku-4", Rate: 5},
		{Match: "anthropic.claude-3-5", Rate: 1},
		{Match: "anthropic.claude-3-haiku", Rate: 1},
	}
}

// Rate returns the output burndown rate for m.
func (b Burndown) Rate(m Model) int {
	for _, r := range b {
		if strings.Contains(m.Base, r.Match) {
			return r.Rate
		}
	}
	return 1
}
