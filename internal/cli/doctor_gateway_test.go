package cli

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/doctor"
	"github.com/headroomhq/headroom/internal/emulator"
)

// noAWSCredentials leaves the SDK's credential chain empty and quick: no
// keys in the environment, no shared files, no instance metadata.
func noAWSCredentials(t *testing.T) {
	t.Helper()
	clearClaudeEnv(t)
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_CA_BUNDLE": "", "CLAUDE_CODE_USE_MANTLE": "", "ANTHROPIC_BEDROCK_MANTLE_BASE_URL": "",
	} {
		t.Setenv(k, v)
	}
}

// claudeProject writes a project whose .claude/settings.local.json sets env,
// as a developer pointed at a gateway has it, and returns its directory.
func claudeProject(t *testing.T, env map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	data, err := json.Marshal(map[string]any{"env": env})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, ".claude"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".claude", "settings.local.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// doctorJSON runs `doctor --json` with args and decodes the report.
func doctorJSON(t *testing.T, project string, args ...string) (int, doctor.Report, string) {
	t.Helper()
	code, out, errOut := runDoctorArgs(t, append([]string{"--json", "--home", t.TempDir(), "--project", project}, args...)...)
	var r doctor.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("doctor --json: exit %d, not JSON (%v):\n%s\nstderr: %s", code, err, out, errOut)
	}
	return code, r, out
}

func findingOf(r doctor.Report, id string) (doctor.Finding, bool) {
	for _, f := range r.Findings {
		if f.ID == id {
			return f, true
		}
	}
	return doctor.Finding{}, false
}

// checkThroughGateway checks a doctor report of a probe through the demo
// gateway as key alice: the gateway answered, the verdict is about the
// account behind it, and the unset CLAUDE_CODE_MAX_OUTPUT_TOKENS is no
// critical finding because the gateway caps max_tokens.
func checkThroughGateway(t *testing.T, code int, r doctor.Report, base, raw string) {
	t.Helper()
	p := r.Probe
	if p == nil || p.Endpoint != base || !p.ThroughGateway() {
		t.Fatalf("the probe did not go through the gateway at %s:\n%s", base, raw)
	}
	if p.Gateway.Key != "alice" || len(p.Gateway.Upstreams) != 1 || p.Gateway.Upstreams[0].Name != "demo-emulator" {
		t.Errorf("the gateway's answer: key %q, upstreams %+v", p.Gateway.Key, p.Gateway.Upstreams)
	}
	if len(p.Regions) != 1 || len(p.Regions[0].Calls) == 0 || !p.Regions[0].Calls[0].OK {
		t.Errorf("the tiny request through the gateway did not pass: %+v", p.Regions)
	}
	if rp := p.Regions[0]; rp.QuotaSource != doctor.QuotaSourceGateway || len(rp.Quotas) == 0 || rp.QuotaError != "" {
		t.Errorf("quotas %+v from %q (error %q); want the gateway's mirrored buckets", rp.Quotas, rp.QuotaSource, rp.QuotaError)
	}
	if code != 0 || r.Verdict.Name != doctor.VerdictHealthy || !strings.Contains(r.Verdict.Summary, "through Headroom") {
		t.Errorf("exit %d, verdict %+v; want healthy through Headroom", code, r.Verdict)
	}
	if len(r.Verdict.Gateway) == 0 || !strings.Contains(strings.Join(r.Verdict.Gateway, "\n"), "caps max_tokens") {
		t.Errorf("the verdict does not say what Headroom does: %q", r.Verdict.Gateway)
	}
	main := r.Models[0]
	if main.Gateway == nil || main.Gateway.Asked != 128000 || main.Output.MaxTokens >= 128000 {
		t.Errorf("main model %s: gateway cap %+v, max_tokens %d; want Claude Code's 128,000 capped", main.ID, main.Gateway, main.Output.MaxTokens)
	}
	if f, ok := findingOf(r, doctor.FindMaxOutput); !ok || f.Severity == doctor.Critical {
		t.Errorf("max-output finding %+v: a gateway that caps max_tokens makes it no critical finding", f)
	}
}

