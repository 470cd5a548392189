package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
)

func TestDefaultEmulator(t *testing.T) {
	e := DefaultEmulator()
	if err := e.Validate(); err != nil {
		t.Fatalf("the documented defaults do not validate: %v", err)
	}
	got := struct {
		Listen, DefaultRegion, Profile, Minute, Day string
		Regions                                     []string
		Scale                                       float64
	}{e.Listen, e.DefaultRegion, e.Accounting.Profile, e.Windows.Minute, e.Windows.Day, nil, e.Generation.InputTokenScale}
	for _, r := range e.Regions {
		got.Regions = append(got.Regions, r.Name)
	}
	want := struct {
		Listen, DefaultRegion, Profile, Minute, Day string
		Regions                                     []string
		Scale                                       float64
	}{"127.0.0.1:4567", "us-east-1", "seed", MinuteRefill, DayFixed, []string{"us-east-1", "us-west-2", "eu-west-1"}, 1}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
	// BEDROCK.md section 2: Sonnet 4 cross-region TPM 200,000 and TPD
	// 144,000,000, in every default region.
	sonnet4, _ := bedrock.ParseModel("us.anthropic.claude-sonnet-4-20250514-v1:0")
	for _, r := range e.Regions {
		limits := map[string]int64{}
		for _, b := range r.Buckets {
			if b.Scope.Matches(r.Name, sonnet4) {
				limits[b.Kind] += b.Limit
			}
		}
		if d := cmp.Diff(map[string]int64{KindTPM: 200_000, KindTPD: 144_000_000}, limits); d != "" {
			t.Errorf("%s: Sonnet 4 cross-region limits (-want +got):\n%s", r.Name, d)
		}
	}
}

func TestParseEmulatorGood(t *testing.T) {
	e, err := LoadEmulator(filepath.Join("testdata", "emulator-good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.DefaultRegion, "eu-central-1"; got != want {
		t.Errorf("default_region = %q, want %q", got, want)
	}
	if got, want := len(e.Regions), 1; got != want {
		t.Fatalf("regions replaced as a whole: got %d regions, want %d", got, want)
	}
	wantBuckets := []Bucket{
		{Name: "tpm", Kind: KindTPM, Limit: 10000},
		{Name: "tpd", Kind: KindTPD, Limit: 1000000},
		{Name: "rpm", Kind: KindRPM, Limit: 10, Scope: bedrock.Scope{Models: []string{"claude-sonnet-4"}, Inference: bedrock.InferenceCrossRegion}},
	}
	if d := cmp.Diff(wantBuckets, e.Regions[0].Buckets); d != "" {
		t.Errorf("buckets (-want +got):\n%s", d)
	}
	gotGen := e.Generation
	wantGen := DefaultEmulator().Generation
	wantGen.OutputTokens = Distribution{Distribution: DistUniform, Min: 10, Mean: 20, Max: 30}
	wantGen.TimeToFirstToken = Duration{250 * time.Millisecond}
	wantGen.TokensPerSecond = 50
	wantGen.ToolUse = ToolUse{Name: "Write", InputTokens: 6000, FilePath: "/tmp/out.txt"}
	if d := cmp.Diff(wantGen, gotGen); d != "" {
		t.Errorf("generation: settings left out keep their defaults (-want +got):\n%s", d)
	}
	if got, want := e.Faults.UnavailableRate, 0.1; got != want {
		t.Errorf("faults.unavailable_rate = %v, want %v", got, want)
	}
	if got, want := e.Accounting.Profile, "aws"; got != want {
		t.Errorf("accounting.profile = %q, want %q", got, want)
	}
}

// TestParseEmulatorBad has one file per rule; each must give exactly the one
// problem that names its field.
func TestParseEmulatorBad(t *testing.T) {
	tests := []struct {
		file  string
		field string // the problem starts with this field path
	}{
		{"emulator-bad-default-region.yaml", "default_region"},
		{"emulator-bad-region-name.yaml", "regions[Mars].name"},
		{"emulator-bad-region-twice.yaml", "regions[us-east-1].name"},
		{"emulator-bad-no-regions.yaml", "regions"},
		{"emulator-bad-bucket-kind.yaml", "regions[us-east-1].buckets[b].kind"},
		{"emulator-bad-bucket-limit.yaml", "regions[us-east-1].buckets[b].limit"},
		{"emulator-bad-bucket-scope-region.yaml", "regions[us-east-1].buckets[b].regions"},
		{"emulator-bad-profile.yaml", "accounting.profile"},
		{"emulator-bad-window.yaml", "windows.minute"},
		{"emulator-bad-scenario.yaml", "scenario"},
		{"emulator-bad-account.yaml", "account_id"},
		{"emulator-bad-listen.yaml", "listen"},
		{"emulator-bad-distribution.yaml", "generation.output_tokens.distribution"},
		{"emulator-bad-output-range.yaml", "generation.output_tokens"},
		{"emulator-bad-thinking-share.yaml", "generation.thinking_share"},
		{"emulator-bad-input-scale.yaml", "generation.input_token_scale"},
		{"emulator-bad-pace.yaml", "generation.tokens_per_second"},
		{"emulator-bad-chunk.yaml", "generation.chunk_tokens"},
		{"emulator-bad-tool-name.yaml", "generation.tool_use.name"},
		{"emulator-bad-tool-tokens.yaml", "generation.tool_use.input_tokens"},
		{"emulator-bad-tool-path.yaml", "generation.tool_use.file_path"},
		{"emulator-bad-fault-rate.yaml", "faults.unavailable_rate"},
		{"emulator-bad-mantle-kind.yaml", "regions[us-east-1].mantle[m].kind"},
		{"emulator-bad-mantle-inference.yaml", "regions[us-east-1].mantle[m].inference"},
		{"emulator-bad-mantle-queue.yaml", "mantle.queue.max_wait"},
		{"emulator-bad-slow-latency.yaml", "faults.slow_latency"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := LoadEmulator(filepath.Join("testdata", tt.file))
			var p Problems
			if !errors.As(err, &p) {
				t.Fatalf("got %v, want Problems", err)
			}
			if len(p) != 1 || !strings.HasPrefix(p[0], tt.field+":") {
				t.Errorf("got problems %q, want one about %s", p, tt.field)
			}
		})
	}
}

