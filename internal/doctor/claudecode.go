package doctor

import (
	"strings"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// What Claude Code sends, measured against a local server (BEDROCK.md
// section 4 has the method) with Claude Code 2.1.197 and again with 2.1.332
// (its default main model became Opus 5.5, asked for 128,000; the rest was
// unchanged). Defaults change between releases; these are the ones Headroom
// was checked against.
const (
	// DefaultMaxOutputTokens is max_tokens when CLAUDE_CODE_MAX_OUTPUT_TOKENS
	// is unset, empty, not a number or not positive, for most models
	// (claudeCodeDefaults has the exceptions, Opus 5.5's 128,000 among them).
	DefaultMaxOutputTokens = 32000
	// AdvisedMaxOutputTokens is what Claude Code's Bedrock page recommended
	// (the seed quotes it); the general settings page says 32,000.
	AdvisedMaxOutputTokens = 4096
	// AdvisedThinkingTokens is the smallest budget Bedrock accepts.
	AdvisedThinkingTokens = 1024
	// DefaultToolConcurrency is CLAUDE_CODE_MAX_TOOL_USE_CONCURRENCY's default.
	DefaultToolConcurrency = 10
	// DefaultRegion is what Claude Code uses when neither AWS_REGION nor
	// AWS_DEFAULT_REGION is set.
	DefaultRegion = "us-east-1"
)

// Environment variables the doctor reads.
const (
	EnvUseBedrock      = "CLAUDE_CODE_USE_BEDROCK"
	EnvRegion          = "AWS_REGION"
	EnvDefaultRegion   = "AWS_DEFAULT_REGION"
	EnvProfile         = "AWS_PROFILE"
	EnvBearer          = "AWS_BEARER_TOKEN_BEDROCK"
	EnvSkipAuth        = "CLAUDE_CODE_SKIP_BEDROCK_AUTH"
	EnvBaseURL         = "ANTHROPIC_BEDROCK_BASE_URL"
	EnvMaxOutput       = "CLAUDE_CODE_MAX_OUTPUT_TOKENS"
	EnvThinking        = "MAX_THINKING_TOKENS"
	EnvModel           = "ANTHROPIC_MODEL"
	EnvHaikuModel      = "ANTHROPIC_DEFAULT_HAIKU_MODEL"
	EnvSmallFastModel  = "ANTHROPIC_SMALL_FAST_MODEL"
	EnvToolConcurrency = "CLAUDE_CODE_MAX_TOOL_USE_CONCURRENCY"
	EnvNoCaching       = "DISABLE_PROMPT_CACHING"
	// Mantle mode (BEDROCK.md section 6): Claude Code calls the Anthropic
	// Messages API on bedrock-mantle, whose quotas are its own.
	EnvUseMantle      = "CLAUDE_CODE_USE_MANTLE"
	EnvMantleBaseURL  = "ANTHROPIC_BEDROCK_MANTLE_BASE_URL"
	EnvSkipMantleAuth = "CLAUDE_CODE_SKIP_MANTLE_AUTH"
)

// Thinking modes as Claude Code sends them.
const (
	ThinkingEnabled  = "enabled"
	ThinkingAdaptive = "adaptive"
	ThinkingOff      = "off"
)

// The models Claude Code 2.1.332's aliases name on Bedrock (measured); the
// geography prefix comes from the region. Its default main model is the opus
// alias, Opus 5.5 (2.1.197's was the sonnet alias).
const (
	aliasSonnet = "anthropic.claude-sonnet-4-5-20250929-v1:0"
	aliasOpus   = "anthropic.claude-opus-5-5"
	aliasHaiku  = "anthropic.claude-haiku-4-5-20251001-v1:0"
)

// Mantle reports whether Claude Code runs in Mantle mode: it then calls
// bedrock-mantle's Messages API with model IDs without a geography prefix
// (anthropic.claude-opus-5-5), and Bedrock mode's setting does not matter.
func Mantle(s Settings) bool { return truthy(s, EnvUseMantle) }

// Region returns the region Claude Code calls and where the value came from.
func Region(s Settings) Value {
	if v, ok := s.Get(EnvRegion); ok {
		return v
	}
	if v, ok := s.Get(EnvDefaultRegion); ok {
		return v
	}
	return Value{Value: DefaultRegion, From: "default"}
}

// geoPrefix is the cross-region inference profile prefix Claude Code puts
// on its default models in region.
func geoPrefix(region string) string {
	switch {
	case strings.HasPrefix(region, "us-gov-"):
		return "us-gov."
	case strings.HasPrefix(region, "us-"):
		return "us."
	case strings.HasPrefix(region, "eu-"):
		return "eu."
	case strings.HasPrefix(region, "ap-"):
		return "apac."
	}
	return "global."
}

// resolveAlias expands Claude Code's model aliases; other values are model
// IDs. In Mantle mode the IDs carry no geography prefix.
func resolveAlias(s Settings, spec, region string) string {
	prefix := geoPrefix(region)
	if Mantle(s) {
		prefix = ""
	}
	switch strings.ToLower(strings.TrimSpace(spec)) {
	case "sonnet":
		return prefix + aliasSonnet
	case "opus", "default":
		return prefix + aliasOpus
	case "haiku":
		return prefix + aliasHaiku
	}
	return strings.TrimSpace(spec)
}

// MainModel returns the model Claude Code's main loop calls: ANTHROPIC_MODEL,
// then the "model" setting, then the opus alias (Opus 5.5).
func MainModel(s Settings, region string) Value {
	if v, ok := s.Get(EnvModel); ok {
		return Value{Value: resolveAlias(s, v.Value, region), From: EnvModel + " (" + v.From + ")"}
	}
	if s.Model.Value != "" {
		return Value{Value: resolveAlias(s, s.Model.Value, region), From: `"model" (` + s.Model.From + ")"}
	}
	return Value{Value: resolveAlias(s, "default", region), From: "default"}
}

// SmallModel returns the model Claude Code uses for background calls:
// ANTHROPIC_DEFAULT_HAIKU_MODEL, then the legacy ANTHROPIC_SMALL_FAST_MODEL,
// then the haiku alias.
func SmallModel(s Settings, region string) Value {
	for _, k := range []string{EnvHaikuModel, EnvSmallFastModel} {
		if v, ok := s.Get(k); ok {
			return Value{Value: resolveAlias(s, v.Value, region), From: k + " (" + v.From + ")"}
		}
	}
	return Value{Value: resolveAlias(s, "haiku", region), From: "default"}
}

// Output is what Claude Code puts in a request's max_tokens and thinking.
type Output struct {
	MaxTokens     int    `json:"max_tokens"`
	MaxTokensFrom string `json:"max_tokens_from"`
	// Thinking is enabled, adaptive or off; Budget is budget_tokens when enabled.
	Thinking   string `json:"thinking"`
	Budget     int    `json:"thinking_budget,omitempty"`
	BudgetFrom string `json:"thinking_budget_from,omitempty"`
}

// EffectiveOutput computes max_tokens and thinking for model m as Claude Code
// does: CLAUDE_CODE_MAX_OUTPUT_TOKENS (parsed like JavaScript's parseInt;
// unset or not positive means the model's default, 32,000 for most) capped
// at the model's limit; thinking enabled with budget MAX_THINKING_TOKENS
// capped at max_tokens − 1, or max_tokens − 1 when unset (BEDROCK.md
// section 4); a MAX_THINKING_TOKENS of 0 or not a number turns it off.
// Opus 4.6/4.7 and Sonnet 4.6 use adaptive thinking, Claude 3.x none.
func EffectiveOutput(s Settings, m bedrock.Model) Output {
	limit := bedrock.DefaultMaxOutput(m)
	def, thinking := claudeCodeDefaults(m)
	out := Output{MaxTokens: min(def, limit), MaxTokensFrom: "default", Thinking: thinking}
	if v, ok := s.Get(EnvMaxOutput); ok {
		if n, ok := parseJSInt(v.Value); ok && n > 0 {
			out.MaxTokens = int(min(n, int64(limit)))
			out.MaxTokensFrom = EnvMaxOutput + " (" + v.From + ")"
		} else {
			out.MaxTokensFrom = "default (" + EnvMaxOutput + "=" + quoteShort(v.Value) + " is not a positive number)"
		}
	}
	if thinking != ThinkingEnabled {
		return out
	}
	out.Budget, out.BudgetFrom = out.MaxTokens-1, "max_tokens − 1"
	if v, ok := s.Get(EnvThinking); ok {
		n, ok := parseJSInt(v.Value)
		if !ok || n <= 0 {
			out.Thinking, out.Budget, out.BudgetFrom = ThinkingOff, 0, EnvThinking+" ("+v.From+")"
			return out
		}
		out.Budget = int(min(n, int64(out.MaxTokens-1)))
		out.BudgetFrom = EnvThinking + " (" + v.From + ")"
	}
	return out
}

// claudeCodeDefaults is the max_tokens Claude Code asks for when unset and
// the kind of thinking it turns on, per model family.
func claudeCodeDefaults(m bedrock.Model) (maxTokens int, thinking string) {
	b := m.Base
	switch {
	case strings.Contains(b, "-opus-5"), strings.Contains(b, "-sonnet-5"), strings.Contains(b, "-haiku-5"),
		strings.Contains(b, "-fable-5"), strings.Contains(b, "opus-4-8"):
		// Measured for Opus 5.5 with 2.1.332 (max_tokens 128,000, thinking
		// adaptive even with MAX_THINKING_TOKENS=0: it cannot be turned
		// off); assumed for the rest of the 5 generations and Opus 4.8,
		// which share its 128K limit.
		return 128000, ThinkingAdaptive
	case strings.Contains(b, "opus-4-6"), strings.Contains(b, "opus-4-7"):
		return 64000, ThinkingAdaptive
	case strings.Contains(b, "sonnet-4-6"):
		return DefaultMaxOutputTokens, ThinkingAdaptive
	case strings.Contains(b, "claude-3"):
		return DefaultMaxOutputTokens, ThinkingOff
	}
	return DefaultMaxOutputTokens, ThinkingEnabled
}

// ToolConcurrency is how many tool calls Claude Code runs at once.
func ToolConcurrency(s Settings) (n int, from string) {
	if v, ok := s.Get(EnvToolConcurrency); ok {
		if c, ok := parseJSInt(v.Value); ok && c > 0 {
			return int(min(c, 1<<20)), EnvToolConcurrency + " (" + v.From + ")"
		}
	}
	return DefaultToolConcurrency, "default"
}

// truthy is how Claude Code reads boolean variables.
func truthy(s Settings, key string) bool {
	v, ok := s.Get(key)
	if !ok {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(v.Value)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

func quoteShort(s string) string {
	if len(s) > 20 {
		s = s[:20] + "…"
	}
	return `"` + s + `"`
}
