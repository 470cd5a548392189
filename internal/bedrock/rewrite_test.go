package bedrock

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type rewriteCase struct {
	name              string
	body              string
	maxTokens, budget int
	want              string // exact output; "" with errIn set
	errIn             string
}

var rewriteInvokeCases = []rewriteCase{
	{name: "replace max_tokens and budget",
		body:      `{"anthropic_beta":["interleaved-thinking-2025-05-14"],"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999},` + msgs + `,"anthropic_version":"bedrock-2023-05-31"}`,
		maxTokens: 4096, budget: 4095,
		want: `{"anthropic_beta":["interleaved-thinking-2025-05-14"],"max_tokens":4096,"thinking":{"type":"enabled","budget_tokens":4095},` + msgs + `,"anthropic_version":"bedrock-2023-05-31"}`},
	{name: "budget before max_tokens, whitespace kept",
		body:      "{\n  \"thinking\": { \"budget_tokens\" : 2000 , \"type\": \"enabled\" },\n  \"max_tokens\" :  8000 ,\n  " + msgs + "\n}",
		maxTokens: 16000, budget: 1500,
		want: "{\n  \"thinking\": { \"budget_tokens\" : 1500 , \"type\": \"enabled\" },\n  \"max_tokens\" :  16000 ,\n  " + msgs + "\n}"},
	{name: "budget 0 keeps the client's budget",
		body:      `{"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":2000},` + msgs + `}`,
		maxTokens: 8000,
		want:      `{"max_tokens":8000,"thinking":{"type":"enabled","budget_tokens":2000},` + msgs + `}`},
	{name: "insert max_tokens",
		body:      ` {` + msgs + `,"anthropic_version":"2023-06-01"}`,
		maxTokens: 4096,
		want:      ` {"max_tokens":4096,` + msgs + `,"anthropic_version":"2023-06-01"}`},
	{name: "replace null max_tokens",
		body:      `{"max_tokens":null,` + msgs + `}`,
		maxTokens: 100,
		want:      `{"max_tokens":100,` + msgs + `}`},
	{name: "escaped key replaced in place",
		body:      `{"max\u005ftokens":5,` + msgs + `}`,
		maxTokens: 6,
		want:      `{"max\u005ftokens":6,` + msgs + `}`},
	{name: "adaptive thinking untouched",
		body:      `{"max_tokens":64000,"thinking":{"type":"adaptive"},"output_config":{"effort":"high"},` + msgs + `}`,
		maxTokens: 20000, budget: 19999,
		want: `{"max_tokens":20000,"thinking":{"type":"adaptive"},"output_config":{"effort":"high"},` + msgs + `}`},
	{name: "disabled thinking untouched",
		body:      `{"max_tokens":10,"thinking":{"type":"disabled","budget_tokens":5},` + msgs + `}`,
		maxTokens: 20, budget: 2000,
		want: `{"max_tokens":20,"thinking":{"type":"disabled","budget_tokens":5},` + msgs + `}`},

	{name: "kept budget too large", body: `{"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999},` + msgs + `}`, maxTokens: 4096, errIn: "budget"},
	{name: "new budget too small", body: `{"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999},` + msgs + `}`, maxTokens: 4096, budget: 1000, errIn: "budget"},
	{name: "max_tokens zero", body: `{` + msgs + `}`, maxTokens: 0, errIn: "max_tokens"},
	{name: "max_tokens absurd", body: `{` + msgs + `}`, maxTokens: MaxOutputLimit + 1, errIn: "max_tokens"},
	{name: "invalid body", body: `{"max_tokens":"5",` + msgs + `}`, maxTokens: 10, errIn: "max_tokens"},
	{name: "malformed body", body: `{` + msgs, maxTokens: 10, errIn: "Malformed"},
}

var rewriteConverseCases = []rewriteCase{
	{name: "replace maxTokens and budget",
		body:      `{` + msgs + `,"inferenceConfig":{"maxTokens":32000,"temperature":1},"additionalModelRequestFields":{"thinking":{"type":"enabled","budget_tokens":31999}}}`,
		maxTokens: 4096, budget: 2048,
		want: `{` + msgs + `,"inferenceConfig":{"maxTokens":4096,"temperature":1},"additionalModelRequestFields":{"thinking":{"type":"enabled","budget_tokens":2048}}}`},
	{name: "insert into inferenceConfig",
		body:      `{"inferenceConfig":{"temperature":1},` + msgs + `}`,
		maxTokens: 4096,
		want:      `{"inferenceConfig":{"maxTokens":4096,"temperature":1},` + msgs + `}`},
	{name: "insert into empty inferenceConfig",
		body:      `{"inferenceConfig": { },` + msgs + `}`,
		maxTokens: 4096,
		want:      `{"inferenceConfig": {"maxTokens":4096 },` + msgs + `}`},
	{name: "replace null inferenceConfig",
		body:      `{"inferenceConfig":null,` + msgs + `}`,
		maxTokens: 4096,
		want:      `{"inferenceConfig":{"maxTokens":4096},` + msgs + `}`},
	{name: "add inferenceConfig",
		body:      `{` + msgs + `}`,
		maxTokens: 4096,
		want:      `{"inferenceConfig":{"maxTokens":4096},` + msgs + `}`},
	{name: "add inferenceConfig to empty body",
		body:      `{}`,
		maxTokens: 7,
		want:      `{"inferenceConfig":{"maxTokens":7}}`},

	{name: "budget too large", body: `{"additionalModelRequestFields":{"thinking":{"type":"enabled","budget_tokens":31999}}}`, maxTokens: 4096, errIn: "budget"},
	{name: "invalid inferenceConfig", body: `{"inferenceConfig":5}`, maxTokens: 4096, errIn: "inferenceConfig"},
}

