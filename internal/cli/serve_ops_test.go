package cli

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeOpsToken: operations.token_env names the variable whose value
// /v1/status and /metrics then require; an empty variable stops serve at
// start-up rather than leaving the endpoints open by mistake.
func TestServeOpsToken(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "serve.yaml")
	cfg := `listen: 127.0.0.1:0
upstreams:
  - name: emu
    region: us-east-1
    endpoint: http://127.0.0.1:1
    auth: {mode: none}
    buckets:
      - {name: tpm, kind: tpm, limit: 200000}
operations:
  token_env: HEADROOM_TEST_OPS_TOKEN
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"serve", "--config", cfgPath, "--data-dir", filepath.Join(dir, "data")}

	t.Setenv("HEADROOM_TEST_OPS_TOKEN", "")
	code, _, errOut := run(t, args...)
	if code != 1 || !strings.Contains(errOut, "HEADROOM_TEST_OPS_TOKEN (operations.token_env) is empty") {
		t.Fatalf("serve with the token variable empty: exit %d, stderr %s; want 1 and the variable named", code, errOut)
	}

	t.Setenv("HEADROOM_TEST_OPS_TOKEN", "tok3n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- Main(ctx, args, strings.NewReader(""), &stdout, &stderr) }()
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); {
		if m := listeningRE.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if base == "" {
		t.Fatalf("serve did not start: %s", stderr.String())
	}
	for _, tt := range []struct {
		auth string
		want int
	}{{"", 403}, {"Bearer wrong", 403}, {"Bearer tok3n", 200}} {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/status", nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET /v1/status with %q: %d, want %d", tt.auth, resp.StatusCode, tt.want)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exited %d: %s", code, stderr.String())
	}
}
