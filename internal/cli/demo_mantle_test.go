package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/claudecodetest"
)

// TestServeDemoClaudeCodeMantleMode: `serve --demo` serves Claude Code in
// Mantle mode too: the real Claude Code 2.1.332 with
// CLAUDE_CODE_USE_MANTLE=1, ANTHROPIC_BEDROCK_MANTLE_BASE_URL at the demo
// gateway and a demo key completes `claude -p` (the Messages API, through
// the demo's runtime emulator's /anthropic/v1/messages), and the call is
// charged to the demo's ledger.
func TestServeDemoClaudeCodeMantleMode(t *testing.T) {
	claude := claudecodetest.Binary(t)
	out, base, errb, stop := runDemoLog(t)
	defer stop()
	secrets := secretRE.FindAllString(out, -1)
	if len(secrets) == 0 || !strings.Contains(out, "CLAUDE_CODE_USE_MANTLE=1") {
		t.Fatalf("no key or Mantle-mode settings in:\n%s", out)
	}
	_, _, aliceBefore := getStatus(t, base) // secrets[0] is alice's
	rctx, rcancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer rcancel()
	res, ok := claudecodetest.RunMantle(rctx, t, claude, base, secrets[0], "Say hello.", "CLAUDE_CODE_MAX_RETRIES=0")
	if !ok || res.Err != nil || res.IsError || res.Result == "" {
		t.Fatalf("claude -p in Mantle mode through serve --demo: %v\n%s\n%s\ngateway log:\n%.4000s", res.Err, res.Stdout, res.Stderr, errb.String())
	}
	if !strings.Contains(errb.String(), `"op":"Messages"`) {
		t.Errorf("the gateway logged no Messages call:\n%.4000s", errb.String())
	}
	_, _, aliceAfter := getStatus(t, base)
	if aliceAfter <= aliceBefore {
		t.Errorf("alice's usage today went from %d to %d: the call was not charged", aliceBefore, aliceAfter)
	}
	t.Logf("claude -p in Mantle mode through the demo: %q; alice's usage %d -> %d", res.Result, aliceBefore, aliceAfter)
}
