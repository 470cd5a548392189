package emulator

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/claudecodetest"
	"github.com/headroomhq/headroom/internal/config"
)

// Claude Code (npm @anthropic-ai/claude-code, found through HEADROOM_CLAUDE)
// in Bedrock mode against the emulator, streaming only, as BEDROCK.md
// section 4 describes it.

// runClaude runs Claude Code against url and fails the test when it prints
// no JSON result.
func runClaude(t *testing.T, claude, url string, extraEnv ...string) claudecodetest.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	res, ok := claudecodetest.Run(ctx, t, claude, url, "test", "say hi", extraEnv...)
	if !ok {
		t.Fatalf("claude: %v; stdout %q; stderr %q", res.Err, res.Stdout, res.Stderr)
	}
	return res
}

func TestClaudeCode(t *testing.T) {
	claude := claudecodetest.Binary(t)
	newServer := func(t *testing.T, cfg config.Emulator) (*Server, string) {
		s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), newClock().now)
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(s)
		t.Cleanup(hs.Close)
		return s, hs.URL
	}

	t.Run("answer", func(t *testing.T) {
		t.Parallel()
		// Seven text tokens, no thinking: exactly the opening sentence.
		cfg := oneRegion(tpm(10_000_000))
		cfg.Generation.OutputTokens = config.Distribution{Distribution: config.DistFixed, Mean: 7, Max: 7}
		cfg.Generation.ThinkingShare = 0
		s, url := newServer(t, cfg)
		res := runClaude(t, claude, url)
		if res.IsError || res.Result != Opening {
			t.Errorf("got %+v, want the answer %q", res, Opening)
		}
		st := s.Account().State(t0)
		if st.bucket(t, "us-east-1", "tpm").Used == 0 || st.inFlight("us-east-1") != 0 {
			t.Errorf("state after the run: %+v", st)
		}
	})

	t.Run("tiny quota", func(t *testing.T) {
		t.Parallel()
		// Smaller than any request: Claude Code reports the throttle.
		_, url := newServer(t, oneRegion(tpm(1000)))
		res := runClaude(t, claude, url, "CLAUDE_CODE_MAX_RETRIES=0")
		if !res.IsError || res.APIErrorStatus == nil || *res.APIErrorStatus != 429 || !strings.Contains(res.Result, bedrock.MsgTooManyTokens) {
			t.Errorf("got %+v, want a 429 with %q", res, bedrock.MsgTooManyTokens)
		}
	})
}
