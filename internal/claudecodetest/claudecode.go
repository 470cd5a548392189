// Package claudecodetest runs the real Claude Code CLI (npm
// @anthropic-ai/claude-code) in Bedrock or Mantle mode for the tests that check
// Headroom against what users run. It is imported only by tests.
//
// The binary is found through HEADROOM_CLAUDE, which scripts/test.sh sets
// after installing Claude Code; without it a test is skipped, except in CI,
// where it fails, so a missing install cannot pass as green.
package claudecodetest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// Binary returns the path of the claude binary, skipping the test when
// HEADROOM_CLAUDE is unset outside CI.
func Binary(t testing.TB) string {
	t.Helper()
	claude := os.Getenv("HEADROOM_CLAUDE")
	if claude == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("HEADROOM_CLAUDE is not set in CI: scripts/test.sh installs Claude Code and sets it")
		}
		t.Skip("HEADROOM_CLAUDE is not set (run the tests with scripts/test.sh, or npm install --prefix DIR @anthropic-ai/claude-code and HEADROOM_CLAUDE=DIR/node_modules/.bin/claude)")
	}
	return claude
}

// Result is the part of `claude -p --output-format json` the tests read,
// with what the process printed.
type Result struct {
	IsError        bool   `json:"is_error"`
	APIErrorStatus *int   `json:"api_error_status"`
	Result         string `json:"result"`
	// Stdout and Stderr are the raw output, for failure messages.
	Stdout, Stderr string `json:"-"`
	// Err is the process's exit error, if any.
	Err error `json:"-"`
}

// Run runs `claude -p PROMPT --output-format json` in Bedrock mode against
// baseURL with key as its Bedrock API key, in a fresh HOME and working
// directory, with only the environment it needs plus extraEnv. The
// non-streaming fallback is off, so a broken stream cannot hide behind it.
// ok is false when the output is not Claude Code's JSON result.
func Run(ctx context.Context, t testing.TB, claude, baseURL, key, prompt string, extraEnv ...string) (res Result, ok bool) {
	t.Helper()
	return RunWith(ctx, t, claude, baseURL, key, prompt, Options{Env: extraEnv})
}

// Options are a run's settings beyond Run's.
type Options struct {
	// Dir is the working directory, and HOME; "" is a fresh temporary one.
	Dir string
	// Args are more command-line arguments, such as
	// --allowedTools Write --permission-mode acceptEdits.
	Args []string
	// Env is more environment, NAME=VALUE.
	Env []string
	// Mantle runs Claude Code in Mantle mode (CLAUDE_CODE_USE_MANTLE=1,
	// ANTHROPIC_BEDROCK_MANTLE_BASE_URL=baseURL) instead of Bedrock mode.
	// Claude Code appends /v1/messages to the base URL.
	Mantle bool
}

// RunMantle is Run in Mantle mode: Claude Code sends Anthropic Messages to
// baseURL/v1/messages, with key as its Bedrock API key (Bearer).
func RunMantle(ctx context.Context, t testing.TB, claude, baseURL, key, prompt string, extraEnv ...string) (res Result, ok bool) {
	t.Helper()
	return RunWith(ctx, t, claude, baseURL, key, prompt, Options{Env: extraEnv, Mantle: true})
}

// RunWith is Run with options.
func RunWith(ctx context.Context, t testing.TB, claude, baseURL, key, prompt string, o Options) (res Result, ok bool) {
	t.Helper()
	home := o.Dir
	if home == "" {
		home = t.TempDir()
	}
	cmd := exec.CommandContext(ctx, claude, append([]string{"-p", prompt, "--output-format", "json"}, o.Args...)...)
	cmd.Dir = home // no project settings of this repository
	mode := []string{"CLAUDE_CODE_USE_BEDROCK=1", "ANTHROPIC_BEDROCK_BASE_URL=" + baseURL}
	if o.Mantle {
		mode = []string{"CLAUDE_CODE_USE_MANTLE=1", "ANTHROPIC_BEDROCK_MANTLE_BASE_URL=" + baseURL}
	}
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		mode[0], mode[1],
		"AWS_REGION=us-east-1",
		"AWS_BEARER_TOKEN_BEDROCK=" + key,
		"CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK=1",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
		"DISABLE_AUTOUPDATER=1",
	}, o.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	res.Err = cmd.Run()
	ok = json.Unmarshal(stdout.Bytes(), &res) == nil
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	return res, ok
}
