package bedrock

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadMessages(t *testing.T) {
	tests := []struct {
		name string
		body string
		want MessagesRequest
	}{
		{"claude code mantle", `{"model":"anthropic.claude-opus-4-7","messages":[{"role":"user","content":"hi"}],"max_tokens":64000,"thinking":{"type":"adaptive"},"output_config":{"effort":"xhigh"},"stream":true}`,
			MessagesRequest{Request: Request{MaxTokens: 64000, HasMaxTokens: true, Thinking: ThinkingAdaptive, Effort: "xhigh"}, Model: "anthropic.claude-opus-4-7", Stream: true}},
		{"no max_tokens, stream false", `{"model":"us.anthropic.claude-sonnet-4-5","messages":[],"stream":false}`,
			MessagesRequest{Model: "us.anthropic.claude-sonnet-4-5"}},
		{"enabled thinking", `{"messages":[],"model":"m","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":1024}}`,
			MessagesRequest{Request: Request{MaxTokens: 2000, HasMaxTokens: true, Thinking: ThinkingEnabled, ThinkingBudget: 1024}, Model: "m"}},
		{"escaped model", `{"messages":[],"model":"anthropic.claude\u002dopus-4-7","stream":null}`,
			MessagesRequest{Model: "anthropic.claude-opus-4-7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadMessages([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			got.InputTokens = 0
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestReadMessagesRefuses(t *testing.T) {
	for _, body := range []string{
		``, `[]`, `{"messages":[]}`, `{"model":7,"messages":[]}`, `{"model":"","messages":[]}`,
		`{"model":"m"}`, `{"model":"m","messages":{}}`, `{"model":"m","messages":[],"stream":"yes"}`,
		`{"model":"m","messages":[],"max_tokens":1e9}`, `{"model":"m","messages":[],"max_tokens":99999999999999999999999}`,
		`{"model":"m","messages":[],"max_tokens":"5"}`, `{"model":"m","model":"n","messages":[]}`,
		`{"model":"m","messages":[],"stream":true,"stream":false}`, `{"model":"m","messages":[`,
	} {
		if _, err := ReadMessages([]byte(body)); err == nil {
			t.Errorf("ReadMessages(%s): no error", body)
		} else if AsError(err).Name != ValidationException {
			t.Errorf("ReadMessages(%s): %v, want a ValidationException", body, err)
		}
	}
}

func TestRewriteMessagesAt(t *testing.T) {
	tests := []struct {
		name, body      string
		max, budget     int
		version         string
		wantMax, wantTh int
		wantVersion     string
	}{
		{"clamp and version", `{"model":"m","messages":[],"max_tokens":128000,"thinking":{"type":"adaptive"}}`, 4096, 0, "bedrock-2023-05-31", 4096, 0, "bedrock-2023-05-31"},
		{"insert both", `{"model":"m","messages":[]}`, 4096, 0, "bedrock-2023-05-31", 4096, 0, "bedrock-2023-05-31"},
		{"version only", `{"model":"m","messages":[],"max_tokens":10}`, 0, 0, "bedrock-2023-05-31", 10, 0, "bedrock-2023-05-31"},
		{"client version kept", `{"anthropic_version":"x","model":"m","messages":[],"max_tokens":10}`, 5, 0, "bedrock-2023-05-31", 5, 0, "x"},
		{"budget", `{"model":"m","messages":[],"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999}}`, 4096, 1024, "", 4096, 1024, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, room := range []int{0, 96} {
				b := make([]byte, len(tt.body), len(tt.body)+room)
				copy(b, tt.body)
				_, sp, err := ReadMessagesSpans(b)
				if err != nil {
					t.Fatal(err)
				}
				out, err := RewriteMessagesAt(b, sp, tt.max, tt.budget, tt.version)
				if err != nil {
					t.Fatal(err)
				}
				var v struct {
					Version  string `json:"anthropic_version"`
					Max      int    `json:"max_tokens"`
					Thinking struct {
						Budget int `json:"budget_tokens"`
					} `json:"thinking"`
					Model string `json:"model"`
				}
				if err := json.Unmarshal(out, &v); err != nil {
					t.Fatalf("%s: %v", out, err)
				}
				if v.Version != tt.wantVersion || v.Max != tt.wantMax || v.Thinking.Budget != tt.wantTh || v.Model != "m" {
					t.Errorf("room %d: got %s", room, out)
				}
				if _, err := ReadMessages(out); err != nil {
					t.Errorf("room %d: the rewritten body does not read back: %v", room, err)
				}
			}
		})
	}
}

// FuzzReadMessages: any body is either refused with a ValidationException
// or read; a body read is valid JSON, and rewriting it (a clamp and the
// runtime's anthropic_version, in place or copied) gives a body that reads
// back with the new max_tokens and the same model, stream and thinking.
func FuzzReadMessages(f *testing.F) {
	f.Add([]byte(`{"model":"anthropic.claude-opus-4-7","messages":[{"role":"user","content":"hi"}],"max_tokens":64000,"thinking":{"type":"adaptive"},"output_config":{"effort":"xhigh"},"stream":true}`))
	f.Add([]byte(`{"model":"m","messages":[],"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999}}`))
	f.Add([]byte(`{"anthropic_version":"bedrock-2023-05-31","model":"us.anthropic.claude-sonnet-4-5","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"x"}]}]}`))
	f.Add([]byte(`{"model":"m\u0041","messages":[],"stream":null,"max_tokens":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, sp, err := ReadMessagesSpans(body)
		if err != nil {
			if AsError(err).Name != ValidationException {
				t.Fatalf("error %v is not a ValidationException", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("read an invalid body: %q", body)
		}
		want := 4096
		budget := 0
		if m.Thinking == ThinkingEnabled {
			budget = MinThinkingBudget
			want = max(want, budget+1)
		}
		buf := make([]byte, len(body), len(body)+96)
		copy(buf, body)
		out, err := RewriteMessagesAt(buf, sp, want, budget, "bedrock-2023-05-31")
		if err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		back, err := ReadMessages(out)
		if err != nil {
			t.Fatalf("the rewritten body %q does not read: %v", out, err)
		}
		if back.MaxTokens != want || back.Model != m.Model || back.Stream != m.Stream || back.Thinking != m.Thinking || back.Effort != m.Effort {
			t.Fatalf("read back %+v from %q, want max_tokens %d and %+v", back, out, want, m)
		}
	})
}