// TestDoctorProbesDemoGatewayOverHTTP: Claude Code's settings point at
// `serve --demo` over http:// with a bearer key; `doctor --probe` with no
// URL probes that gateway (not AWS), sends the key as the SDKs can over
// plain HTTP, and reports what the gateway knows and does.
func TestDoctorProbesDemoGatewayOverHTTP(t *testing.T) {
	noAWSCredentials(t)
	out, base, stop := runDemo(t)
	defer stop()
	alice := secretRE.FindString(out)
	project := claudeProject(t, map[string]string{
		doctor.EnvUseBedrock: "1", doctor.EnvRegion: "us-east-1", doctor.EnvBaseURL: base, doctor.EnvBearer: alice,
	})
	code, r, raw := doctorJSON(t, project, "--probe")
	checkThroughGateway(t, code, r, base, raw)
	if !r.Probe.BearerKey {
		t.Error("the bearer key was not sent")
	}

	// The text report says the same to a person.
	code, text, _ := runDoctorArgs(t, "--home", t.TempDir(), "--project", project, "--probe")
	for _, want := range []string{"Headroom gateway at " + base, "What the Headroom gateway does about it", "Healthy through Headroom"} {
		if !strings.Contains(text, want) {
			t.Errorf("exit %d; the text report lacks %q:\n%s", code, want, text)
		}
	}
	if strings.Contains(text, "CRITICAL") {
		t.Errorf("a CRITICAL finding through a gateway that caps max_tokens:\n%s", text)
	}
}

// TestDoctorProbesDemoGatewayWithSigV4Key: the key given as the SigV4
// access key ID (AWS_ACCESS_KEY_ID), as an AWS SDK user has it, is the key
// the gateway sees, not a fixed placeholder.
func TestDoctorProbesDemoGatewayWithSigV4Key(t *testing.T) {
	noAWSCredentials(t)
	out, base, stop := runDemo(t)
	defer stop()
	t.Setenv("AWS_ACCESS_KEY_ID", secretRE.FindString(out))
	t.Setenv("AWS_SECRET_ACCESS_KEY", "anything")
	project := claudeProject(t, map[string]string{doctor.EnvUseBedrock: "1", doctor.EnvRegion: "us-east-1"})
	code, r, raw := doctorJSON(t, project, "--probe", base)
	checkThroughGateway(t, code, r, base, raw)
}

// TestDoctorProbesDemoGatewayOverHTTPS: the same over https://, the bearer
// key sent as a bearer token, the gateway's certificate trusted through
// AWS_CA_BUNDLE as every AWS SDK does.
func TestDoctorProbesDemoGatewayOverHTTPS(t *testing.T) {
	noAWSCredentials(t)
	cert, key, _ := selfSigned(t)
	t.Setenv("AWS_CA_BUNDLE", cert)
	out, base, stop := runDemo(t, "--tls-cert", cert, "--tls-key", key)
	defer stop()
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("the demo with --tls-cert serves %s", base)
	}
	project := claudeProject(t, map[string]string{
		doctor.EnvUseBedrock: "1", doctor.EnvRegion: "us-east-1", doctor.EnvBearer: secretRE.FindString(out),
	})
	code, r, raw := doctorJSON(t, project, "--probe", base)
	checkThroughGateway(t, code, r, base, raw)
}

