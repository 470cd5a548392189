package doctor

import (
	"io/fs"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// envSettings is Settings holding only process environment variables.
func envSettings(kv ...string) Settings {
	env := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return readSettings("/nonexistent", "/nonexistent", env, func(string) ([]byte, error) { return nil, fs.ErrNotExist })
}

// TestEffectiveOutputMeasured replays what Claude Code 2.1.197 and 2.1.332
// (Opus 5.5) sent to a local server for each setting (max_tokens and
// thinking of the main call).
func TestEffectiveOutputMeasured(t *testing.T) {
	const sonnet45 = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
	const opus55 = "us.anthropic.claude-opus-5-5"
	tests := []struct {
		model string
		env   []string
		want  Output
	}{
		{sonnet45, nil, Output{MaxTokens: 32000, MaxTokensFrom: "default", Thinking: ThinkingEnabled, Budget: 31999, BudgetFrom: "max_tokens − 1"}},
		{sonnet45, []string{EnvMaxOutput, "4096"}, Output{MaxTokens: 4096, MaxTokensFrom: "CLAUDE_CODE_MAX_OUTPUT_TOKENS (environment)", Thinking: ThinkingEnabled, Budget: 4095, BudgetFrom: "max_tokens − 1"}},
		{sonnet45, []string{EnvThinking, "1024"}, Output{MaxTokens: 32000, MaxTokensFrom: "default", Thinking: ThinkingEnabled, Budget: 1024, BudgetFrom: "MAX_THINKING_TOKENS (environment)"}},
		{sonnet45, []string{EnvThinking, "1024", EnvMaxOutput, "4096"}, Output{MaxTokens: 4096, MaxTokensFrom: "CLAUDE_CODE_MAX_OUTPUT_TOKENS (environment)", Thinking: ThinkingEnabled, Budget: 1024, BudgetFrom: "MAX_THINKING_TOKENS (environment)"}},
		{sonnet45, []string{EnvThinking, "8000", EnvMaxOutput, "4096"}, Output{MaxTokens: 4096, MaxTokensFrom: "CLAUDE_CODE_MAX_OUTPUT_TOKENS (environment)", Thinking: ThinkingEnabled, Budget: 4095, BudgetFrom: "MAX_THINKING_TOKENS (environment)"}},
		{sonnet45, []string{EnvThinking, "500"}, Output{MaxTokens: 32000, MaxTokensFrom: "default", Thinking: ThinkingEnabled, Budget: 500, BudgetFrom: "MAX_THINKING_TOKENS (environment)"}},
		{sonnet45, []string{EnvThinking, "0"}, Output{MaxTokens: 32000, MaxTokensFrom: "default", Thinking: ThinkingOff, BudgetFrom: "MAX_THINKING_TOKENS (environment)"}},
		{sonnet45, []string{EnvThinking, "abc"}, Output{MaxTokens: 32000, MaxTokensFrom: "default", Thinking: ThinkingOff, BudgetFrom: "MAX_THINKING_TOKENS (environment)"}},
		{sonnet45, []string{EnvThinking, "-1"}, Output{MaxTokens: 32000, MaxTokensFrom: "default", Thinking: ThinkingOff, BudgetFrom: "MAX_THINKING_TOKENS (environment)"}},
		{sonnet45, []string{EnvMaxOutput, "abc"}, Output{MaxTokens: 32000, MaxTokensFrom: `default (CLAUDE_CODE_MAX_OUTPUT_TOKENS="abc" is not a positive number)`, Thinking: ThinkingEnabled, Budget: 31999, BudgetFrom: "max_tokens − 1"}},
		{sonnet45, []string{EnvMaxOutput, "0"}, Output{MaxTokens: 32000, MaxTokensFrom: `default (CLAUDE_CODE_MAX_OUTPUT_TOKENS="0" is not a positive number)`, Thinking: ThinkingEnabled, Budget: 31999, BudgetFrom: "max_tokens − 1"}},
		{sonnet45, []string{EnvMaxOutput, "-5"}, Output{MaxTokens: 32000, MaxTokensFrom: `default (CLAUDE_CODE_MAX_OUTPUT_TOKENS="-5" is not a positive number)`, Thinking: ThinkingEnabled, Budget: 31999, BudgetFrom: "max_tokens − 1"}},
		{sonnet45, []string{EnvMaxOutput, "4096abc"}, Output{MaxTokens: 4096, MaxTokensFrom: "CLAUDE_CODE_MAX_OUTPUT_TOKENS (environment)", Thinking: ThinkingEnabled, Budget: 4095, BudgetFrom: "max_tokens − 1"}},
		{sonnet45, []string{EnvMaxOutput, "1e5"}, Output{MaxTokens: 1, MaxTokensFrom: "CLAUDE_CODE_MAX_OUTPUT_TOKENS (environment)", Thinking: ThinkingEnabled, Budget: 0, BudgetFrom: "max_tokens − 1"}},
		{"us.anthropic.claude-sonnet-4-20250514-v1:0", []string{EnvMaxOutput, "100000"}, Output{MaxTokens: 64000, MaxTokensFrom: "CLAUDE_CODE_MAX_OUTPUT_TOKENS (environment)", Thinking: ThinkingEnabled, Budget: 63999, BudgetFrom: "max_tokens − 1"}},
		{"us.anthropic.claude-3-5-haiku-20241022-v1:0", nil, Output{MaxTokens: 8192, MaxTokensFrom: "default", Thinking: ThinkingOff}},
		{"us.anthropic.claude-3-5-haiku-20241022-v1:0", []string{EnvMaxOutput, "4096"}, Output{MaxTokens: 4096, MaxTokensFrom: "CLAUDE_CODE_MAX_OUTPUT_TOKENS (environment)", Thinking: ThinkingOff}},
		{"us.anthropic.claude-3-7-sonnet-20250219-v1:0", nil, Output{MaxTokens: 32000, MaxTokensFrom: "default", Thinking: ThinkingOff}},
		{"us.anthropic.claude-haiku-4-5-20251001-v1:0", nil, Output{MaxTokens: 32000, MaxTokensFrom: "default", Thinking: ThinkingEnabled, Budget: 31999, BudgetFrom: "max_tokens − 1"}},
		{"us.anthropic.claude-opus-4-5-20251101-v1:0", nil, Output{MaxTokens: 32000, MaxTokensFrom: "default", Thinking: ThinkingEnabled, Budget: 31999, BudgetFrom: "max_tokens − 1"}},
		{"us.anthropic.claude-opus-4-6-v1", nil, Output{MaxTokens: 64000, MaxTokensFrom: "default", Thinking: ThinkingAdaptive}},
		{"us.anthropic.claude-opus-4-6-v1", []string{EnvMaxOutput, "4096", EnvThinking, "2000"}, Output{MaxTokens: 4096, MaxTokensFrom: "CLAUDE_CODE_MAX_OUTPUT_TOKENS (environment)", Thinking: ThinkingAdaptive}},
		{"us.anthropic.claude-opus-4-7", nil, Output{MaxTokens: 64000, MaxTokensFrom: "default", Thinking: ThinkingAdaptive}},
		{"us.anthropic.claude-sonnet-4-6", nil, Output{MaxTokens: 32000, MaxTokensFrom: "default", Thinking: ThinkingAdaptive}},
		// Claude Code 2.1.332 and its default model, Opus 5.5: thinking
		// cannot be turned off, max_tokens is capped at 128,000.
		{opus55, nil, Output{MaxTokens: 128000, MaxTokensFrom: "default", Thinking: ThinkingAdaptive}},
		{opus55, []string{EnvThinking, "0"}, Output{MaxTokens: 128000, MaxTokensFrom: "default", Thinking: ThinkingAdaptive}},
		{opus55, []string{EnvMaxOutput, "4096"}, Output{MaxTokens: 4096, MaxTokensFrom: "CLAUDE_CODE_MAX_OUTPUT_TOKENS (environment)", Thinking: ThinkingAdaptive}},
		{opus55, []string{EnvMaxOutput, "200000"}, Output{MaxTokens: 128000, MaxTokensFrom: "CLAUDE_CODE_MAX_OUTPUT_TOKENS (environment)", Thinking: ThinkingAdaptive}},
		{"anthropic.claude-opus-5-5", nil, Output{MaxTokens: 128000, MaxTokensFrom: "default", Thinking: ThinkingAdaptive}}, // Mantle mode's ID
	}
	for _, tt := range tests {
		m, err := bedrock.ParseModel(tt.model)
		if err != nil {
			t.Fatal(err)
		}
		got := EffectiveOutput(envSettings(tt.env...), m)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("EffectiveOutput(%s, %v) (-want +got):\n%s", tt.model, tt.env, diff)
		}
	}
}

