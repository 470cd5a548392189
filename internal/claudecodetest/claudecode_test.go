package claudecodetest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestPinnedVersion: the Claude Code the real-client tests drive is the
// release scripts/test.sh pins (HEADROOM_CLAUDE_VERSION, which it sets
// with HEADROOM_CLAUDE), so a stale cache or a wrong install cannot pass
// as the current release.
func TestPinnedVersion(t *testing.T) {
	claude := Binary(t)
	want := os.Getenv("HEADROOM_CLAUDE_VERSION")
	if want == "" {
		t.Skip("HEADROOM_CLAUDE_VERSION is not set: HEADROOM_CLAUDE was given by hand, at a version of its own")
	}
	out, err := exec.Command(claude, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", claude, err)
	}
	got, _, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if got != want {
		t.Errorf("%s --version says %q; the tests pin %s", claude, strings.TrimSpace(string(out)), want)
	}
}
