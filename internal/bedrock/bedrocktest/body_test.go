package bedrocktest

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClaudeCodeBodyShape(t *testing.T) {
	body := ClaudeCodeBody(86_000, 32000)
	if got, want := len(body), 86_000; got != want {
		t.Errorf("len = %d, want %d", got, want)
	}
	if !bytes.Equal(body, ClaudeCodeBody(86_000, 32000)) {
		t.Error("not deterministic")
	}
	var b struct {
		AnthropicVersion string            `json:"anthropic_version"`
		AnthropicBeta    []string          `json:"anthropic_beta"`
		MaxTokens        int               `json:"max_tokens"`
		Thinking         map[string]any    `json:"thinking"`
		Metadata         map[string]string `json:"metadata"`
		System           []struct {
			Type         string          `json:"type"`
			CacheControl json.RawMessage `json:"cache_control"`
		} `json:"system"`
		Tools []struct {
			Name        string         `json:"name"`
			InputSchema map[string]any `json:"input_schema"`
		} `json:"tools"`
		Messages []struct {
			Role    string `json:"role"`
			Content []struct {
				Type string `json:"type"`
			} `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	type shape struct {
		Version       string
		Betas         int
		MaxTokens     int
		Thinking      map[string]any
		HasUserID     bool
		System        int
		CachedSystem  int
		Tools         int
		ToolsSchemaed bool
		Blocks        map[string]bool
	}
	got := shape{
		Version: b.AnthropicVersion, Betas: len(b.AnthropicBeta), MaxTokens: b.MaxTokens, Thinking: b.Thinking,
		HasUserID: b.Metadata["user_id"] != "", System: len(b.System), Tools: len(b.Tools), ToolsSchemaed: true,
		Blocks: map[string]bool{},
	}
	for _, s := range b.System {
		if s.CacheControl != nil {
			got.CachedSystem++
		}
	}
	for _, tl := range b.Tools {
		if tl.InputSchema["type"] != "object" || tl.InputSchema["properties"] == nil {
			got.ToolsSchemaed = false
		}
	}
	for i, m := range b.Messages {
		if i > 0 && m.Role == b.Messages[i-1].Role {
			t.Errorf("messages %d and %d are both %s", i-1, i, m.Role)
		}
		for _, c := range m.Content {
			got.Blocks[c.Type] = true
		}
	}
	want := shape{
		Version: "bedrock-2023-05-31", Betas: 2, MaxTokens: 32000,
		Thinking:  map[string]any{"type": "enabled", "budget_tokens": float64(31999)},
		HasUserID: true, System: 3, CachedSystem: 2, Tools: 9, ToolsSchemaed: true,
		Blocks: map[string]bool{"text": true, "tool_use": true, "tool_result": true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("shape (-want +got):\n%s", diff)
	}
	if n := len(b.Messages); n < 20 {
		t.Errorf("%d messages, want a long history", n)
	}
}

func TestClaudeCodeBodyOptions(t *testing.T) {
	for _, tt := range []struct {
		maxTokens    int
		wantMax      bool
		wantThinking bool
	}{{0, false, false}, {1024, true, false}, {4096, true, true}} {
		var b map[string]any
		if err := json.Unmarshal(ClaudeCodeBody(20_000, tt.maxTokens), &b); err != nil {
			t.Fatal(err)
		}
		_, hasMax := b["max_tokens"]
		_, hasThinking := b["thinking"]
		if hasMax != tt.wantMax || hasThinking != tt.wantThinking {
			t.Errorf("maxTokens %d: max_tokens %v thinking %v, want %v %v", tt.maxTokens, hasMax, hasThinking, tt.wantMax, tt.wantThinking)
		}
	}
	if got := len(ClaudeCodeBody(200_000, 100)); got != 200_000 {
		t.Errorf("len = %d, want 200000", got)
	}
}

func TestClaudeCodeMessagesBodyShape(t *testing.T) {
	body := ClaudeCodeMessagesBody(86<<10, 64000, "anthropic.claude-opus-4-7")
	if got, want := len(body), 86<<10; got != want {
		t.Errorf("len = %d, want %d", got, want)
	}
	var b map[string]any
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	got := map[string]any{"model": b["model"], "max_tokens": b["max_tokens"], "stream": b["stream"],
		"thinking": b["thinking"], "output_config": b["output_config"], "anthropic_version": b["anthropic_version"], "anthropic_beta": b["anthropic_beta"]}
	want := map[string]any{"model": "anthropic.claude-opus-4-7", "max_tokens": float64(64000), "stream": true,
		"thinking": map[string]any{"type": "adaptive"}, "output_config": map[string]any{"effort": "xhigh"}, "anthropic_version": nil, "anthropic_beta": nil}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}
