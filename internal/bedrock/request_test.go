package bedrock

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// msgs is the smallest messages member, so that test bodies are valid.
const msgs = `"messages":[{"role":"user","content":"hi"}]`

type readCase struct {
	name string
	body string
	want Request // InputTokens is not compared here (see estimate_test.go)
	// errIn, when set, means the body is refused with a ValidationException
	// whose message names this member.
	errIn string
}

var invokeCases = []readCase{
	{name: "claude code", body: `{` + msgs + `,"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999},"anthropic_beta":["interleaved-thinking-2025-05-14"],"anthropic_version":"bedrock-2023-05-31"}`,
		want: Request{MaxTokens: 32000, HasMaxTokens: true, Thinking: ThinkingEnabled, ThinkingBudget: 31999}},
	{name: "max_tokens first", body: `{"max_tokens":4096,` + msgs + `}`, want: Request{MaxTokens: 4096, HasMaxTokens: true}},
	{name: "max_tokens missing", body: `{` + msgs + `}`, want: Request{}},
	{name: "max_tokens null", body: `{"max_tokens":null,` + msgs + `}`, want: Request{}},
	{name: "max_tokens 1", body: `{"max_tokens":1,` + msgs + `}`, want: Request{MaxTokens: 1, HasMaxTokens: true}},
	{name: "max_tokens at limit", body: `{"max_tokens":1000000,` + msgs + `}`, want: Request{MaxTokens: 1000000, HasMaxTokens: true}},
	{name: "any anthropic_version", body: `{"anthropic_version":"2023-06-01","max_tokens":10,` + msgs + `}`, want: Request{MaxTokens: 10, HasMaxTokens: true}},
	{name: "pretty printed", body: "{\n  \"max_tokens\" : 64000 ,\n  \"messages\": [ ],\n  \"thinking\": {\n    \"budget_tokens\": 1024,\n    \"type\": \"enabled\"\n  }\n}\n",
		want: Request{MaxTokens: 64000, HasMaxTokens: true, Thinking: ThinkingEnabled, ThinkingBudget: 1024}},
	{name: "escaped key", body: `{"max\u005ftokens":77,` + msgs + `}`, want: Request{MaxTokens: 77, HasMaxTokens: true}},
	{name: "escaped thinking type", body: `{"thinking":{"type":"\u0065nabled","budget_tokens":2000},` + msgs + `}`,
		want: Request{Thinking: ThinkingEnabled, ThinkingBudget: 2000}},
	{name: "budget without max_tokens", body: `{"thinking":{"type":"enabled","budget_tokens":50000},` + msgs + `}`,
		want: Request{Thinking: ThinkingEnabled, ThinkingBudget: 50000}},
	{name: "adaptive", body: `{"max_tokens":64000,"thinking":{"type":"adaptive"},"output_config":{"effort":"high"},` + msgs + `}`,
		want: Request{MaxTokens: 64000, HasMaxTokens: true, Thinking: ThinkingAdaptive, Effort: "high"}},
	{name: "disabled", body: `{"max_tokens":100,"thinking":{"type":"disabled"},` + msgs + `}`, want: Request{MaxTokens: 100, HasMaxTokens: true}},
	{name: "future thinking type", body: `{"max_tokens":100,"thinking":{"type":"dreaming","budget_tokens":1},` + msgs + `}`, want: Request{MaxTokens: 100, HasMaxTokens: true}},
	{name: "thinking null", body: `{"max_tokens":100,"thinking":null,` + msgs + `}`, want: Request{MaxTokens: 100, HasMaxTokens: true}},
	{name: "nested max_tokens ignored", body: `{"metadata":{"max_tokens":5},"tools":[{"max_tokens":"x"}],` + msgs + `}`, want: Request{}},
	{name: "converse fields ignored", body: `{"inferenceConfig":{"maxTokens":-1},` + msgs + `}`, want: Request{}},

	{name: "malformed", body: `{"max_tokens":10,` + msgs, errIn: "Malformed"},
	{name: "trailing garbage", body: `{` + msgs + `}x`, errIn: "Malformed"},
	{name: "not an object", body: `[` + msgs[11:] + `]`, errIn: "JSONObject"},
	{name: "empty body", body: ``, errIn: "Malformed"},
	{name: "max_tokens negative", body: `{"max_tokens":-5,` + msgs + `}`, errIn: "max_tokens"},
	{name: "max_tokens zero", body: `{"max_tokens":0,` + msgs + `}`, errIn: "max_tokens"},
	{name: "max_tokens fractional", body: `{"max_tokens":100.5,` + msgs + `}`, errIn: "max_tokens"},
	{name: "max_tokens integral float", body: `{"max_tokens":100.0,` + msgs + `}`, errIn: "max_tokens"},
	{name: "max_tokens exponent", body: `{"max_tokens":1e3,` + msgs + `}`, errIn: "max_tokens"},
	{name: "max_tokens string", body: `{"max_tokens":"100",` + msgs + `}`, errIn: "max_tokens"},
	{name: "max_tokens bool", body: `{"max_tokens":true,` + msgs + `}`, errIn: "max_tokens"},
	{name: "max_tokens absurd", body: `{"max_tokens":1000001,` + msgs + `}`, errIn: "max_tokens"},
	{name: "max_tokens overflow", body: `{"max_tokens":99999999999999999999999,` + msgs + `}`, errIn: "max_tokens"},
	{name: "max_tokens twice", body: `{"max_tokens":1,` + msgs + `,"max_tokens":64000}`, errIn: "max_tokens"},
	{name: "max_tokens twice escaped", body: `{"max_tokens":1,` + msgs + `,"max_tok\u0065ns":64000}`, errIn: "max_tokens"},
	{name: "messages missing", body: `{"max_tokens":10}`, errIn: "messages"},
	{name: "messages not array", body: `{"max_tokens":10,"messages":{}}`, errIn: "messages"},
	{name: "messages null", body: `{"max_tokens":10,"messages":null}`, errIn: "messages"},
	{name: "messages twice", body: `{` + msgs + `,` + msgs + `}`, errIn: "messages"},
	{name: "budget too small", body: `{"max_tokens":4096,"thinking":{"type":"enabled","budget_tokens":1023},` + msgs + `}`, errIn: "budget_tokens"},
	{name: "budget equals max_tokens", body: `{"max_tokens":4096,"thinking":{"type":"enabled","budget_tokens":4096},` + msgs + `}`, errIn: "budget_tokens"},
	{name: "budget above max_tokens", body: `{"max_tokens":4096,"thinking":{"type":"enabled","budget_tokens":8000},` + msgs + `}`, errIn: "budget_tokens"},
	{name: "budget missing", body: `{"max_tokens":4096,"thinking":{"type":"enabled"},` + msgs + `}`, errIn: "budget_tokens"},
	{name: "budget string", body: `{"max_tokens":4096,"thinking":{"type":"enabled","budget_tokens":"2000"},` + msgs + `}`, errIn: "budget_tokens"},
	{name: "budget absurd", body: `{"thinking":{"type":"enabled","budget_tokens":2000000},` + msgs + `}`, errIn: "budget_tokens"},
	{name: "budget twice", body: `{"max_tokens":4096,"thinking":{"type":"enabled","budget_tokens":2000,"budget_tokens":9000},` + msgs + `}`, errIn: "budget_tokens"},
	{name: "thinking not object", body: `{"max_tokens":4096,"thinking":"enabled",` + msgs + `}`, errIn: "thinking"},
	{name: "thinking type missing", body: `{"max_tokens":4096,"thinking":{"budget_tokens":2000},` + msgs + `}`, errIn: "type"},
	{name: "thinking type not string", body: `{"max_tokens":4096,"thinking":{"type":1},` + msgs + `}`, errIn: "type"},
	{name: "thinking twice", body: `{"thinking":{"type":"adaptive"},"thinking":{"type":"adaptive"},` + msgs + `}`, errIn: "thinking"},
}

