package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveYAML writes cfg as serve.yaml in a fresh directory and returns the
// arguments that serve it (serve --config, --data-dir) and the data
// directory, for keys made before it starts.
func serveYAML(t *testing.T, cfg string) (args []string, data string) {
	t.Helper()
	dir := t.TempDir()
	path, data := filepath.Join(dir, "serve.yaml"), filepath.Join(dir, "data")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"serve", "--config", path, "--data-dir", data}, data
}

// serveConfig writes a serve configuration with one upstream at an
// unreachable endpoint, authenticated as auth (a YAML flow map), plus
// extra top-level YAML, and returns the arguments that serve it from a
// fresh data directory.
func serveConfig(t *testing.T, auth, extra string) []string {
	t.Helper()
	args, _ := serveYAML(t, `listen: 127.0.0.1:0
upstreams:
  - name: prod
    region: us-east-1
    endpoint: http://127.0.0.1:1
    auth: `+auth+`
    buckets:
      - {name: tpm, kind: tpm, limit: 200000}
`+extra)
	return args
}

// inProcessServe is `headroom serve` run by Main in this process.
type inProcessServe struct {
	stdout, stderr syncBuffer
	cancel         context.CancelFunc
	done           chan int
}

func startInProcess(t *testing.T, args []string) *inProcessServe {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &inProcessServe{cancel: cancel, done: make(chan int, 1)}
	go func() { s.done <- Main(ctx, args, strings.NewReader(""), &s.stdout, &s.stderr) }()
	t.Cleanup(func() { cancel(); <-s.done })
	return s
}

// waitFor polls until cond holds or 10 s pass, and reports which.
func (s *inProcessServe) waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// url waits for the listening line and returns the gateway's base URL.
func (s *inProcessServe) url(t *testing.T) string {
	t.Helper()
	var base string
	if !s.waitFor(func() bool {
		m := listeningRE.FindStringSubmatch(s.stdout.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	}) {
		t.Fatalf("serve did not start: %s", s.stderr.String())
	}
	return base
}

// stop ends serve as a signal would and returns its exit code.
func (s *inProcessServe) stop() int {
	s.cancel()
	code := <-s.done
	s.done <- code // for the cleanup
	return code
}
