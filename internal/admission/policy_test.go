package admission

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/headroomhq/headroom/internal/bedrock"
)

func TestClamp(t *testing.T) {
	enabled := func(maxTokens, budget int) bedrock.Request {
		return bedrock.Request{MaxTokens: maxTokens, HasMaxTokens: true, Thinking: bedrock.ThinkingEnabled, ThinkingBudget: budget}
	}
	plain := func(maxTokens int) bedrock.Request {
		return bedrock.Request{MaxTokens: maxTokens, HasMaxTokens: true}
	}
	tests := []struct {
		name string
		p    Policy
		key  Key
		r    bedrock.Request
		def  int
		want Clamped
	}{
		{"claude code default capped", Policy{}, alice, plain(32000), 64000,
			Clamped{MaxTokens: 4096, Changed: true, Header: "32000->4096"}},
		{"under the cap untouched", Policy{}, alice, plain(1000), 64000,
			Clamped{MaxTokens: 1000}},
		{"at the cap untouched", Policy{}, alice, plain(4096), 64000,
			Clamped{MaxTokens: 4096}},
		{"missing gets the cap", Policy{}, alice, bedrock.Request{}, 64000,
			Clamped{MaxTokens: 4096, Changed: true, Header: "unset->4096"}},
		{"missing gets the model default when below the cap", Policy{}, alice, bedrock.Request{}, 2048,
			Clamped{MaxTokens: 2048, Changed: true, Header: "unset->2048"}},
		{"no cap: missing gets the model default", Policy{MaxTokensCap: -1}, alice, bedrock.Request{}, 64000,
			Clamped{MaxTokens: 64000, Changed: true, Header: "unset->64000"}},
		{"no cap: large passes", Policy{MaxTokensCap: -1}, alice, plain(32000), 64000,
			Clamped{MaxTokens: 32000}},
		{"key override raises the cap", Policy{}, Key{Name: "k", MaxOutputTokens: 16000}, plain(32000), 64000,
			Clamped{MaxTokens: 16000, Changed: true, Header: "32000->16000"}},
		{"claude code thinking 32000/31999", Policy{}, alice, enabled(32000, 31999), 64000,
			Clamped{MaxTokens: 4096, ThinkingBudget: 1024, Changed: true, Header: "32000->4096, thinking 31999->1024"}},
		{"claude code with CLAUDE_CODE_MAX_OUTPUT_TOKENS=4096: 4096/4095", Policy{}, alice, enabled(4096, 4095), 64000,
			Clamped{MaxTokens: 4096, ThinkingBudget: 1024, Changed: true, Header: "4096->4096, thinking 4095->1024"}},
		{"budget kept below a lowered max_tokens", Policy{MaxTokensCap: 2000, ThinkingBudgetCap: 8000}, alice, enabled(32000, 5000), 64000,
			Clamped{MaxTokens: 2000, ThinkingBudget: 1999, Changed: true, Header: "32000->2000, thinking 5000->1999"}},
		{"cap below 1,025 with thinking: max_tokens raised to budget+1", Policy{}, Key{Name: "k", MaxOutputTokens: 1000}, enabled(32000, 2000), 64000,
			Clamped{MaxTokens: 1025, ThinkingBudget: 1024, Changed: true, Header: "32000->1025, thinking 2000->1024"}},
		{"valid small budget untouched", Policy{}, alice, enabled(3000, 1024), 64000,
			Clamped{MaxTokens: 3000, ThinkingBudget: 1024}},
		{"no budget cap", Policy{ThinkingBudgetCap: -1}, alice, enabled(4000, 3000), 64000,
			Clamped{MaxTokens: 4000, ThinkingBudget: 3000}},
		{"adaptive thinking untouched, max_tokens capped", Policy{}, alice,
			bedrock.Request{MaxTokens: 64000, HasMaxTokens: true, Thinking: bedrock.ThinkingAdaptive}, 128000,
			Clamped{MaxTokens: 4096, Changed: true, Header: "64000->4096"}},
		{"invalid client budget is not repaired", Policy{}, alice, enabled(3000, 500), 64000,
			Clamped{MaxTokens: 3000, ThinkingBudget: 500}},
		{"invalid client max_tokens passed on", Policy{}, alice, plain(-5), 64000,
			Clamped{MaxTokens: -5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Clamp(tt.p, tt.key, tt.r, tt.def)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Clamp (-want +got):\n%s", diff)
			}
			if got.ThinkingBudget >= 1024 && tt.r.ThinkingBudget >= 1024 && got.ThinkingBudget >= got.MaxTokens {
				t.Errorf("invalid result: budget %d >= max_tokens %d", got.ThinkingBudget, got.MaxTokens)
			}
		})
	}
}
