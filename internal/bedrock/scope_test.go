package bedrock

import "testing"

func TestScopeMatches(t *testing.T) {
	onDemand := Model{Base: "anthropic.claude-sonnet-4-20250514-v1:0"}
	crossRegion := Model{Base: "anthropic.claude-sonnet-4-20250514-v1:0", Geo: "us"}
	haiku := Model{Base: "anthropic.claude-haiku-4-5-20251001-v1:0", Geo: "global"}
	tests := []struct {
		name   string
		scope  Scope
		region string
		m      Model
		want   bool
	}{
		{"account-wide", Scope{}, "eu-west-1", haiku, true},
		{"region match", Scope{Regions: []string{"us-east-1", "us-west-2"}}, "us-west-2", onDemand, true},
		{"region miss", Scope{Regions: []string{"us-east-1"}}, "eu-west-1", onDemand, false},
		{"model group", Scope{Models: []string{"claude-sonnet-4"}}, "us-east-1", crossRegion, true},
		{"model group miss", Scope{Models: []string{"claude-sonnet-4"}}, "us-east-1", haiku, false},
		{"second model pattern", Scope{Models: []string{"nova", "haiku-4-5"}}, "us-east-1", haiku, true},
		{"on-demand only: on-demand", Scope{Inference: InferenceOnDemand}, "us-east-1", onDemand, true},
		{"on-demand only: cross-region", Scope{Inference: InferenceOnDemand}, "us-east-1", crossRegion, false},
		{"cross-region only: cross-region", Scope{Inference: InferenceCrossRegion}, "us-east-1", crossRegion, true},
		{"cross-region only: on-demand", Scope{Inference: InferenceCrossRegion}, "us-east-1", onDemand, false},
		{"all three", Scope{Regions: []string{"us-east-1"}, Models: []string{"sonnet-4"}, Inference: InferenceCrossRegion}, "us-east-1", crossRegion, true},
		{"all three, wrong region", Scope{Regions: []string{"us-east-1"}, Models: []string{"sonnet-4"}, Inference: InferenceCrossRegion}, "us-east-2", crossRegion, false},
	}
	for _, tt := range tests {
		if got := tt.scope.Matches(tt.region, tt.m); got != tt.want {
			t.Errorf("%s: Matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}
