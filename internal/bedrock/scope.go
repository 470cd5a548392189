package bedrock

import (
	"slices"
)

// Inference says which quota family a call belongs to: Bedrock meters
// on-demand (single-region) calls and cross-region inference profiles against
// separate quotas (BEDROCK.md section 2).
type Inference string

const (
	InferenceAny         Inference = ""
	InferenceOnDemand    Inference = "on-demand"
	InferenceCrossRegion Inference = "cross-region"
)

// Scope selects the requests a quota bucket applies to. An empty field
// matches everything, so the zero Scope is account-wide.
type Scope struct {
	// Regions the bucket covers; empty means every region.
	Regions []string `yaml:"regions,omitempty" json:"regions,omitempty"`
	// Models are substrings of the foundation model ID (Model.Base), so one
	// entry can name a model group such as "claude-sonnet-4", or with a
	// trailing '$' one model ("claude-opus-5$", not Opus 5.5; see
	// MatchModel); empty means every model.
	Models []string `yaml:"models,omitempty" json:"models,omitempty"`
	// Inference limits the bucket to on-demand or cross-region calls.
	Inference Inference `yaml:"inference,omitempty" json:"inference,omitempty"`
}

// Matches reports whether a call to model m in region draws from the bucket.
func (s Scope) Matches(region string, m Model) bool {
	if len(s.Regions) > 0 && !slices.Contains(s.Regions, region) {
		return false
	}
	switch s.Inference {
	case InferenceOnDemand:
		if m.CrossRegion() {
			return false
		}
	case InferenceCrossRegion:
		if !m.CrossRegion() {
			return false
		}
	}
	if len(s.Models) == 0 {
		return true
	}
	for _, pat := range s.Models {
		if MatchModel(m.Base, pat) {
			return true
		}
	}
	return false
}