// TestParseEmulatorYAMLTerms: a misspelt field and a value of the wrong
// kind are problems named by their place in the file, in YAML's terms.
func TestParseEmulatorYAMLTerms(t *testing.T) {
	for f, want := range map[string]string{
		"emulator-bad-unknown-field.yaml": "line 2: generation.tokens_per_minute: unknown field (known fields: chunk_tokens,",
		"emulator-bad-duration.yaml":      "line 2: generation.time_to_first_token: expected a duration with its unit like 60s or 1m30s, got the bare number 5",
	} {
		_, err := LoadEmulator(filepath.Join("testdata", f))
		var p Problems
		if !errors.As(err, &p) || len(p) != 1 || !strings.HasPrefix(p[0], want) {
			t.Errorf("%s: got %v, want one problem %q", f, err, want)
		}
	}
}

func TestValidateEmulatorReportsEveryProblem(t *testing.T) {
	_, err := LoadEmulator(filepath.Join("testdata", "emulator-bad-many.yaml"))
	var p Problems
	if !errors.As(err, &p) {
		t.Fatalf("got %v, want Problems", err)
	}
	var fields []string
	for _, s := range p {
		f, _, _ := strings.Cut(s, ":")
		fields = append(fields, f)
	}
	want := []string{
		"account_id",
		"scenario",
		"accounting.profile",
		"windows.minute",
		"windows.day",
		"windows.day_reset_hour_utc",
		"regions[us-east-1].buckets[b].kind",
		"regions[us-east-1].buckets[b].limit",
		"regions[us-east-1].buckets[b].name",
		"default_region",
		"generation.output_tokens.distribution",
		"generation.output_tokens",
		"generation.chunk_tokens",
		"faults.slow_rate",
	}
	if d := cmp.Diff(want, fields); d != "" {
		t.Errorf("problem fields (-want +got):\n%s", d)
	}
}

func TestLoadEmulatorMissingFile(t *testing.T) {
	_, err := LoadEmulator(filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want a not-exist error", err)
	}
}