// TestDoctorProbeWithoutCredentials: with no key for the gateway, and with
// no AWS credentials at all, the probe's refusals give no verdict (no
// "Situation N") but say what is missing.
func TestDoctorProbeWithoutCredentials(t *testing.T) {
	noAWSCredentials(t)
	_, base, stop := runDemo(t)
	defer stop()
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantMiss string
	}{
		{"gateway without a key", map[string]string{doctor.EnvUseBedrock: "1", doctor.EnvRegion: "us-east-1", doctor.EnvBaseURL: base},
			[]string{"--probe"}, "a Headroom key"},
		{"gateway with a wrong key", map[string]string{doctor.EnvUseBedrock: "1", doctor.EnvRegion: "us-east-1", doctor.EnvBearer: "hr_not_a_key"},
			[]string{"--probe", base}, "a key the endpoint accepts"},
		{"AWS without credentials", map[string]string{doctor.EnvUseBedrock: "1", doctor.EnvRegion: "us-east-1"},
			[]string{"--probe", "--regions", "us-east-1"}, "AWS credentials"},
	}
	for _, tt := range tests {
		project := claudeProject(t, tt.env)
		code, r, raw := doctorJSON(t, project, tt.args...)
		if code != 1 || r.Verdict.Name != doctor.VerdictNoCredentials || r.Verdict.Situation != doctor.SituationNone {
			t.Errorf("%s: exit %d, verdict %+v; want exit 1 and no verdict", tt.name, code, r.Verdict)
		}
		if !strings.Contains(r.Verdict.Summary, tt.wantMiss) {
			t.Errorf("%s: the verdict does not say %q is missing: %q", tt.name, tt.wantMiss, r.Verdict.Summary)
		}
		_, text, _ := runDoctorArgs(t, append([]string{"--home", t.TempDir(), "--project", project}, tt.args...)...)
		if strings.Contains(text, "Situation") {
			t.Errorf("%s: a situation is named although nothing was learned:\n%s", tt.name, text)
		}
		_ = raw
	}
}

// TestDoctorProbeGatewayMirroringZeroQuotas: a gateway whose mirror of the
// account holds quotas of 0 (the seed's provisioning bug, in the emulator
// behind it): the doctor says Situation 1 for the account behind the
// gateway, and never that the settings "fit the quota".
func TestDoctorProbeGatewayMirroringZeroQuotas(t *testing.T) {
	noAWSCredentials(t)
	ec := config.DefaultEmulator()
	ec.Scenario = config.ScenarioProvisioningBug
	em, err := emulator.New(ec, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(em)
	defer up.Close()
	cfgFile := filepath.Join(t.TempDir(), "serve.yaml")
	yaml := `listen: 127.0.0.1:0
upstreams:
  - name: account
    region: us-east-1
    endpoint: ` + up.URL + `
    auth: {mode: none}
    buckets:
      - {name: sonnet-4-tpm, kind: tpm, limit: 100, models: [claude-sonnet-4-2025]}
      - {name: sonnet-4-tpd, kind: tpd, limit: 0, models: [claude-sonnet-4-2025]}
`
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	secret := newKey(t, "alice", "--data-dir", dataDir)
	_, base := startServeChild(t, "--config "+cfgFile+" --data-dir "+dataDir)
	project := claudeProject(t, map[string]string{
		doctor.EnvUseBedrock: "1", doctor.EnvRegion: "us-east-1", doctor.EnvBaseURL: base,
		doctor.EnvBearer: secret, doctor.EnvModel: "us.anthropic.claude-sonnet-4-20250514-v1:0",
		doctor.EnvMaxOutput: "4096",
	})
	code, r, raw := doctorJSON(t, project, "--probe")
	if code != exitProvisioning || r.Verdict.Situation != doctor.SituationProvisioning || !strings.Contains(r.Verdict.Summary, "behind the gateway") {
		t.Errorf("exit %d, verdict %+v; want Situation 1 for the account behind the gateway\n%s", code, r.Verdict, raw)
	}
	_, text, _ := runDoctorArgs(t, "--home", t.TempDir(), "--project", project, "--probe")
	for _, bad := range []string{"fits the quota", "fits the per-minute quota"} {
		if strings.Contains(text, bad) {
			t.Errorf("the report says %q beside applied quotas of 0:\n%s", bad, text)
		}
	}
}
