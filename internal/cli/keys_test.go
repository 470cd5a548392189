package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/store/sqlitestore"
)

// run runs the CLI with buffers and returns the exit code and both outputs.
// newKey runs `headroom keys create ARGS...` (a name and flags), fails the
// test unless it succeeds, and returns the key's secret.
func newKey(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, append([]string{"keys", "create"}, args...)...)
	secret := secretRE.FindString(out)
	if code != 0 || secret == "" {
		t.Fatalf("keys create %v: exit %d, %q %q", args, code, out, errOut)
	}
	return secret
}

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

var secretRE = regexp.MustCompile(`hr_[0-9A-Za-z]{40}`)

func TestKeysCreatePrintsSecretOnceWithSettings(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := run(t, "keys", "create", "alice", "--weight", "2", "--daily-tokens", "500000",
		"--max-concurrency", "4", "--max-output-tokens", "8192", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	secrets := secretRE.FindAllString(out, -1)
	if len(secrets) != 2 { // once on its own, once in the settings
		t.Fatalf("found %d secrets in %q, want 2", len(secrets), out)
	}
	secret := secrets[0]
	settings := out[strings.Index(out, "{"):]
	var got map[string]map[string]string
	if err := json.Unmarshal([]byte(settings), &got); err != nil {
		t.Fatalf("settings are not JSON: %v\n%s", err, settings)
	}
	want := map[string]map[string]string{"env": {
		"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": "us-east-1",
		"ANTHROPIC_BEDROCK_BASE_URL": "http://127.0.0.1:8080", "AWS_BEARER_TOKEN_BEDROCK": secret,
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}

	// The store holds the hash and the limits, and the gateway's registry
	// accepts the secret.
	st := openStore(t, dir)
	r := keys.NewRegistry(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	k, err := r.Authenticate(context.Background(), secret)
	if err != nil {
		t.Fatalf("Authenticate(printed secret): %v", err)
	}
	gotKey := viewOf(k)
	wantKey := keyView{Name: "alice", Weight: 2, DailyTokens: 500000, MaxConcurrency: 4, MaxOutputTokens: 8192}
	if diff := cmp.Diff(wantKey, gotKey, cmpopts.IgnoreFields(keyView{}, "CreatedAt")); diff != "" {
		t.Errorf("stored key (-want +got):\n%s", diff)
	}

	// list never shows the secret.
	for _, args := range [][]string{{"keys", "list", "--data-dir", dir}, {"keys", "list", "--json", "--data-dir", dir}} {
		code, out, _ := run(t, args...)
		if code != 0 || !strings.Contains(out, "alice") || strings.Contains(out, secret) || strings.Contains(out, secret[3:]) {
			t.Errorf("%v: exit %d, output %q: want alice listed without the secret", args, code, out)
		}
	}
}

func TestKeysCreateJSON(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := run(t, "keys", "create", "--data-dir", dir, "--json", "bob", "--gateway-url", "https://gw.example:8443", "--region", "eu-west-1")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var got struct {
		keyView
		Secret         string `json:"secret"`
		ClaudeSettings struct {
			Env map[string]string `json:"env"`
		} `json:"claude_settings"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if !keys.WellFormed(got.Secret) {
		t.Errorf("secret %q is not well formed", got.Secret)
	}
	if got.Name != "bob" || got.Weight != 1 || got.CreatedAt.IsZero() {
		t.Errorf("key = %+v", got.keyView)
	}
	wantEnv := map[string]string{"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": "eu-west-1",
		"ANTHROPIC_BEDROCK_BASE_URL": "https://gw.example:8443", "AWS_BEARER_TOKEN_BEDROCK": got.Secret}
	if diff := cmp.Diff(wantEnv, got.ClaudeSettings.Env); diff != "" {
		t.Errorf("settings env (-want +got):\n%s", diff)
	}
	if _, err := openStore(t, dir).Lookup(context.Background(), keys.Hash(got.Secret)); err != nil {
		t.Errorf("stored hash lookup: %v", err)
	}
}

// --config supplies the data directory, the gateway URL and the region.
func TestKeysCreateUsesConfig(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "serve.yaml")
	writeFile(t, cfg, "listen: 0.0.0.0:9090\ndata_dir: "+data+"\nupstreams:\n  - {name: eu, region: eu-west-1}\n")
	code, out, errOut := run(t, "keys", "create", "carol", "--config", cfg, "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var got struct {
		ClaudeSettings struct {
			Env map[string]string `json:"env"`
		} `json:"claude_settings"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if u, r := got.ClaudeSettings.Env["ANTHROPIC_BEDROCK_BASE_URL"], got.ClaudeSettings.Env["AWS_REGION"]; u != "http://127.0.0.1:9090" || r != "eu-west-1" {
		t.Errorf("settings URL, region = %q, %q; want http://127.0.0.1:9090, eu-west-1", u, r)
	}
	if _, err := os.Stat(filepath.Join(data, sqlitestore.FileName)); err != nil {
		t.Errorf("store not created in the config's data_dir: %v", err)
	}
	// An invalid config is refused before anything is written.
	writeFile(t, cfg, "listen: ''\nupstreams: []\n")
	if code, _, errOut := run(t, "keys", "list", "--config", cfg); code != 1 || !strings.Contains(errOut, "listen") {
		t.Errorf("list with a bad config: exit %d, stderr %q; want 1 naming the problem", code, errOut)
	}
}

func TestKeysLifecycle(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	tests := []struct {
		args     []string
		wantCode int
	}{
		{[]string{"keys", "list"}, 0},
		{[]string{"keys", "create", "alice"}, 0},
		{[]string{"keys", "create", "alice"}, 1},              // exists
		{[]string{"keys", "create", "bad name"}, 2},           // invalid name
		{[]string{"keys", "create", "x", "--weight", "0"}, 2}, // invalid weight
		{[]string{"keys", "create", "x", "--weight", "many"}, 2},
		{[]string{"keys", "create"}, 2},
		{[]string{"keys", "create", "a", "b"}, 2},
		{[]string{"keys", "revoke", "nobody"}, 1},
		{[]string{"keys", "revoke", "alice"}, 0},
		{[]string{"keys", "revoke", "alice"}, 0}, // already revoked: nothing to do
		{[]string{"keys", "create", "alice"}, 0}, // a revoked name can be reused
		{[]string{"keys", "list", "extra"}, 2},
		{[]string{"keys", "rotate"}, 2},
		{[]string{"keys"}, 2},
	}
	for _, tt := range tests {
		code, _, errOut := run(t, append(tt.args, "--data-dir", dir)...)
		if code != tt.wantCode {
			t.Errorf("%v: exit %d (stderr %q), want %d", tt.args, code, errOut, tt.wantCode)
		}
	}
	ks, err := openStore(t, dir).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The new alice, and the revoked one kept under its archived name.
	if len(ks) != 2 || ks[0].Name != "alice" || ks[0].Revoked() || !ks[1].Revoked() {
		t.Errorf("keys after lifecycle = %v, want an active alice and the revoked one kept", ks)
	}
}

// A key revoked by the CLI while a gateway's registry is running is refused
// after the registry's next refresh, without any cache miss.
func TestRevokeReachesRunningRegistry(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	_, out, _ := run(t, "keys", "create", "dave", "--data-dir", dir)
	secret := secretRE.FindString(out)
	r := keys.NewRegistry(openStore(t, dir), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Authenticate(ctx, secret); err != nil {
		t.Fatalf("before revoke: %v", err)
	}
	if code, _, errOut := run(t, "keys", "revoke", "dave", "--data-dir", dir); code != 0 {
		t.Fatalf("revoke: exit %d, %s", code, errOut)
	}
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Authenticate(ctx, secret); !errors.Is(err, keys.ErrRevoked) {
		t.Errorf("after revoke: %v, want ErrRevoked", err)
	}
}

func TestKeysListTableAndJSON(t *testing.T) {
	dir := t.TempDir()
	run(t, "keys", "create", "bob", "--data-dir", dir, "--daily-tokens", "1000")
	run(t, "keys", "create", "alice", "--data-dir", dir, "--weight", "0.5")
	run(t, "keys", "revoke", "bob", "--data-dir", dir)

	code, out, _ := run(t, "keys", "list", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines, want header + 2:\n%s", len(lines), out)
	}
	if f := strings.Fields(lines[1]); f[0] != "alice" || f[1] != "0.5" || f[len(f)-1] != "active" {
		t.Errorf("alice row = %q", lines[1])
	}
	if f := strings.Fields(lines[2]); f[0] != "bob" || f[2] != "1,000" || f[len(f)-2] != "revoked" {
		t.Errorf("bob row = %q", lines[2])
	}

	code, out, _ = run(t, "keys", "list", "--json", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var got []keyView
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "alice" || got[0].RevokedAt != nil || got[1].Name != "bob" || got[1].RevokedAt == nil {
		t.Errorf("list --json = %+v", got)
	}
	if strings.Contains(out, "hash") {
		t.Errorf("list --json mentions a hash: %s", out)
	}
}

func TestKeysHelp(t *testing.T) {
	for _, args := range [][]string{{"keys", "--help"}, {"keys", "create", "--help"}, {"keys", "list", "-h"}, {"keys", "revoke", "--help"}} {
		code, out, _ := run(t, args...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: exit %d, stdout %q; want usage on stdout", args, code, out)
		}
	}
}

func TestGatewayURL(t *testing.T) {
	tests := []struct {
		listen string
		tls    bool
		want   string
	}{
		{"127.0.0.1:8080", false, "http://127.0.0.1:8080"},
		{"0.0.0.0:8080", false, "http://127.0.0.1:8080"},
		{":9000", true, "https://127.0.0.1:9000"},
		{"[::]:8080", false, "http://127.0.0.1:8080"},
		{"[::1]:8080", false, "http://[::1]:8080"},
		{"gw.internal:443", true, "https://gw.internal:443"},
	}
	for _, tt := range tests {
		if got := gatewayURL(tt.listen, tt.tls); got != tt.want {
			t.Errorf("gatewayURL(%q, %v) = %q, want %q", tt.listen, tt.tls, got, tt.want)
		}
	}
}

func TestDefaultDataDir(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/xdg/data")
	if got, err := defaultDataDir(); err != nil || got != filepath.FromSlash("/xdg/data/headroom") {
		t.Errorf("with XDG_DATA_HOME: %q, %v", got, err)
	}
	t.Setenv("XDG_DATA_HOME", "relative/ignored") // the XDG spec says relative paths are invalid
	home := t.TempDir()
	t.Setenv("HOME", home)
	got, err := defaultDataDir()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, home) || filepath.Base(got) != "headroom" {
		t.Errorf("default data dir = %q, want under %q ending in headroom", got, home)
	}

	tests := []struct{ flag, cfg, want string }{
		{"/flag", "/cfg", "/flag"},
		{"", "/cfg", "/cfg"},
		{"", "", got},
	}
	for _, tt := range tests {
		if got, err := resolveDataDir(tt.flag, tt.cfg); err != nil || got != tt.want {
			t.Errorf("resolveDataDir(%q, %q) = %q, %v; want %q", tt.flag, tt.cfg, got, err, tt.want)
		}
	}
}

func openStore(t *testing.T, dir string) *sqlitestore.Store {
	t.Helper()
	st, err := sqlitestore.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
