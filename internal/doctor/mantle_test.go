package doctor

import (
	"strings"
	"testing"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// TestDefaultSettings2_1_332: Claude Code 2.1.332 with nothing set calls
// Opus 5.5 for 128,000 tokens with adaptive thinking; at burndown 10 a call
// reserves 1,280,000 (seed reading), against Claude 4.7+'s 15,000,000 TPM.
func TestDefaultSettings2_1_332(t *testing.T) {
	dir := t.TempDir()
	r := Analyze(ReadSettings(dir, dir, map[string]string{EnvUseBedrock: "1", EnvRegion: "us-east-1"}), Options{InputTokens: 1000}, nil)
	main := r.Models[0]
	if main.ID != "us.anthropic.claude-opus-5-5" || main.Output.MaxTokens != 128000 || main.Output.Thinking != ThinkingAdaptive || main.Burndown != 10 {
		t.Fatalf("main model %s, output %+v, burndown %d; want Opus 5.5, 128,000, adaptive, 10", main.ID, main.Output, main.Burndown)
	}
	seed, _ := main.Fit("seed")
	aws, _ := main.Fit("aws")
	if seed.Reservation != 1_281_000 || aws.Reservation != 129_000 || main.Limits.TPM != 15_000_000 || !strings.Contains(main.Limits.Source, "Claude 4.7+") {
		t.Errorf("reservations seed %d, aws %d against TPM %d (%s); want 1,281,000, 129,000 against 15,000,000 (Claude 4.7+ defaults)",
			seed.Reservation, aws.Reservation, main.Limits.TPM, main.Limits.Source)
	}
	f := finding(t, r, FindMaxOutput, RoleMain)
	if !strings.Contains(f.Title, "128,000") || f.Severity != Warning {
		t.Errorf("max-output finding %s %q, want a warning naming 128,000", f.Severity, f.Title)
	}
	if main.Mantle != nil || hasFinding(r, FindMantle) {
		t.Error("Bedrock mode reports Mantle numbers")
	}
}

func hasFinding(r Report, id string) bool {
	for _, f := range r.Findings {
		if f.ID == id {
			return true
		}
	}
	return false
}

// TestMantleMode: with CLAUDE_CODE_USE_MANTLE the doctor reports what a
// call reserves on bedrock-mantle (input + max_tokens against the input
// TPM, no burndown) instead of Bedrock runtime's numbers, and what to
// change: a smaller max_tokens, or the gateway as the Mantle base URL.
func TestMantleMode(t *testing.T) {
	dir := t.TempDir()
	analyze := func(opt Options, env ...string) Report {
		m := map[string]string{EnvUseMantle: "1", EnvRegion: "us-east-1"}
		for i := 0; i+1 < len(env); i += 2 {
			m[env[i]] = env[i+1]
		}
		opt.InputTokens = 2000
		return Analyze(ReadSettings(dir, dir, m), opt, nil)
	}

	r := analyze(Options{})
	main := r.Models[0]
	if main.ID != "anthropic.claude-opus-5-5" || main.Mantle == nil {
		t.Fatalf("main model %s, mantle %+v; want anthropic.claude-opus-5-5 with Mantle numbers", main.ID, main.Mantle)
	}
	mf := *main.Mantle
	if mf.Reservation != 130_000 || mf.InputTPM != 10_000_000 || mf.OutputTPM != 2_000_000 || mf.RequestsPerMinute != 76 || mf.Spike != 1_300_000 {
		t.Errorf("mantle fit %+v; want 2,000 + 128,000 = 130,000 of 10,000,000 input TPM (76 a minute), output TPM 2,000,000, 10 tool calls 1,300,000", mf)
	}
	for _, id := range []string{FindBedrockOff, FindMaxOutput, FindQuotaFit, FindSpike} {
		if hasFinding(r, id) {
			t.Errorf("Mantle mode reports the runtime finding %s", id)
		}
	}
	f := finding(t, r, FindMantle, RoleMain)
	if f.Severity != Info || !strings.Contains(f.Title, "input + 128,000") || !strings.Contains(f.Why, "no burndown") {
		t.Errorf("mantle finding %s %q %q", f.Severity, f.Title, f.Why)
	}
	if f.Fix == nil || f.Fix.Settings.Env[EnvMaxOutput] != "16000" || !strings.Contains(f.Fix.Action, EnvMantleBaseURL) {
		t.Errorf("mantle fix %+v, want max_tokens 16000 and the gateway as %s", f.Fix, EnvMantleBaseURL)
	}
	if r.Verdict.Name != VerdictHealthy {
		t.Errorf("verdict %s, want healthy at 10,000,000 input TPM", r.Verdict.Name)
	}

	// A small input TPM (a new account): a burst of tool calls does not fit,
	// then not even one call.
	if f := finding(t, analyze(Options{TPM: 1_000_000}), FindMantle, RoleMain); f.Severity != Warning {
		t.Errorf("10 x 130,000 against 1,000,000: severity %s, want warning", f.Severity)
	}
	r = analyze(Options{TPM: 100_000})
	if f := finding(t, r, FindMantle, RoleMain); f.Severity != Critical || r.Verdict.Situation != SituationReservations {
		t.Errorf("130,000 against 100,000: severity %s, verdict %s; want critical, reservations", f.Severity, r.Verdict.Name)
	}

	// Through a gateway with a small max_tokens: nothing to change.
	r = analyze(Options{}, EnvMantleBaseURL, "http://127.0.0.1:8080", EnvMaxOutput, "8000")
	if f := finding(t, r, FindMantle, RoleMain); f.Fix != nil || r.Models[0].Mantle.Reservation != 10_000 || !r.AWS.UseMantle || r.AWS.MantleBaseURL.Value != "http://127.0.0.1:8080" {
		t.Errorf("max_tokens 8,000 through a gateway: fix %+v, mantle %+v, aws %+v", f.Fix, r.Models[0].Mantle, r.AWS)
	}
}

func TestMantleText(t *testing.T) {
	dir := t.TempDir()
	r := Analyze(ReadSettings(dir, dir, map[string]string{EnvUseMantle: "1", EnvMantleBaseURL: "http://127.0.0.1:8080"}), Options{InputTokens: 2000}, nil)
	var b strings.Builder
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Mantle mode (CLAUDE_CODE_USE_MANTLE)", "http://127.0.0.1:8080", "Mantle: reserved per request", "130,000 (input + max_tokens)", "10,000,000 / 2,000,000"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}

// TestMantleModeSharedAccount: in Mantle mode the gateway is the Mantle base
// URL (Claude Code ignores ANTHROPIC_BEDROCK_BASE_URL there), so a Mantle
// base URL at a gateway is OK, and the fix for a direct Mantle key sets
// the Mantle base URL, not the runtime one.
func TestMantleModeSharedAccount(t *testing.T) {
	dir := t.TempDir()
	analyze := func(env ...string) Finding {
		m := map[string]string{EnvUseMantle: "1", EnvRegion: "us-east-1", EnvBearer: "hr_x"}
		for i := 0; i+1 < len(env); i += 2 {
			m[env[i]] = env[i+1]
		}
		return finding(t, Analyze(ReadSettings(dir, dir, m), Options{InputTokens: 2000}, nil), FindSharedAccount, "")
	}
	f := analyze(EnvMantleBaseURL, "http://127.0.0.1:8080")
	if f.Severity != OK || !strings.Contains(f.Title, "http://127.0.0.1:8080") {
		t.Errorf("Mantle base URL at a gateway: %s %q, want OK through the gateway", f.Severity, f.Title)
	}
	// The runtime base URL does not count in Mantle mode.
	f = analyze(EnvBaseURL, "http://127.0.0.1:8080")
	if f.Severity != Warning {
		t.Errorf("runtime base URL in Mantle mode: %s %q, want the shared-quota warning", f.Severity, f.Title)
	}
	env := fixEnv(f)
	if env[EnvMantleBaseURL] == "" || env[EnvBaseURL] != "" {
		t.Errorf("fix sets %v; want %s (the URL Mantle mode reads), not %s", env, EnvMantleBaseURL, EnvBaseURL)
	}
}

// TestDefaultLimitsSources: each model's default quota and where it comes
// from; the assumptions are the emulator's default config's (Opus 4.6 as
// Sonnet 4.6, other undocumented models as Sonnet 4).
func TestDefaultLimitsSources(t *testing.T) {
	for _, tt := range []struct {
		id     string
		tpm    int64
		source string
	}{
		{"us.anthropic.claude-sonnet-4-20250514-v1:0", 200_000, "AWS's documented defaults"},
		{"us.anthropic.claude-sonnet-4-6", 6_000_000, "AWS's documented defaults"},
		{"us.anthropic.claude-opus-4-6-v1", 6_000_000, "assumed: Sonnet 4.6's"},
		{"us.anthropic.claude-sonnet-4-5-20250929-v1:0", 200_000, "assumed: Sonnet 4's"},
		{"us.anthropic.claude-opus-4-7", 15_000_000, "Claude 4.7+"},
		{"us.anthropic.claude-opus-5-5", 15_000_000, "Claude 4.7+"},
	} {
		m, err := bedrock.ParseModel(tt.id)
		if err != nil {
			t.Fatal(err)
		}
		l := DefaultLimits(m, "us-east-1")
		if l.TPM != tt.tpm || !strings.Contains(l.Source, tt.source) {
			t.Errorf("%s: %+v; want TPM %d from %q", tt.id, l, tt.tpm, tt.source)
		}
	}
}
