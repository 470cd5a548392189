package bedrock

import (
	"encoding/json"
	"testing"

	"github.com/headroomhq/headroom/internal/bedrock/bedrocktest"
)

// The request-path benchmarks use the 86 KB Claude Code-shaped body from
// bedrocktest, which the gateway and emulator benchmarks share. Target
// (issue 2): reading the admission fields and estimating the input tokens
// takes at most 100 µs and a handful of allocations.

func BenchmarkReadInvoke86KB(b *testing.B) {
	body := claudeCodeBody(b, 32000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadInvoke(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadMessagesSpans86KB is the gateway's read of an 86 KB Claude
// Code-shaped Messages API body (its Mantle-mode shape): one scan that
// validates the document, finds the admission fields and their spans, and
// estimates the input.
func BenchmarkReadMessagesSpans86KB(b *testing.B) {
	body := bedrocktest.ClaudeCodeMessagesBody(claudeCodeBodySize, 32000, "us.anthropic.claude-sonnet-4-20250514-v1:0")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ReadMessagesSpans(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRewriteInvoke86KB(b *testing.B) {
	body := claudeCodeBody(b, 32000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := RewriteInvoke(body, 4096, 4095); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEstimate(b *testing.B) {
	body := claudeCodeBody(b, 32000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if EstimateTokens(body) == 0 {
			b.Fatal("no tokens")
		}
	}
}

func BenchmarkReadInvokeUsage(b *testing.B) {
	body := []byte(`{"id":"msg_bdrk_01","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"Done. The tests pass."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3000,"cache_creation_input_tokens":1000,"cache_read_input_tokens":4000,"output_tokens":1000}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadInvokeUsage(body); err != nil {
			b.Fatal(err)
		}
	}
}

// Baselines from the standard library, for comparison only.

func BenchmarkBaselineJSONValid86KB(b *testing.B) {
	body := claudeCodeBody(b, 32000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if !json.Valid(body) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkBaselineUnmarshalAdmission86KB(b *testing.B) {
	body := claudeCodeBody(b, 32000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var v struct {
			MaxTokens *int `json:"max_tokens"`
			Thinking  *struct {
				Type   string `json:"type"`
				Budget int    `json:"budget_tokens"`
			} `json:"thinking"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadRewriteInvokeAt86KB is the gateway's body path: one scan
// (ReadInvokeSpans) and an in-place splice into the read buffer.
func BenchmarkReadRewriteInvokeAt86KB(b *testing.B) {
	body := claudeCodeBody(b, 32000)
	buf := make([]byte, len(body), len(body)+64)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, body) // the gateway reads the body into its buffer
		_, sp, err := ReadInvokeSpans(buf[:len(body)])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := RewriteInvokeAt(buf[:len(body)], sp, 4096, 4095); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRewriteMessagesAt86KB is the gateway's rewrite of an 86 KB
// Claude Code-shaped Messages body for a bedrock-runtime upstream, after
// its read: max_tokens clamped and anthropic_version added, in place.
func BenchmarkRewriteMessagesAt86KB(b *testing.B) {
	body := bedrocktest.ClaudeCodeMessagesBody(claudeCodeBodySize, 32000, "us.anthropic.claude-sonnet-4-20250514-v1:0")
	buf := make([]byte, len(body), len(body)+96)
	copy(buf, body)
	_, sp, err := ReadMessagesSpans(buf)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := RewriteMessagesAt(buf[:len(body)], sp, 4096, 0, "bedrock-2023-05-31"); err != nil {
			b.Fatal(err)
		}
	}
}
