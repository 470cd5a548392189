package bedrock

// Mantle's quotas (BEDROCK.md section 6) count input and output apart, per
// model and region, with no burndown: an input-tokens-per-minute quota that
// admission checks against input + cacheWrite + max_tokens and that keeps
// input + cacheWrite, and an output-tokens-per-minute quota that counts
// output as it is generated. Cache reads never count. Like Profile's, these
// saturate: a negative count counts 0.

// MantleAdmission is what a Mantle request needs from its input quota at
// admission: input + cacheWrite + max_tokens (pass the model's maximum
// output when max_tokens is unset).
func MantleAdmission(d Demand) int64 {
	return satAdd(satAdd(costTerm(d.InputTokens), costTerm(d.CacheWriteTokens)), costTerm(d.MaxTokens))
}

// MantleInput is what a request costs Mantle's input quota in the end:
// input + cacheWrite.
func MantleInput(u Usage) int64 {
	return satAdd(costTerm(u.InputTokens), costTerm(u.CacheWriteInputTokens))
}

// MantleOutput is what a request costs Mantle's output quota: its output
// tokens so far.
func MantleOutput(u Usage) int64 { return costTerm(u.OutputTokens) }
