package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/upstream/upstreamtest"
)

// TestServeWarnsWithoutCredentials: a gateway whose upstream uses the AWS
// default credential chain, started on a host where the chain finds
// nothing, says so at start-up, naming the upstream and the fix, instead of
// waiting for the first developer's request to fail.
func TestServeWarnsWithoutCredentials(t *testing.T) {
	dir := t.TempDir()
	upstreamtest.NoCredentials(t, "", "") // the SDK's chain finds nothing on this machine
	cfgPath := filepath.Join(dir, "serve.yaml")
	cfg := `listen: 127.0.0.1:0
upstreams:
  - name: prod
    region: us-east-1
    endpoint: http://127.0.0.1:1
    auth: {mode: default}
    buckets:
      - {name: tpm, kind: tpm, limit: 200000}
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "--config", cfgPath, "--data-dir", filepath.Join(dir, "data")},
			strings.NewReader(""), &stdout, &stderr)
	}()
	const want = "no AWS credentials for upstream"
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exited %d, want 0 (a warning, not a failure)\n%s", code, stderr.String())
	}
	log := stderr.String()
	var line string
	for l := range strings.Lines(log) {
		if strings.Contains(l, want) {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no %q warning in the log:\n%s", want, log)
	}
	for _, s := range []string{`"level":"WARN"`, `"upstream":"prod"`, "aws sso login"} {
		if !strings.Contains(line, s) {
			t.Errorf("warning %s does not contain %s", line, s)
		}
	}
}
