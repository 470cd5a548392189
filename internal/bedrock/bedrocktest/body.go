// Package bedrocktest generates Bedrock request bodies for tests and
// benchmarks, so that the bedrock, gateway and emulator packages measure the
// same realistic input. Its text is generated, not copied from any client.
// It is not used by Headroom at run time and must not be.
package bedrocktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
)

// ClaudeCodeBody returns an InvokeModel Anthropic body shaped like the one
// Claude Code sends (BEDROCK.md section 4), of exactly targetBytes bytes
// (targets under about 8 KB give the smallest complete body, about 7.6 KB
// with max_tokens): messages first (a task, then a long
// history of assistant text + tool_use and user tool_result turns), three
// system blocks (the last two with cache_control), nine tools with JSON
// schemas, metadata.user_id, max_tokens, thinking {"type":"enabled",
// "budget_tokens": maxTokens-1} when maxTokens > 1024, an anthropic_beta
// array and anthropic_version. maxTokens <= 0 leaves max_tokens and thinking
// out. The result is deterministic: the same arguments give the same bytes.
//
// Of the body, about 23% is system text, 35% tools and the rest history;
// the real Claude Code 2.1 first call has more tools and less history, but a
// long session is dominated by history.
func ClaudeCodeBody(targetBytes int, maxTokens int) []byte {
	return claudeCode(targetBytes, maxTokens, "")
}

// ClaudeCodeMessagesBody returns an Anthropic Messages API body shaped like
// the one Claude Code sends in Mantle mode (BEDROCK.md section 6), of
// exactly targetBytes bytes: ClaudeCodeBody's conversation, system and
// tools, with the model in the body, max_tokens, thinking {"type":
// "adaptive"}, output_config.effort "xhigh" and stream true, and neither
// anthropic_version nor anthropic_beta (Mantle takes both as headers).
func ClaudeCodeMessagesBody(targetBytes int, maxTokens int, model string) []byte {
	return claudeCode(targetBytes, maxTokens, model)
}

// claudeCode builds ClaudeCodeBody, or ClaudeCodeMessagesBody for model.
func claudeCode(targetBytes int, maxTokens int, model string) []byte {
	g := &gen{r: rand.New(rand.NewPCG(86, uint64(targetBytes)))}
	b := body{
		System: []textBlock{
			{Type: "text", Text: "x-client-build: generated; entry=benchmark;"},
			{Type: "text", Text: "You are a coding agent working in a terminal.", CacheControl: ephemeral()},
			{Type: "text", Text: g.prose(targetBytes * 23 / 100), CacheControl: ephemeral()},
		},
		Tools:            g.tools(targetBytes * 35 / 100),
		AnthropicBeta:    []string{"interleaved-thinking-2025-05-14", "fine-grained-tool-streaming-2025-05-14"},
		AnthropicVersion: "bedrock-2023-05-31",
	}
	b.Metadata.UserID = fmt.Sprintf(`{"device_id":"%016x%016x","account_uuid":"","session_id":"%08x-0000-4000-8000-%012x"}`,
		g.r.Uint64(), g.r.Uint64(), g.r.Uint32(), g.r.Uint64()&0xffffffffffff)
	if maxTokens > 0 {
		b.MaxTokens = maxTokens
		if maxTokens > 1024 {
			b.Thinking = &thinking{Type: "enabled", BudgetTokens: maxTokens - 1}
		}
	}
	if model != "" {
		b.Model, b.Stream = model, true
		b.AnthropicBeta, b.AnthropicVersion = nil, ""
		b.Thinking, b.OutputConfig = &thinking{Type: "adaptive"}, &outputConfig{Effort: "xhigh"}
	}
	b.Messages = []message{{Role: "user", Content: []block{{Type: "text", Text: "Please " + g.prose(200)}}}}
	for n := 0; size(b)+3000 < targetBytes; n++ {
		b.Messages = append(b.Messages, g.exchange(n, b.Tools)...)
	}
	// Pad the last user message with plain text (no bytes JSON escapes) to
	// reach the target exactly.
	last := &b.Messages[len(b.Messages)-1]
	last.Content = append(last.Content, block{Type: "text", Text: "x"})
	if pad := targetBytes - size(b) + 1; pad > 0 {
		last.Content[len(last.Content)-1].Text = g.prose(pad)
	} else {
		last.Content = last.Content[:len(last.Content)-1]
	}
	return marshal(b)
}

type body struct {
	Model    string      `json:"model,omitempty"`
	Messages []message   `json:"messages"`
	System   []textBlock `json:"system"`
	Tools    []tool      `json:"tools"`
	Metadata struct {
		UserID string `json:"user_id"`
	} `json:"metadata"`
	MaxTokens        int           `json:"max_tokens,omitempty"`
	Thinking         *thinking     `json:"thinking,omitempty"`
	OutputConfig     *outputConfig `json:"output_config,omitempty"`
	Stream           bool          `json:"stream,omitempty"`
	AnthropicBeta    []string      `json:"anthropic_beta,omitempty"`
	AnthropicVersion string        `json:"anthropic_version,omitempty"`
}

type thinking struct {
	BudgetTokens int    `json:"budget_tokens,omitempty"`
	Type         string `json:"type"`
}

type outputConfig struct {
	Effort string `json:"effort"`
}

type cacheControl struct {
	Type string `json:"type"`
}

func ephemeral() *cacheControl { return &cacheControl{Type: "ephemeral"} }

