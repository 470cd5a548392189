package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/doctor"
	"github.com/headroomhq/headroom/internal/emulator"
)

func TestSplitProbeFlag(t *testing.T) {
	tests := []struct {
		args  []string
		rest  []string
		probe bool
		url   string
	}{
		{[]string{"--json"}, []string{"--json"}, false, ""},
		{[]string{"--probe"}, nil, true, ""},
		{[]string{"--probe", "--json"}, []string{"--json"}, true, ""},
		{[]string{"--probe", "http://127.0.0.1:4567", "--json"}, []string{"--json"}, true, "http://127.0.0.1:4567"},
		{[]string{"-probe=https://gw.example.com"}, nil, true, "https://gw.example.com"},
		{[]string{"--regions", "us-east-1", "--probe"}, []string{"--regions", "us-east-1"}, true, ""},
		{[]string{"--", "--probe"}, []string{"--", "--probe"}, false, ""},
	}
	for _, tt := range tests {
		rest, probe, url := splitProbeFlag(tt.args)
		if !cmp.Equal(rest, tt.rest) || probe != tt.probe || url != tt.url {
			t.Errorf("splitProbeFlag(%q) = %q, %v, %q; want %q, %v, %q", tt.args, rest, probe, url, tt.rest, tt.probe, tt.url)
		}
	}
}

func runDoctorArgs(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(context.Background(), append([]string{"doctor"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// clearClaudeEnv keeps the test's process environment from changing the
// doctor's inputs.
func clearClaudeEnv(t *testing.T) {
	for _, k := range []string{doctor.EnvUseBedrock, doctor.EnvRegion, doctor.EnvDefaultRegion, doctor.EnvProfile, doctor.EnvBearer,
		doctor.EnvSkipAuth, doctor.EnvBaseURL, doctor.EnvMaxOutput, doctor.EnvThinking, doctor.EnvModel, doctor.EnvHaikuModel,
		doctor.EnvSmallFastModel, doctor.EnvToolConcurrency, doctor.EnvNoCaching, "CLAUDE_CONFIG_DIR"} {
		t.Setenv(k, "")
	}
}

func TestDoctorCommandSeed(t *testing.T) {
	clearClaudeEnv(t)
	home := filepath.Join("..", "doctor", "testdata", "seed", "home")
	code, out, errOut := runDoctorArgs(t, "--home", home, "--project", t.TempDir(), "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	var r struct {
		Models []struct {
			Fits []struct {
				Profile     string `json:"profile"`
				Reservation int64  `json:"reservation"`
			} `json:"fits"`
		} `json:"models"`
		Verdict struct {
			Name string `json:"name"`
		} `json:"verdict"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output does not decode: %v\n%s", err, out)
	}
	if got := r.Models[0].Fits[0].Reservation; got != 20480 || r.Verdict.Name != doctor.VerdictHealthy {
		t.Errorf("seed reservation %d, verdict %s; want 20,480, healthy", got, r.Verdict.Name)
	}
}

func TestDoctorCommandDefaults(t *testing.T) {
	clearClaudeEnv(t)
	dir := t.TempDir()
	code, out, _ := runDoctorArgs(t, "--home", dir, "--project", dir, "--tpm", "500000", "--input-tokens", "1000")
	if code != exitReservations {
		t.Errorf("exit %d, want %d (Situation 2)", code, exitReservations)
	}
	for _, want := range []string{"CLAUDE_CODE_MAX_OUTPUT_TOKENS is unset, so every request asks for 128,000", "seed 1,281,000 | aws 129,000", "us.anthropic.claude-opus-5-5", "flags --tpm/--tpd", "1,000 input tokens"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDoctorCommandBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--profile", "x"}, {"--calls-per-task", "0"}, {"extra"}} {
		if code, _, _ := runDoctorArgs(t, args...); code != 2 {
			t.Errorf("doctor %q: exit %d, want 2", args, code)
		}
	}
	if code, _, errOut := runDoctorArgs(t, "--help"); code != 0 || !strings.Contains(errOut, "--probe [URL]") {
		t.Errorf("--help: exit %d, usage %q", code, errOut)
	}
}

// TestDoctorCommandProbe runs `doctor --probe URL` against the emulator in
// the provisioning-bug scenario: Situation 1, with a support case.
func TestDoctorCommandProbe(t *testing.T) {
	clearClaudeEnv(t)
	cfg := config.DefaultEmulator()
	cfg.Scenario = config.ScenarioProvisioningBug
	em, err := emulator.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em)
	defer srv.Close()
	home := filepath.Join("..", "doctor", "testdata", "seed", "home")
	code, out, errOut := runDoctorArgs(t, "--home", home, "--project", t.TempDir(), "--probe", srv.URL, "--regions", "us-east-1,eu-west-1")
	if code != exitProvisioning {
		t.Fatalf("exit %d, want %d (Situation 1); stderr %s\n%s", code, exitProvisioning, errOut, out)
	}
	for _, want := range []string{"Situation 1", "Support case", "us-east-1, eu-west-1", "L-59759B4A"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The numbers are the documented defaults: beside applied quotas of 0
	// they must not be said to fit.
	for _, bad := range []string{"fits the quota", "fits the per-minute quota"} {
		if strings.Contains(out, bad) {
			t.Errorf("output says %q under Situation 1:\n%s", bad, out)
		}
	}
}
