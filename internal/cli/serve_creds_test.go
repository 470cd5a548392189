package cli

import (
	"strings"
	"testing"

	"github.com/headroomhq/headroom/internal/upstream/upstreamtest"
)

// TestServeWarnsWithoutCredentials: a gateway whose upstream uses the AWS
// default credential chain, started on a host where the chain finds
// nothing, says so at start-up, naming the upstream and the fix, instead of
// waiting for the first developer's request to fail.
func TestServeWarnsWithoutCredentials(t *testing.T) {
	upstreamtest.NoCredentials(t, "", "") // the SDK's chain finds nothing on this machine
	s := startInProcess(t, serveConfig(t, "{mode: default}", ""))
	const want = "no AWS credentials for upstream"
	s.waitFor(func() bool { return strings.Contains(s.stderr.String(), want) })
	if code := s.stop(); code != 0 {
		t.Errorf("serve exited %d, want 0 (a warning, not a failure)\n%s", code, s.stderr.String())
	}
	log := s.stderr.String()
	var line string
	for l := range strings.Lines(log) {
		if strings.Contains(l, want) {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no %q warning in the log:\n%s", want, log)
	}
	for _, part := range []string{`"level":"WARN"`, `"upstream":"prod"`, "aws sso login"} {
		if !strings.Contains(line, part) {
			t.Errorf("warning %s does not contain %s", line, part)
		}
	}
}