type textBlock struct {
	Type         string        `json:"type"`
	Text         string        `json:"text"`
	CacheControl *cacheControl `json:"cache_control,omitempty"`
}

type tool struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	InputSchema schema `json:"input_schema"`
}

type schema struct {
	Schema               string              `json:"$schema"`
	Type                 string              `json:"type"`
	Properties           map[string]property `json:"properties"`
	Required             []string            `json:"required"`
	AdditionalProperties bool                `json:"additionalProperties"`
}

type property struct {
	Type        string   `json:"type"`
	Description string   `json:"description"`
	Enum        []string `json:"enum,omitempty"`
}

type message struct {
	Role    string  `json:"role"`
	Content []block `json:"content"`
}

type block struct {
	Type      string            `json:"type"`
	Text      string            `json:"text,omitempty"`
	ID        string            `json:"id,omitempty"`
	Name      string            `json:"name,omitempty"`
	Input     map[string]string `json:"input,omitempty"`
	ToolUseID string            `json:"tool_use_id,omitempty"`
	Content   string            `json:"content,omitempty"`
}

func marshal(b body) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as JavaScript's JSON.stringify
	if err := enc.Encode(b); err != nil {
		panic(err) // plain structs of strings: cannot fail
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func size(b body) int { return len(marshal(b)) }

var toolNames = [9]string{"Shell", "ReadFile", "EditFile", "WriteFile", "FindFiles", "SearchText", "Delegate", "FetchURL", "PlanTasks"}

// tools returns nine tools whose JSON totals about n bytes.
func (g *gen) tools(n int) []tool {
	ts := make([]tool, len(toolNames))
	for i, name := range toolNames {
		props := map[string]property{}
		var required []string
		for k := range 2 + i%4 {
			p := fmt.Sprintf("%s_%d", g.word(), k)
			props[p] = property{Type: []string{"string", "number", "boolean", "string"}[k%4], Description: g.prose(60 + 20*k)}
			if k%2 == 0 {
				required = append(required, p)
			}
		}
		if i%3 == 0 {
			props["mode"] = property{Type: "string", Description: "How to run it.", Enum: []string{"fast", "careful", "dry-run"}}
		}
		ts[i] = tool{Name: name, InputSchema: schema{
			Schema: "http://json-schema.org/draft-07/schema#", Type: "object",
			Properties: props, Required: required,
		}}
		schemaBytes := len(marshal(body{Tools: ts[i : i+1]})) - 150
		// Descriptions vary in length as real ones do (a few hundred
		// bytes to several kilobytes).
		share := n / len(toolNames) * (4 + i%5*3) / 10
		ts[i].Description = g.prose(max(share-schemaBytes, 80))
	}
	return ts
}

// exchange returns one assistant turn (text + tool_use) and the user turn
// answering it (tool_result), numbered n.
func (g *gen) exchange(n int, tools []tool) []message {
	t := tools[n%len(tools)]
	id := fmt.Sprintf("toolu_bdrk_%020d", g.r.Uint64()%1e18+uint64(n))
	input := map[string]string{}
	for _, p := range slices.Sorted(maps.Keys(t.InputSchema.Properties)) {
		input[p] = g.prose(20 + g.r.IntN(60))
	}
	return []message{
		{Role: "assistant", Content: []block{
			{Type: "text", Text: g.prose(80 + g.r.IntN(300))},
			{Type: "tool_use", ID: id, Name: t.Name, Input: input},
		}},
		{Role: "user", Content: []block{
			{Type: "tool_result", ToolUseID: id, Content: g.code(600 + g.r.IntN(1800))},
		}},
	}
}

// gen makes deterministic pseudo-text.
type gen struct{ r *rand.Rand }

var words = strings.Fields(`the a to of and in is for that it with on as be this use
when file request token quota model call tool output input read write edit run
test build error value return check limit user agent code path line change
before after each only never always must should can will not if then than more
less first last new old small large fast slow retry wait budget reserve settle
gateway region account key stream message block system history search result`)

func (g *gen) word() string { return words[g.r.IntN(len(words))] }

// prose returns exactly n bytes of ASCII sentences that need no JSON escape.
func (g *gen) prose(n int) string {
	var sb strings.Builder
	sb.Grow(n + 16)
	for w := 0; sb.Len() < n; w++ {
		word := g.word()
		if w%11 == 0 {
			word = strings.ToUpper(word[:1]) + word[1:]
		}
		sb.WriteString(word)
		switch {
		case w%11 == 10:
			sb.WriteString(". ")
		case w%7 == 3:
			sb.WriteString(", ")
		default:
			sb.WriteByte(' ')
		}
	}
	return sb.String()[:n]
}

// code returns about n bytes of source-like text: tabs, newlines, quotes and
// braces, which JSON escapes.
func (g *gen) code(n int) string {
	var sb strings.Builder
	for i := 0; sb.Len() < n; i++ {
		fmt.Fprintf(&sb, "%4d\tfunc %s%d(ctx context.Context, %s string) error {\n", i*4+1, g.word(), i, g.word())
		fmt.Fprintf(&sb, "%4d\t\tif %s == \"%s\" {\n%4d\t\t\treturn fmt.Errorf(\"%s: %%w\", err)\n%4d\t\t}\n", i*4+2, g.word(), g.word(), i*4+3, g.prose(24), i*4+4)
	}
	return sb.String()
}
