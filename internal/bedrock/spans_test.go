package bedrock

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock/bedrocktest"
)

// The At rewrites must give exactly what the rescanning rewrites give, on
// every body and every pair of values, whether they edit in place or copy.

// checkRewriteAt compares ReadXSpans + RewriteXAt with ReadX + RewriteX on
// one input, with the body held in a buffer of the given spare capacity.
func checkRewriteAt(t *testing.T, body []byte, maxTokens, budget, slack int, kind bodyKind) {
	t.Helper()
	read, readSpans, rewrite, rewriteAt := ReadInvoke, ReadInvokeSpans, RewriteInvoke, RewriteInvokeAt
	if kind == converseBody {
		read, readSpans, rewrite, rewriteAt = ReadConverse, ReadConverseSpans, RewriteConverse, RewriteConverseAt
	}
	wantReq, wantReadErr := read(body)
	gotReq, sp, gotReadErr := readSpans(body)
	if diff := cmp.Diff(errName(wantReadErr), errName(gotReadErr)); diff != "" {
		t.Fatalf("read error (-rescan +spans):\n%s", diff)
	}
	if diff := cmp.Diff(wantReq, gotReq); diff != "" {
		t.Fatalf("request (-read +readSpans):\n%s", diff)
	}
	want, wantErr := rewrite(body, maxTokens, budget)
	if gotReadErr != nil {
		if wantErr == nil {
			t.Fatalf("rewrite accepted a body the reader refuses")
		}
		return
	}
	buf := make([]byte, len(body), len(body)+slack)
	copy(buf, body)
	got, gotErr := rewriteAt(buf, sp, maxTokens, budget)
	if diff := cmp.Diff(errName(wantErr), errName(gotErr)); diff != "" {
		t.Fatalf("rewrite(max %d, budget %d) error (-rescan +at):\n%s", maxTokens, budget, diff)
	}
	if !bytes.Equal(want, got) {
		t.Fatalf("rewrite(max %d, budget %d), slack %d:\nrescan %q\nat     %q", maxTokens, budget, slack, want, got)
	}
	if gotErr == nil && slack >= 64 && &got[:1][0] != &buf[:1][0] {
		t.Errorf("slack %d is room enough, but the rewrite copied", slack)
	}
}

// errName is the exception name of err, "" for nil.
func errName(err error) string {
	if err == nil {
		return ""
	}
	return AsError(err).Name
}

func TestRewriteAtCases(t *testing.T) {
	for _, slack := range []int{0, 1, 3, 64} {
		for _, tt := range rewriteInvokeCases {
			checkRewriteAt(t, []byte(tt.body), tt.maxTokens, tt.budget, slack, invokeBody)
		}
		for _, tt := range rewriteConverseCases {
			checkRewriteAt(t, []byte(tt.body), tt.maxTokens, tt.budget, slack, converseBody)
		}
		for _, tt := range invokeCases {
			checkRewriteAt(t, []byte(tt.body), 8192, 4096, slack, invokeBody)
			checkRewriteAt(t, []byte(tt.body), 100_000, 99_999, slack, invokeBody)
		}
		for _, tt := range converseCases {
			checkRewriteAt(t, []byte(tt.body), 8192, 4096, slack, converseBody)
		}
		body := claudeCodeBody(t, 32000)
		checkRewriteAt(t, body, 4096, 1024, slack, invokeBody)
		checkRewriteAt(t, body, 999_999, 1024, slack, invokeBody)
	}
}

// TestRewriteAtInPlace: with spare capacity the rewrite of a Claude
// Code-shaped body allocates nothing and reuses the buffer.
func TestRewriteAtInPlace(t *testing.T) {
	body := claudeCodeBody(t, 32000)
	buf := make([]byte, len(body), len(body)+64)
	var out []byte
	allocs := testing.AllocsPerRun(10, func() {
		copy(buf, body)
		_, sp, err := ReadInvokeSpans(buf[:len(body)])
		if err != nil {
			t.Fatal(err)
		}
		if out, err = RewriteInvokeAt(buf[:len(body)], sp, 4096, 1024); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per read + rewrite, want 0", allocs)
	}
	want, err := RewriteInvoke(body, 4096, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("in-place rewrite differs from RewriteInvoke")
	}
}

// TestRewriteAtRefusesOtherSpans: spans of another body, of the other
// kind, or none at all are a programming error, never a silent splice.
func TestRewriteAtRefusesOtherSpans(t *testing.T) {
	a := []byte(`{"max_tokens":100,` + msgs + `}`)
	b := []byte(`{"max_tokens":1000,` + msgs + `}`)
	_, spA, err := ReadInvokeSpans(a)
	if err != nil {
		t.Fatal(err)
	}
	_, spConverse, err := ReadConverseSpans(a)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() ([]byte, error)
	}{
		{"other body", func() ([]byte, error) { return RewriteInvokeAt(b, spA, 10, 0) }},
		{"zero spans", func() ([]byte, error) { return RewriteInvokeAt(a, Spans{}, 10, 0) }},
		{"converse spans", func() ([]byte, error) { return RewriteInvokeAt(a, spConverse, 10, 0) }},
		{"invoke spans on converse", func() ([]byte, error) { return RewriteConverseAt(a, spA, 10, 0) }},
	}
	for _, tt := range tests {
		if _, err := tt.call(); errName(err) != InternalServerException {
			t.Errorf("%s: error %v, want an InternalServerException", tt.name, err)
		}
	}
}

func FuzzRewriteInvokeAt(f *testing.F) {
	for _, tt := range rewriteInvokeCases {
		f.Add([]byte(tt.body), tt.maxTokens, tt.budget, uint8(0))
		f.Add([]byte(tt.body), tt.maxTokens, tt.budget, uint8(64))
	}
	for _, tt := range invokeCases {
		f.Add([]byte(tt.body), 8192, 4096, uint8(2))
	}
	f.Add(bedrocktest.ClaudeCodeBody(4000, 32000), 4096, 4095, uint8(64))
	f.Fuzz(func(t *testing.T, body []byte, maxTokens, budget int, slack uint8) {
		checkRewriteAt(t, body, maxTokens, budget, int(slack), invokeBody)
	})
}

func FuzzRewriteConverseAt(f *testing.F) {
	for _, tt := range rewriteConverseCases {
		f.Add([]byte(tt.body), tt.maxTokens, tt.budget, uint8(0))
		f.Add([]byte(tt.body), tt.maxTokens, tt.budget, uint8(64))
	}
	for _, tt := range converseCases {
		f.Add([]byte(tt.body), 8192, 4096, uint8(5))
	}
	f.Fuzz(func(t *testing.T, body []byte, maxTokens, budget int, slack uint8) {
		checkRewriteAt(t, body, maxTokens, budget, int(slack), converseBody)
	})
}