var converseCases = []readCase{
	{name: "full", body: `{` + msgs + `,"inferenceConfig":{"maxTokens":2048,"temperature":0.5},"additionalModelRequestFields":{"thinking":{"type":"enabled","budget_tokens":1024}}}`,
		want: Request{MaxTokens: 2048, HasMaxTokens: true, Thinking: ThinkingEnabled, ThinkingBudget: 1024}},
	{name: "no inferenceConfig", body: `{` + msgs + `}`, want: Request{}},
	{name: "no messages", body: `{"inferenceConfig":{"maxTokens":5}}`, want: Request{MaxTokens: 5, HasMaxTokens: true}},
	{name: "inferenceConfig without maxTokens", body: `{"inferenceConfig":{"topP":0.9}}`, want: Request{}},
	{name: "inferenceConfig null", body: `{"inferenceConfig":null}`, want: Request{}},
	{name: "adaptive", body: `{"additionalModelRequestFields":{"thinking":{"type":"adaptive"}},"inferenceConfig":{"maxTokens":64000}}`,
		want: Request{MaxTokens: 64000, HasMaxTokens: true, Thinking: ThinkingAdaptive}},
	{name: "other model fields", body: `{"additionalModelRequestFields":{"top_k":5,"reasoning_config":{"type":"enabled"}}}`, want: Request{}},
	{name: "invoke fields ignored", body: `{"max_tokens":-1,"thinking":5}`, want: Request{}},

	{name: "maxTokens zero", body: `{"inferenceConfig":{"maxTokens":0}}`, errIn: "maxTokens"},
	{name: "maxTokens string", body: `{"inferenceConfig":{"maxTokens":"5"}}`, errIn: "maxTokens"},
	{name: "maxTokens absurd", body: `{"inferenceConfig":{"maxTokens":5000000}}`, errIn: "maxTokens"},
	{name: "maxTokens twice", body: `{"inferenceConfig":{"maxTokens":5,"maxTokens":6}}`, errIn: "maxTokens"},
	{name: "inferenceConfig not object", body: `{"inferenceConfig":[1]}`, errIn: "inferenceConfig"},
	{name: "inferenceConfig twice", body: `{"inferenceConfig":{},"inferenceConfig":{}}`, errIn: "inferenceConfig"},
	{name: "additional fields not object", body: `{"additionalModelRequestFields":"x"}`, errIn: "additionalModelRequestFields"},
	{name: "budget too large", body: `{"inferenceConfig":{"maxTokens":2048},"additionalModelRequestFields":{"thinking":{"type":"enabled","budget_tokens":4000}}}`, errIn: "budget_tokens"},
	{name: "malformed", body: `{"inferenceConfig":{"maxTokens":5}`, errIn: "Malformed"},
}

