package doctor

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// severities maps "id/model" to severity, for comparing findings compactly.
func severities(fs []Finding) map[string]Severity {
	m := map[string]Severity{}
	for _, f := range fs {
		m[f.ID+"/"+f.Model] = f.Severity
	}
	return m
}

func finding(t *testing.T, r Report, id, model string) Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.ID == id && f.Model == model {
			return f
		}
	}
	t.Fatalf("no finding %s/%s in %v", id, model, severities(r.Findings))
	return Finding{}
}

func fixEnv(f Finding) map[string]string {
	if f.Fix == nil || f.Fix.Settings == nil {
		return nil
	}
	return f.Fix.Settings.Env
}

// seedReport is the doctor on the seed post's "Full working setup", with an
// empty process environment.
func seedReport(t *testing.T) Report {
	home := filepath.Join("testdata", "seed", "home")
	return Analyze(ReadSettings(home, t.TempDir(), map[string]string{}), Options{}, nil)
}

func TestSeedSettings(t *testing.T) {
	r := seedReport(t)
	main, small := r.Models[0], r.Models[1]
	if got, want := main.ID, "us.anthropic.claude-sonnet-4-20250514-v1:0"; got != want {
		t.Errorf("main model = %s, want %s", got, want)
	}
	if got, want := small.ID, "us.anthropic.claude-3-5-haiku-20241022-v1:0"; got != want {
		t.Errorf("small model = %s, want %s", got, want)
	}
	wantFits := []Fit{
		// 4,096 × 5 = 20,480 under the seed's reading; 4,096 under AWS's.
		{Profile: "seed", MaxTokens: 4096, Reservation: 20480, RequestsPerMinute: 9, RequestsPerDay: 7031, TasksPerMinute: 0.36, TasksPerDay: 281.24, Spike: 204800},
		{Profile: "aws", MaxTokens: 4096, Reservation: 4096, RequestsPerMinute: 48, RequestsPerDay: 35156, TasksPerMinute: 1.92, TasksPerDay: 1406.24, Spike: 40960},
	}
	if diff := cmp.Diff(wantFits, main.Fits); diff != "" {
		t.Errorf("main model fits (-want +got):\n%s", diff)
	}
	if got, want := main.Output, (Output{MaxTokens: 4096, MaxTokensFrom: "CLAUDE_CODE_MAX_OUTPUT_TOKENS (user)", Thinking: ThinkingEnabled, Budget: 1024, BudgetFrom: "MAX_THINKING_TOKENS (user)"}); got != want {
		t.Errorf("main output = %+v, want %+v", got, want)
	}
	// The small model (3.5 Haiku) burns down at 1 and has no thinking.
	if got, want := small.Fits[0].Reservation, int64(4096); got != want {
		t.Errorf("small model seed reservation = %d, want %d", got, want)
	}

	want := map[string]Severity{
		"region/":                       OK,
		"max-output-tokens/main":        OK,
		"thinking-budget/main":          OK,
		"quota-fit/main":                OK,
		"quota-fit/small":               OK,
		"parallel-spike/main":           Warning, // 10 × 20,480 = 204,800 > 200,000
		"small-model-legacy-name/small": Info,
		"shared-account/":               Info,
		"prompt-caching/":               Warning,
	}
	if diff := cmp.Diff(want, severities(r.Findings)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if got, want := fixEnv(finding(t, r, FindSpike, RoleMain)), map[string]string{EnvToolConcurrency: "9"}; !cmp.Equal(got, want) {
		t.Errorf("parallel-spike fix = %v, want %v", got, want)
	}
	if got, want := fixEnv(finding(t, r, FindCaching, "")), map[string]string{EnvNoCaching: "0"}; !cmp.Equal(got, want) {
		t.Errorf("prompt-caching fix = %v, want %v", got, want)
	}
	ok := finding(t, r, FindMaxOutput, RoleMain)
	for _, n := range []string{"20,480", "4,096", "160,000", "32,000"} {
		if !strings.Contains(ok.Why, n) {
			t.Errorf("max-output finding %q does not mention %s", ok.Why, n)
		}
	}
	if got, want := r.Verdict.Name, VerdictHealthy; got != want {
		t.Errorf("verdict = %s, want %s", got, want)
	}
}

// TestDefaultSettings: Claude Code's defaults with its sonnet alias (the
// default main model before 2.1.332, Sonnet 4.5 at 32,000), against the
// Sonnet 4 quota assumed for it: the seed's numbers.
func TestDefaultSettings(t *testing.T) {
	dir := t.TempDir()
	r := Analyze(ReadSettings(dir, dir, map[string]string{EnvModel: "sonnet"}), Options{}, nil)
	main := r.Models[0]
	if got, want := main.Output.MaxTokens, 32000; got != want {
		t.Errorf("unset CLAUDE_CODE_MAX_OUTPUT_TOKENS: max_tokens = %d, want %d", got, want)
	}
	seed, _ := main.Fit("seed")
	aws, _ := main.Fit("aws")
	if seed.Reservation != 160000 || aws.Reservation != 32000 || main.Advised.Reservation != 20480 {
		t.Errorf("reservations seed %d, aws %d, advised %d; want 160,000, 32,000, 20,480", seed.Reservation, aws.Reservation, main.Advised.Reservation)
	}
	want := map[string]Severity{
		"bedrock-off/":           Warning,
		"region/":                Warning,
		"max-output-tokens/main": Critical,
		"thinking-budget/main":   Info,
		"thinking-budget/small":  Info,
		"quota-fit/main":         OK,
		"quota-fit/small":        OK,
		"parallel-spike/main":    Critical, // 10 × 160,000 against 200,000
		"shared-account/":        Info,
		"prompt-caching/":        OK,
	}
	if diff := cmp.Diff(want, severities(r.Findings)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	trap := finding(t, r, FindMaxOutput, RoleMain)
	if got, want := fixEnv(trap), map[string]string{EnvMaxOutput: "4096"}; !cmp.Equal(got, want) {
		t.Errorf("max-output fix = %v, want %v", got, want)
	}
	for _, n := range []string{"32,000", "4,096", "160,000", "20,480", "7.8x"} {
		if !strings.Contains(trap.Title+" "+trap.Why, n) {
			t.Errorf("documentation-trap finding does not mention %s: %s %s", n, trap.Title, trap.Why)
		}
	}
	if got, want := trap.Fix.Snippet(), `{"env": {"CLAUDE_CODE_MAX_OUTPUT_TOKENS": "4096"}}`; got != want {
		t.Errorf("snippet = %s, want %s", got, want)
	}
	if got, want := fixEnv(finding(t, r, FindSpike, RoleMain)), map[string]string{EnvMaxOutput: "4096", EnvToolConcurrency: "9"}; !cmp.Equal(got, want) {
		t.Errorf("parallel-spike fix = %v, want %v", got, want)
	}
	if r.Findings[0].Severity != Critical || r.Findings[len(r.Findings)-1].Severity != OK {
		t.Errorf("findings are not ordered by severity: %v", r.Findings)
	}
	if got, want := r.Verdict.Situation, SituationReservations; got != want {
		t.Errorf("verdict situation = %d, want %d (%s)", got, want, r.Verdict.Summary)
	}
}

// TestSeedWorkedNumbers reproduces the seed's arithmetic: 1,000 input and
// max_tokens 64,000 reserve 321,000, 64% of a 500,000 daily quota.
func TestSeedWorkedNumbers(t *testing.T) {
	s := envSettings(EnvModel, "us.anthropic.claude-sonnet-4-20250514-v1:0", EnvMaxOutput, "64000", EnvRegion, "us-east-1", EnvUseBedrock, "1")
	r := Analyze(s, Options{InputTokens: 1000, TPD: 500_000}, nil)
	f, _ := r.Models[0].Fit("seed")
	if f.Reservation != 321_000 || f.RequestsPerDay != 1 {
		t.Errorf("seed fit = %+v, want reservation 321,000 and 1 request per day", f)
	}
	if got, want := r.Models[0].Limits, (Limits{TPM: 200_000, TPD: 500_000, TPMCode: CodeSonnet4TPM, TPDCode: CodeSonnet4TPD, Source: "flags --tpm/--tpd"}); got != want {
		t.Errorf("limits = %+v, want %+v", got, want)
	}
	fit := finding(t, r, FindQuotaFit, RoleMain)
	if fit.Severity != Critical {
		t.Errorf("quota-fit = %s (%s), want critical: 321,000 is more than TPM 200,000", fit.Severity, fit.Why)
	}
}

func TestLayeredSettings(t *testing.T) {
	s := layered(t, map[string]string{})
	r := Analyze(s, Options{SeverityProfile: "aws"}, nil)
	main := r.Models[0]
	if got, want := main.ID, "us.anthropic.claude-sonnet-4-20250514-v1:0"; got != want {
		// The project's "model" beats the user's "opus"; the eu region does
		// not change an explicit ID.
		t.Errorf("main model = %s, want %s", got, want)
	}
	if got, want := main.Output.MaxTokens, 8192; got != want {
		t.Errorf("max_tokens = %d, want %d from settings.local.json", got, want)
	}
	if got, want := main.ToolCalls, 4; got != want {
		t.Errorf("tool concurrency = %d, want %d", got, want)
	}
	want := map[string]Severity{
		"region/":                Warning, // eu-west-1 is not a large pool
		"max-output-tokens/main": Warning,
		"thinking-budget/main":   Warning, // 500 < 1,024: Bedrock refuses it
		"thinking-budget/small":  Warning,
		"quota-fit/main":         OK,
		"quota-fit/small":        OK,
		"parallel-spike/main":    OK,
		"shared-account/":        Warning, // a bearer key is set
		"prompt-caching/":        OK,
	}
	if diff := cmp.Diff(want, severities(r.Findings)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if !r.AWS.BearerKey || r.AWS.BearerFrom != LayerUser {
		t.Errorf("AWS env = %+v, want the bearer key reported as set from the user layer", r.AWS)
	}
}

// TestNeverPrintsSecrets checks that the bearer key in the settings appears
// in neither output.
func TestNeverPrintsSecrets(t *testing.T) {
	r := Analyze(layered(t, map[string]string{"AWS_SECRET_ACCESS_KEY": "also-secret"}), Options{}, nil)
	var text, js bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	if err := json.NewEncoder(&js).Encode(r); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{text.String(), js.String()} {
		for _, secret := range []string{"secret-key-never-printed", "also-secret"} {
			if strings.Contains(out, secret) {
				t.Errorf("output contains the secret %q", secret)
			}
		}
	}
}

// TestJSON decodes the --json form of the default report and compares it
// with what a script would read.
func TestJSON(t *testing.T) {
	dir := t.TempDir()
	r := Analyze(ReadSettings(dir, dir, map[string]string{EnvUseBedrock: "1", EnvRegion: "us-west-2", EnvModel: "sonnet"}), Options{InputTokens: 2000, CallsPerTask: 20}, nil)
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	type fit struct {
		Profile     string `json:"profile"`
		Reservation int64  `json:"reservation"`
	}
	type model struct {
		Role   string `json:"role"`
		ID     string `json:"id"`
		Output struct {
			MaxTokens int `json:"max_tokens"`
		} `json:"output"`
		Fits    []fit `json:"fits"`
		Advised fit   `json:"advised"`
	}
	type finding struct {
		ID       string `json:"id"`
		Severity string `json:"severity"`
		Fix      *struct {
			Settings *struct {
				Env map[string]string `json:"env"`
			} `json:"settings"`
		} `json:"fix"`
	}
	var got struct {
		AWS struct {
			Region Value `json:"region"`
		} `json:"aws"`
		Assumptions Assumptions `json:"assumptions"`
		Models      []model     `json:"models"`
		Findings    []finding   `json:"findings"`
		Verdict     struct {
			Situation int    `json:"situation"`
			Name      string `json:"name"`
		} `json:"verdict"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got, want := got.AWS.Region, (Value{"us-west-2", LayerEnvironment}); got != want {
		t.Errorf("aws.region = %+v, want %+v", got, want)
	}
	if diff := cmp.Diff(Assumptions{InputTokens: 2000, CallsPerTask: 20, SeverityProfile: "seed"}, got.Assumptions); diff != "" {
		t.Errorf("assumptions (-want +got):\n%s", diff)
	}
	wantModels := []model{
		{Role: "main", ID: "us.anthropic.claude-sonnet-4-5-20250929-v1:0", Fits: []fit{{"seed", 162000}, {"aws", 34000}}, Advised: fit{"seed", 22480}},
		{Role: "small", ID: "us.anthropic.claude-haiku-4-5-20251001-v1:0", Fits: []fit{{"seed", 162000}, {"aws", 34000}}, Advised: fit{"seed", 22480}},
	}
	for i := range wantModels {
		wantModels[i].Output.MaxTokens = 32000
	}
	if diff := cmp.Diff(wantModels, got.Models); diff != "" {
		t.Errorf("models (-want +got):\n%s", diff)
	}
	if got.Findings[0].ID != FindMaxOutput || got.Findings[0].Severity != "critical" ||
		got.Findings[0].Fix.Settings.Env[EnvMaxOutput] != "4096" {
		t.Errorf("first finding = %+v, want critical max-output-tokens with fix 4096", got.Findings[0])
	}
	if got.Verdict.Situation != 2 || got.Verdict.Name != VerdictReservations {
		t.Errorf("verdict = %+v, want situation 2", got.Verdict)
	}
}

func TestTextOutput(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, seedReport(t)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"reserved per request      seed 20,480 | aws 4,096",
		`fix: {"env": {"CLAUDE_CODE_MAX_TOOL_USE_CONCURRENCY": "9"}}`,
		"WARNING   Parallel tool calls reserve more than the per-minute quota",
		"Verdict\n  No setting burns the quota",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	for i, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "            ") && len([]rune(line)) > wrapWidth+40 {
			t.Errorf("line %d is not wrapped: %q", i+1, line)
		}
	}
}

func BenchmarkAnalyze(b *testing.B) {
	s := ReadSettings(filepath.Join("testdata", "seed", "home"), b.TempDir(), map[string]string{})
	b.ReportAllocs()
	for b.Loop() {
		_ = Analyze(s, Options{}, nil)
	}
}