// TestModelsMeasured replays which model Claude Code 2.1.332 called: its
// default main model is Opus 5.5 (the opus alias), the sonnet alias is
// still Sonnet 4.5, the small model Haiku 4.5; in Mantle mode the IDs carry
// no geography prefix.
func TestModelsMeasured(t *testing.T) {
	const (
		opus55  = "anthropic.claude-opus-5-5"
		haiku45 = "anthropic.claude-haiku-4-5-20251001-v1:0"
	)
	tests := []struct {
		name      string
		env       []string
		model     string // the "model" setting
		wantMain  string
		wantSmall string
	}{
		{"defaults", nil, "", "us." + opus55, "us." + haiku45},
		{"eu region", []string{EnvRegion, "eu-west-1"}, "", "eu." + opus55, "eu." + haiku45},
		{"AWS_DEFAULT_REGION", []string{EnvDefaultRegion, "eu-west-1"}, "", "eu." + opus55, "eu." + haiku45},
		{"apac", []string{EnvRegion, "ap-northeast-1"}, "", "apac." + opus55, "apac." + haiku45},
		{"global elsewhere", []string{EnvRegion, "ca-central-1"}, "", "global." + opus55, "global." + haiku45},
		{"gov", []string{EnvRegion, "us-gov-west-1"}, "", "us-gov." + opus55, "us-gov." + haiku45},
		{"model setting", nil, "us.anthropic.claude-sonnet-4-20250514-v1:0", "us.anthropic.claude-sonnet-4-20250514-v1:0", "us." + haiku45},
		{"ANTHROPIC_MODEL beats model", []string{EnvModel, "us." + haiku45}, "sonnet", "us." + haiku45, "us." + haiku45},
		{"alias sonnet", nil, "sonnet", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us." + haiku45},
		{"alias opus", nil, "opus", "us." + opus55, "us." + haiku45},
		{"alias haiku", nil, "haiku", "us." + haiku45, "us." + haiku45},
		{"legacy small", []string{EnvSmallFastModel, "a"}, "", "us." + opus55, "a"},
		{"new small beats legacy", []string{EnvSmallFastModel, "a", EnvHaikuModel, "b"}, "", "us." + opus55, "b"},
		{"mantle", []string{EnvUseMantle, "1"}, "", opus55, haiku45},
		{"mantle, alias sonnet", []string{EnvUseMantle, "1", EnvRegion, "eu-west-1"}, "sonnet", "anthropic.claude-sonnet-4-5-20250929-v1:0", haiku45},
	}
	for _, tt := range tests {
		s := envSettings(tt.env...)
		if tt.model != "" {
			s.Model = Value{tt.model, LayerUser}
		}
		region := Region(s).Value
		if got := MainModel(s, region).Value; got != tt.wantMain {
			t.Errorf("%s: main model = %s, want %s", tt.name, got, tt.wantMain)
		}
		if got := SmallModel(s, region).Value; got != tt.wantSmall {
			t.Errorf("%s: small model = %s, want %s", tt.name, got, tt.wantSmall)
		}
	}
}

func TestTruthyMeasured(t *testing.T) {
	// DISABLE_PROMPT_CACHING=0 kept cache_control in Claude Code's requests.
	for v, want := range map[string]bool{"1": true, "true": true, " YES ": true, "on": true, "0": false, "false": false, "": false, "2": false} {
		if got := truthy(envSettings(EnvNoCaching, v), EnvNoCaching); got != want {
			t.Errorf("truthy(%q) = %v, want %v", v, got, want)
		}
	}
}
