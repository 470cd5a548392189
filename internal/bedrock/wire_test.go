package bedrock

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePath(t *testing.T) {
	type result struct {
		Model string
		Op    Operation
		OK    bool
	}
	const sonnet = "us.anthropic.claude-sonnet-4-20250514-v1:0"
	tests := []struct {
		path string
		want result
	}{
		{"/model/" + sonnet + "/invoke", result{sonnet, OpInvoke, true}},
		{"/model/" + sonnet + "/invoke-with-response-stream", result{sonnet, OpInvokeStream, true}},
		{"/model/" + sonnet + "/converse", result{sonnet, OpConverse, true}},
		{"/model/" + sonnet + "/converse-stream", result{sonnet, OpConverseStream, true}},
		{"/model/" + sonnet + "/count-tokens", result{sonnet, OpCountTokens, true}},
		{"/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke", result{"us.anthropic.claude-sonnet-4-20250514-v1%3A0", OpInvoke, true}},
		{"/model/arn:aws:bedrock:us-east-1:123:inference-profile%2F" + sonnet + "/converse", result{"arn:aws:bedrock:us-east-1:123:inference-profile%2F" + sonnet, OpConverse, true}},
		{"/model/arn:aws:bedrock:us-east-1:123:inference-profile/" + sonnet + "/invoke", result{"arn:aws:bedrock:us-east-1:123:inference-profile/" + sonnet, OpInvoke, true}},

		{"/model/" + sonnet + "/generate", result{}},
		{"/model/" + sonnet, result{}},
		{"/model//invoke", result{}},
		{"/model/", result{}},
		{"/models/" + sonnet + "/invoke", result{}},
		{"/inference-profiles", result{}},
		{"model/" + sonnet + "/invoke", result{}},
		{"/model/" + sonnet + "/invoke/", result{}},
	}
	for _, tt := range tests {
		m, op, ok := ParsePath(tt.path)
		if diff := cmp.Diff(tt.want, result{m, op, ok}); diff != "" {
			t.Errorf("ParsePath(%q) (-want +got):\n%s", tt.path, diff)
		}
	}
}

func TestParsePathThenParseModel(t *testing.T) {
	// Every spelling Claude Code and the SDKs use reaches the same model.
	for _, path := range []string{
		"/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke",
		"/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke",
		"/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fus.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke",
		"/model/arn:aws:bedrock:us-east-1:123:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke",
	} {
		raw, _, ok := ParsePath(path)
		if !ok {
			t.Fatalf("ParsePath(%q) failed", path)
		}
		m, err := ParseModel(raw)
		if err != nil {
			t.Fatalf("ParseModel(%q): %v", raw, err)
		}
		if got, want := m.Base, "anthropic.claude-sonnet-4-20250514-v1:0"; got != want {
			t.Errorf("%s: Base = %q, want %q", path, got, want)
		}
	}
}

func TestOperation(t *testing.T) {
	type facts struct {
		Name                string
		Streaming, Converse bool
	}
	tests := []struct {
		op   Operation
		want facts
	}{
		{OpInvoke, facts{"InvokeModel", false, false}},
		{OpInvokeStream, facts{"InvokeModelWithResponseStream", true, false}},
		{OpConverse, facts{"Converse", false, true}},
		{OpConverseStream, facts{"ConverseStream", true, true}},
		{OpCountTokens, facts{"CountTokens", false, false}},
		{Operation(0), facts{"Unknown", false, false}},
	}
	for _, tt := range tests {
		got := facts{tt.op.String(), tt.op.Streaming(), tt.op.Converse()}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%d (-want +got):\n%s", tt.op, diff)
		}
	}
}

func TestHeaderNamesAreCanonical(t *testing.T) {
	for _, h := range []string{HeaderRequestID, HeaderErrorType, HeaderInputTokens, HeaderOutputTokens, HeaderLatency, HeaderCacheReadTokens, HeaderCacheWriteTokens} {
		if got := http.CanonicalHeaderKey(h); got != h {
			t.Errorf("%q is not canonical (%q): map lookups in http.Header would miss it", h, got)
		}
	}
}
