package gateway

import (
	"github.com/headroomhq/headroom/internal/bedrock"
)

// Reported usage is bounded by what the request could have used, so that
// one wrong or hostile upstream answer (1e18 output tokens, say) cannot
// spend a bucket or a key's budget for the day, nor be persisted and
// survive a restart. The bounds are generous, so that no true count is
// ever cut:
//   - output: the max_tokens the upstream was sent (Bedrock stops there;
//     thinking counts within it), plus outputSlackPercent and
//     outputSlackTokens for rounding;
//   - input (input + cache read + cache write, the whole prompt):
//     inputBytesFactor tokens per byte of the request body, plus
//     inputSlackTokens for what Bedrock adds (a tool-use system prompt),
//     and never above maxInputTokens. No tokenizer Claude uses gives
//     more than one token per byte of text, and images and documents
//     cost far fewer tokens than their base64 bytes; the factor leaves
//     room for dense multi-page PDFs.
//
// A count over its bound is cut to the bound, logged and counted
// (headroom_usage_clamped_total); the settlement, the estimator and the
// saved day's usage only ever see the bounded value.
const (
	outputSlackPercent = 1
	outputSlackTokens  = 64
	inputBytesFactor   = 4
	inputSlackTokens   = 16_384
	// maxInputTokens is twice the largest context window of any Claude
	// model on Bedrock (1M).
	maxInputTokens = 2_000_000
)

// usageBound is the most one request could have used.
type usageBound struct {
	input, output int
}

// newUsageBound is the bound for a request of bodyLen bytes sent upstream
// with maxTokens.
func newUsageBound(bodyLen, maxTokens int) usageBound {
	in := min(bodyLen, maxInputTokens)*inputBytesFactor + inputSlackTokens
	out := maxTokens + maxTokens/100*outputSlackPercent + outputSlackTokens
	return usageBound{input: min(in, maxInputTokens), output: max(out, outputSlackTokens)}
}

// clamp cuts u to the bound: negative counts to 0, output to the output
// bound, and the input counts, in proportion, to the input bound. It
// reports which fields it cut ("input", "output").
func (b usageBound) clamp(u bedrock.Usage) (bedrock.Usage, []string) {
	var cut []string
	u.InputTokens = max(u.InputTokens, 0)
	u.OutputTokens = max(u.OutputTokens, 0)
	u.CacheReadInputTokens = max(u.CacheReadInputTokens, 0)
	u.CacheWriteInputTokens = max(u.CacheWriteInputTokens, 0)
	if u.OutputTokens > b.output {
		u.OutputTokens = b.output
		cut = append(cut, "output")
	}
	// Each term alone first, so that the sum cannot overflow.
	over := u.InputTokens > b.input || u.CacheReadInputTokens > b.input || u.CacheWriteInputTokens > b.input
	in := min(u.InputTokens, b.input) + min(u.CacheReadInputTokens, b.input) + min(u.CacheWriteInputTokens, b.input)
	if over || in > b.input {
		scale := 1.0
		if in > b.input {
			scale = float64(b.input) / float64(in)
		}
		u.InputTokens = int(float64(min(u.InputTokens, b.input)) * scale)
		u.CacheReadInputTokens = int(float64(min(u.CacheReadInputTokens, b.input)) * scale)
		u.CacheWriteInputTokens = int(float64(min(u.CacheWriteInputTokens, b.input)) * scale)
		cut = append(cut, "input")
	}
	return u, cut
}
