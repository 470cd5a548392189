package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
)

// Claude Code (npm @anthropic-ai/claude-code, found through HEADROOM_CLAUDE)
// in Bedrock mode against the emulator, streaming only, as BEDROCK.md
// section 4 describes it.

func claudeBinary(t *testing.T) string {
	claude := os.Getenv("HEADROOM_CLAUDE")
	if claude == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("HEADROOM_CLAUDE is not set: CI must install Claude Code and point HEADROOM_CLAUDE at it")
		}
		t.Skip("HEADROOM_CLAUDE is not set (path of the claude binary)")
	}
	return claude
}

// claudeResult is the part of `claude -p --output-format json` the tests read.
type claudeResult struct {
	IsError        bool   `json:"is_error"`
	APIErrorStatus *int   `json:"api_error_status"`
	Result         string `json:"result"`
}

// runClaude runs `claude -p PROMPT --output-format json` against url with a
// fresh HOME and only the environment it needs.
func runClaude(t *testing.T, claude, url string, extraEnv ...string) claudeResult {
	t.Helper()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, claude, "-p", "say hi", "--output-format", "json")
	cmd.Dir = home // no project settings of this repository
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"CLAUDE_CODE_USE_BEDROCK=1",
		"AWS_REGION=us-east-1",
		"ANTHROPIC_BEDROCK_BASE_URL=" + url,
		"AWS_BEARER_TOKEN_BEDROCK=test",
		"CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK=1",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
	}, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var res claudeResult
	if jerr := json.Unmarshal(stdout.Bytes(), &res); jerr != nil {
		t.Fatalf("claude: %v; stdout %q; stderr %q", err, stdout.String(), stderr.String())
	}
	return res
}

func TestClaudeCode(t *testing.T) {
	claude := claudeBinary(t)
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