func TestReadInvoke(t *testing.T) {
	for _, tt := range invokeCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadInvoke([]byte(tt.body))
			checkRead(t, tt, invokeBody, got, err)
		})
	}
}

func TestReadConverse(t *testing.T) {
	for _, tt := range converseCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadConverse([]byte(tt.body))
			checkRead(t, tt, converseBody, got, err)
		})
	}
}

func checkRead(t *testing.T, tt readCase, kind bodyKind, got Request, err error) {
	t.Helper()
	// The table must agree with the encoding/json model too.
	ref, refOK := refRead([]byte(tt.body), kind)
	if refOK != (tt.errIn == "") {
		t.Fatalf("model of the reader: ok = %v, but the table says errIn = %q", refOK, tt.errIn)
	}
	if tt.errIn != "" {
		checkValidation(t, err, tt.errIn)
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	ignoreInput := cmpopts.IgnoreFields(Request{}, "InputTokens")
	if diff := cmp.Diff(tt.want, got, ignoreInput); diff != "" {
		t.Errorf("Request mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ref, got, ignoreInput); diff != "" {
		t.Errorf("differs from the encoding/json model (-model +got):\n%s", diff)
	}
	if got, want := got.InputTokens, EstimateTokens([]byte(tt.body)); got != want {
		t.Errorf("InputTokens = %d, want EstimateTokens = %d", got, want)
	}
}

// checkValidation checks that err is a ValidationException (HTTP 400) whose
// message names the member at fault.
func checkValidation(t *testing.T, err error, member string) {
	t.Helper()
	var be *Error
	if !errors.As(err, &be) {
		t.Fatalf("error = %v, want a *bedrock.Error", err)
	}
	if be.Name != ValidationException || be.Status() != http.StatusBadRequest {
		t.Errorf("error = %s (status %d), want ValidationException (400)", be.Name, be.Status())
	}
	if !strings.Contains(be.Message, member) {
		t.Errorf("message %q does not name %q", be.Message, member)
	}
}

func TestReadInvokeClaudeCodeBody(t *testing.T) {
	for _, maxTokens := range []int{32000, 4096, 1024, 0} {
		body := claudeCodeBody(t, maxTokens)
		got, err := ReadInvoke(body)
		if err != nil {
			t.Fatalf("ReadInvoke(%d-byte body, max_tokens %d): %v", len(body), maxTokens, err)
		}
		want, _ := refRead(body, invokeBody)
		want.InputTokens = got.InputTokens
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("max_tokens %d (-want +got):\n%s", maxTokens, diff)
		}
		if got.HasMaxTokens != (maxTokens > 0) || got.MaxTokens != maxTokens {
			t.Errorf("max_tokens %d: read %d (has %v)", maxTokens, got.MaxTokens, got.HasMaxTokens)
		}
	}
}
