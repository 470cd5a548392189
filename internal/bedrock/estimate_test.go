package bedrock

import (
	"strings"
	"testing"
)

func TestEstimateTokens(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int
	}{
		// role 1 + user 1 + content 2 + "Hello, world" 3
		{"one message", `{"messages":[{"role":"user","content":"Hello, world"}]}`, 7},
		{"fields the model does not read count nothing",
			`{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["x"],"max_tokens":100,"metadata":{"user_id":"abc"},"thinking":{"type":"enabled","budget_tokens":2000},"messages":[]}`, 0},
		{"system string", `{"system":"You are terse.","messages":[]}`, 4},
		// name 1 + Read 1 + input_schema 3 + type 1 + object 2 + properties 3 + path 1 + type 1 + string 2
		{"tool schema", `{"tools":[{"name":"Read","input_schema":{"type":"object","properties":{"path":{"type":"string"}}}}],"messages":[]}`, 15},
		// role 1 + assistant 3 + content 2 + type 1 + tool_use 2 + id 1 + t1 1 + name 1 + calc 1 + input 2 + (a, b, c: 1 each + their values 1 each)
		{"scalars count one each", `{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"calc","input":{"a":1,"b":true,"c":null}}]}]}`, 21},
		{"tool_choice", `{"tool_choice":{"type":"auto"},"messages":[]}`, 2},
		// text 1 + "Be brief" 2 + tools 2
		{"converse toolConfig and system", `{"system":[{"text":"Be brief"}],"toolConfig":{"tools":[]},"messages":[]}`, 5},
		{"escapes count as written", `{"system":"a\nb\u00e9","messages":[]}`, 3},
		// The part before the error: "role" and "user".
		{"malformed counts what it read", `{"messages":[{"role":"user"`, 2},
	}
	for _, tt := range tests {
		if got := EstimateTokens([]byte(tt.body)); got != tt.want {
			t.Errorf("%s: EstimateTokens = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestEstimateBinaryPayloads(t *testing.T) {
	anthropicImage := func(data string) string {
		return `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + data + `"}}]}]}`
	}
	dataFirst := func(data string) string {
		return `{"messages":[{"role":"user","content":[{"type":"image","source":{"data":"` + data + `","type":"base64"}}]}]}`
	}
	converseImage := func(data string) string {
		return `{"messages":[{"role":"user","content":[{"image":{"format":"png","source":{"bytes":"` + data + `"}}}]}]}`
	}
	notBase64 := func(data string) string {
		return `{"messages":[{"role":"user","content":[{"type":"text","data":"` + data + `"}]}]}`
	}
	b64 := func(n int) string { return strings.Repeat("QUJD", n/4) }
	tests := []struct {
		name string
		body func(string) string
		n    int
		want int // tokens added by n bytes of data
	}{
		{"small image: 1 per 32 bytes", anthropicImage, 3200, 100},
		{"screenshot capped", anthropicImage, 1 << 20, maxBinaryTokens},
		{"converse bytes capped", converseImage, 1 << 20, maxBinaryTokens},
		{"converse bytes small", converseImage, 320, 10},
		{"data before type counts as text", dataFirst, 3200, 800},
		{"data of a non-base64 object is text", notBase64, 3200, 800},
	}
	for _, tt := range tests {
		empty := EstimateTokens([]byte(tt.body("")))
		got := EstimateTokens([]byte(tt.body(b64(tt.n)))) - empty
		if got != tt.want {
			t.Errorf("%s: %d bytes add %d tokens, want %d", tt.name, tt.n, got, tt.want)
		}
	}
}

func TestEstimateClaudeCodeBody(t *testing.T) {
	body := claudeCodeBody(t, 32000)
	got := EstimateTokens(body)
	// Anthropic's public (legacy) tokenizer counts 20,729 tokens in the text
	// of this generated body; the estimate must stay within ±20% of it.
	const tokenizer = 20729
	if got < tokenizer*80/100 || got > tokenizer*120/100 {
		t.Errorf("EstimateTokens(86 KB Claude Code body) = %d, want within 20%% of %d", got, tokenizer)
	}
	if again := EstimateTokens(body); again != got {
		t.Errorf("not deterministic: %d then %d", got, again)
	}
	// More history never lowers the estimate.
	longer := bytesReplaceOnce(body, `"messages":[`, `"messages":[{"role":"user","content":"one more turn"},`)
	if more := EstimateTokens(longer); more <= got {
		t.Errorf("estimate with one more message = %d, want more than %d", more, got)
	}
}

func bytesReplaceOnce(b []byte, old, new string) []byte {
	return []byte(strings.Replace(string(b), old, new, 1))
}
