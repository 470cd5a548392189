package admission

import (
	"strconv"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// Policy caps what one request may reserve. The cap is the lever that
// matters most (BEDROCK.md section 1): a request reserves its max_tokens ×
// the burndown rate at admission, so Claude Code's default 32,000 reserves
// 160,000 tokens per call on a 5× model and 4,096 reserves 20,480, about 8×
// more calls from the same quota. The price of a low cap is truncation: a
// response longer than the cap stops with stop_reason "max_tokens", and a
// large file edit may not fit in 4,096 tokens, so raise it per model or per
// key when that shows up in the truncation metric.
type Policy struct {
	// MaxTokensCap is the largest max_tokens passed on (0: 4,096; negative:
	// no cap, and a missing max_tokens gets the model's default).
	MaxTokensCap int
	// ThinkingBudgetCap is the largest thinking.budget_tokens passed on
	// (0: 1,024; negative: no cap).
	ThinkingBudgetCap int
}

const (
	// DefaultMaxTokensCap is the seed's recommended CLAUDE_CODE_MAX_OUTPUT_TOKENS.
	DefaultMaxTokensCap = 4096
	// MinThinkingBudget is Bedrock's minimum thinking.budget_tokens.
	MinThinkingBudget = 1024
)

// Clamped is the output limit a request goes upstream with.
type Clamped struct {
	MaxTokens      int
	ThinkingBudget int // 0 unless thinking is enabled
	// Changed is set when MaxTokens or ThinkingBudget differ from the
	// request (a missing max_tokens filled in counts as a change).
	Changed bool
	// Header is the value of x-headroom-max-tokens when Changed:
	// "32000->4096", "unset->4096", with ", thinking 31999->1024" appended
	// when the budget changed.
	Header string
}

// Clamp applies p (or the key's MaxOutputTokens, which replaces the cap
// when set) to r; modelDefault is the model's own output limit, used for a
// missing max_tokens when there is no cap.
//
// Rules: a missing max_tokens gets the cap (never more than the model's
// default); a larger one is lowered to it. With enabled thinking the budget
// is lowered to the thinking cap, never below Bedrock's minimum 1,024, and
// kept below max_tokens: when the budget would reach max_tokens the budget
// is lowered to max_tokens-1 if that is still >= 1,024, and otherwise
// max_tokens is raised to budget+1 (1,025 at least), the smallest valid
// request, even above the cap. Adaptive thinking is left untouched. Values
// the client sent that are already invalid (max_tokens <= 0, a budget below
// 1,024) are passed on unchanged for the upstream to reject: Clamp never
// turns a valid request into an invalid one, nor silently repairs one.
func Clamp(p Policy, key Key, r bedrock.Request, modelDefault int) Clamped {
	limit := p.MaxTokensCap
	if limit == 0 {
		limit = DefaultMaxTokensCap
	}
	if key.MaxOutputTokens > 0 {
		limit = key.MaxOutputTokens
	}
	if limit > 0 && modelDefault > 0 {
		limit = min(limit, modelDefault)
	}

	out := Clamped{MaxTokens: r.MaxTokens}
	switch {
	case !r.HasMaxTokens && limit > 0:
		out.MaxTokens = limit
	case !r.HasMaxTokens:
		out.MaxTokens = modelDefault
	case limit > 0 && r.MaxTokens > limit:
		out.MaxTokens = limit
	}

	if r.Thinking == bedrock.ThinkingEnabled {
		out.ThinkingBudget = r.ThinkingBudget
		budgetCap := p.ThinkingBudgetCap
		if budgetCap == 0 {
			budgetCap = MinThinkingBudget
		}
		if budgetCap > 0 && out.ThinkingBudget > budgetCap {
			out.ThinkingBudget = max(budgetCap, MinThinkingBudget)
		}
		changed := out.MaxTokens != r.MaxTokens || out.ThinkingBudget != r.ThinkingBudget
		if changed && out.ThinkingBudget >= MinThinkingBudget && out.ThinkingBudget >= out.MaxTokens && out.MaxTokens > 0 {
			if out.MaxTokens-1 >= MinThinkingBudget {
				out.ThinkingBudget = out.MaxTokens - 1
			} else {
				out.MaxTokens = out.ThinkingBudget + 1
			}
		}
	}

	maxChanged := !r.HasMaxTokens || out.MaxTokens != r.MaxTokens
	budgetChanged := r.Thinking == bedrock.ThinkingEnabled && out.ThinkingBudget != r.ThinkingBudget
	out.Changed = maxChanged || budgetChanged
	if out.Changed {
		from := "unset"
		if r.HasMaxTokens {
			from = strconv.Itoa(r.MaxTokens)
		}
		out.Header = from + "->" + strconv.Itoa(out.MaxTokens)
		if budgetChanged {
			out.Header += ", thinking " + strconv.Itoa(r.ThinkingBudget) + "->" + strconv.Itoa(out.ThinkingBudget)
		}
	}
	return out
}
