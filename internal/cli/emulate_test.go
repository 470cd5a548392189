package cli

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/headroomhq/headroom/internal/config"
)

func runEmulateArgs(ctx context.Context, stdout io.Writer, args ...string) (code int, stderr string) {
	var errb bytes.Buffer
	code = Main(ctx, append([]string{"emulate"}, args...), strings.NewReader(""), stdout, &errb)
	return code, errb.String()
}

func TestEmulateHelpDocumentsEverySetting(t *testing.T) {
	code, stderr := runEmulateArgs(t.Context(), io.Discard, "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"--addr", "--config", "--scenario", "--profile", "--log-level", "/region/", config.EmulatorReference} {
		if !strings.Contains(stderr, want) {
			t.Errorf("--help does not mention %.60q", want)
		}
	}
}

func TestEmulateRefusesBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("default_region: nowhere\nfaults: {slow_rate: 3}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--config", bad}, 1, "2 problems"},
		{[]string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, 1, "missing.yaml"},
		{[]string{"--scenario", "outage"}, 1, "scenario"},
		{[]string{"--profile", "gcp"}, 1, "accounting.profile"},
		{[]string{"--nope"}, 2, "flag provided but not defined"},
		{[]string{"extra"}, 2, "unexpected argument"},
	}
	for _, tt := range tests {
		code, stderr := runEmulateArgs(t.Context(), io.Discard, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}

// TestEmulateServes runs the command on a free port, calls it, and stops
// it by cancelling its context.
func TestEmulateServes(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code, _ := runEmulateArgs(ctx, pw, "--addr", "127.0.0.1:0", "--scenario", "provisioning-bug")
		pw.Close()
		done <- code
	}()
	banner, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	url := strings.TrimSpace(banner[strings.Index(banner, "http://"):])
	resp, err := http.Post(url+"/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke", "application/json",
		strings.NewReader(`{"max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || !strings.Contains(string(body), "Too many tokens per day") {
		t.Errorf("provisioning-bug: %d %s", resp.StatusCode, body)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after cancel", code)
	}
}
