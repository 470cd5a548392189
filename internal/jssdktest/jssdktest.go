// Package jssdktest runs the JavaScript AWS SDK v3
// (@aws-sdk/client-bedrock-runtime from npm) with its default request
// handler, which speaks HTTP/2, for the tests that check Headroom against
// what Node.js services run. It is imported only by tests.
//
// The SDK is found through HEADROOM_AWS_SDK_JS, the node_modules folder
// scripts/test.sh installs it into; without it a test is skipped, except in
// CI, where it fails, so a missing install cannot pass as green.
package jssdktest

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

//go:embed bedrock.cjs
var script []byte

// Modules returns the node_modules folder holding the SDK, skipping the
// test when HEADROOM_AWS_SDK_JS is unset outside CI.
func Modules(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("HEADROOM_AWS_SDK_JS")
	if dir == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("HEADROOM_AWS_SDK_JS is not set in CI: scripts/test.sh installs @aws-sdk/client-bedrock-runtime and sets it")
		}
		t.Skip("HEADROOM_AWS_SDK_JS is not set (run the tests with scripts/test.sh, or npm install --prefix DIR @aws-sdk/client-bedrock-runtime and HEADROOM_AWS_SDK_JS=DIR/node_modules)")
	}
	return dir
}

// Invoke is an InvokeModel or Converse answer as the script reports it.
type Invoke struct {
	Text         string `json:"text"`
	OutputTokens int    `json:"output_tokens"`
	StopReason   string `json:"stop_reason"`
	Events       int    `json:"events"`
}

// Result is what one run of the script did.
type Result struct {
	Invoke         Invoke `json:"invoke"`
	InvokeStream   Invoke `json:"invoke_stream"`
	Converse       Invoke `json:"converse"`
	ConverseStream Invoke `json:"converse_stream"`
	// Concurrent are the event counts of an InvokeModelWithResponseStream
	// and a ConverseStream run at once.
	Concurrent []int `json:"concurrent"`
	Error      *struct {
		Name    string `json:"name"`
		Code    string `json:"code"`
		Message string `json:"message"`
		Status  int    `json:"status"`
	} `json:"error"`
	// Stdout and Stderr are the raw output, for failure messages.
	Stdout, Stderr string `json:"-"`
	Err            error  `json:"-"`
}

// Run runs the script against endpoint for model with the SigV4 access key
// id accessKey (any secret key), in a fresh HOME so no AWS profile applies.
// ok is false when the output is not the script's JSON.
func Run(ctx context.Context, t testing.TB, modules, endpoint, model, accessKey string) (res Result, ok bool) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "bedrock.cjs")
	if err := os.WriteFile(path, script, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "node", path)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"NODE_PATH=" + modules,
		"ENDPOINT=" + endpoint,
		"MODEL=" + model,
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=" + accessKey,
		"AWS_SECRET_ACCESS_KEY=not-checked",
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	res.Err = cmd.Run()
	ok = json.Unmarshal(stdout.Bytes(), &res) == nil
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	return res, ok
}