func TestRewriteInvoke(t *testing.T) {
	for _, tt := range rewriteInvokeCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RewriteInvoke([]byte(tt.body), tt.maxTokens, tt.budget)
			checkRewriteCase(t, tt, invokeBody, got, err)
		})
	}
}

func TestRewriteConverse(t *testing.T) {
	for _, tt := range rewriteConverseCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RewriteConverse([]byte(tt.body), tt.maxTokens, tt.budget)
			checkRewriteCase(t, tt, converseBody, got, err)
		})
	}
}

func checkRewriteCase(t *testing.T, tt rewriteCase, kind bodyKind, got []byte, err error) {
	t.Helper()
	if tt.errIn != "" {
		checkValidation(t, err, tt.errIn)
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if diff := cmp.Diff(tt.want, string(got)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	checkRewrite(t, kind, []byte(tt.body), got, tt.maxTokens, tt.budget)
}

// checkRewrite checks that after is valid JSON, that decoding before and
// after gives the same values except max_tokens and the enabled thinking
// budget, and that reading after gives the new values.
func checkRewrite(t testing.TB, kind bodyKind, before, after []byte, maxTokens, budget int) {
	t.Helper()
	if !json.Valid(after) {
		t.Fatalf("rewritten body is not valid JSON: %.200q", after)
	}
	read := ReadInvoke
	if kind == converseBody {
		read = ReadConverse
	}
	old, err := read(before)
	if err != nil {
		t.Fatalf("reading the original: %v", err)
	}
	wantRead := old
	wantRead.MaxTokens, wantRead.HasMaxTokens = maxTokens, true
	if old.Thinking == ThinkingEnabled && budget > 0 {
		wantRead.ThinkingBudget = budget
	}
	gotRead, err := read(after)
	if err != nil {
		t.Fatalf("reading the rewritten body: %v", err)
	}
	if diff := cmp.Diff(wantRead, gotRead); diff != "" {
		t.Errorf("read after rewrite (-want +got):\n%s", diff)
	}

	want, got := decode(t, before), decode(t, after)
	num := func(n int) json.Number { return json.Number(strconv.Itoa(n)) }
	setBudget := func(thinking any) {
		if th, ok := thinking.(map[string]any); ok && old.Thinking == ThinkingEnabled {
			th["budget_tokens"] = num(wantRead.ThinkingBudget)
		}
	}
	if kind == invokeBody {
		want["max_tokens"] = num(maxTokens)
		setBudget(want["thinking"])
	} else {
		ic, ok := want["inferenceConfig"].(map[string]any)
		if !ok {
			ic = map[string]any{}
			want["inferenceConfig"] = ic
		}
		ic["maxTokens"] = num(maxTokens)
		if add, ok := want["additionalModelRequestFields"].(map[string]any); ok {
			setBudget(add["thinking"])
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded body changed beyond the rewritten fields (-want +got):\n%s", diff)
	}
}

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decoding %.100q: %v", b, err)
	}
	return m
}

func TestRewriteInvokeClaudeCodeBody(t *testing.T) {
	body := claudeCodeBody(t, 32000)
	got, err := RewriteInvoke(body, 4096, 4095)
	if err != nil {
		t.Fatal(err)
	}
	checkRewrite(t, invokeBody, body, got, 4096, 4095)
	// Splicing shortens two numbers by one digit each and changes nothing else.
	if got, want := len(got), len(body)-2; got != want {
		t.Errorf("len = %d, want %d", got, want)
	}
	for _, keep := range []string{`"anthropic_beta":["interleaved-thinking-2025-05-14","fine-grained-tool-streaming-2025-05-14"]`, `"anthropic_version":"bedrock-2023-05-31"`} {
		if !bytes.Contains(got, []byte(keep)) {
			t.Errorf("rewritten body lost %s", keep)
		}
	}
}
