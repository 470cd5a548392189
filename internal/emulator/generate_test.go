package emulator

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
)

// TestDrawLength: draws stay within bounds and have the configured mean.
func TestDrawLength(t *testing.T) {
	tests := []struct {
		d        config.Distribution
		wantMean float64 // of 20,000 draws, within 5%
	}{
		{config.Distribution{Distribution: config.DistFixed, Min: 0, Mean: 300, Max: 8000}, 300},
		{config.Distribution{Distribution: config.DistUniform, Min: 100, Mean: 150, Max: 200}, 150},
		// Clamping at max lowers a lognormal's mean a little: 8,000 is 27
		// times the mean, far in the tail.
		{config.Distribution{Distribution: config.DistLognormal, Min: 1, Mean: 300, Max: 8000}, 300},
	}
	for _, tt := range tests {
		rng := prng(42)
		var sum float64
		const n = 20_000
		for range n {
			v := drawLength(tt.d, &rng)
			if v < tt.d.Min || v > tt.d.Max {
				t.Fatalf("%s: %d outside [%d, %d]", tt.d.Distribution, v, tt.d.Min, tt.d.Max)
			}
			sum += float64(v)
		}
		if mean := sum / n; math.Abs(mean-tt.wantMean) > 0.05*tt.wantMean {
			t.Errorf("%s: mean %.1f, want %.0f", tt.d.Distribution, mean, tt.wantMean)
		}
	}
}

func TestWords(t *testing.T) {
	a := answer{seed: 7, blocks: []block{{kind: blockText, tokens: 57}}}
	w := a.content(0)
	var b []byte
	for _, k := range []int{3, 4, 50} { // in chunks, as a stream writes them
		b = w.appendTokens(b, k)
	}
	text := string(b)
	if got := len(strings.Fields(text)); got != 57 {
		t.Errorf("%d words, want 57", got)
	}
	w2 := a.content(0)
	if whole := string(w2.appendTokens(nil, 57)); whole != text {
		t.Errorf("chunked %q\nwhole   %q", text, whole)
	}
	if !strings.HasPrefix(text, Opening+" ") {
		t.Errorf("%q does not open with %q", text, Opening)
	}
	if strings.ContainsAny(text, "\"\\\n") {
		t.Errorf("text needs JSON escaping: %q", text)
	}
}

func TestPlan(t *testing.T) {
	g := config.DefaultEmulator().Generation
	tests := []struct {
		name      string
		req       bedrock.Request
		maxTokens int
		want      int
		thinking  int
		text      int
		stop      string
	}{
		{"plain", bedrock.Request{}, 100, 10, 0, 10, "end_turn"},
		{"cut", bedrock.Request{}, 100, 500, 0, 100, "max_tokens"},
		{"zero", bedrock.Request{}, 100, 0, 0, 0, "end_turn"},
		{"adaptive thinking", bedrock.Request{Thinking: bedrock.ThinkingAdaptive}, 100, 40, 10, 30, "end_turn"},
		{"budget caps thinking", bedrock.Request{Thinking: bedrock.ThinkingEnabled, ThinkingBudget: 1024}, 64_000, 40_000, 1024, 38_976, "end_turn"},
		{"one token: no room to think", bedrock.Request{Thinking: bedrock.ThinkingAdaptive}, 100, 1, 0, 1, "end_turn"},
	}
	for _, tt := range tests {
		a := plan(g, []byte("body"), tt.req, tt.maxTokens, tt.want, turnFree, 0)
		var want []block
		if tt.thinking > 0 {
			want = append(want, block{kind: blockThinking, tokens: tt.thinking})
		}
		want = append(want, block{kind: blockText, tokens: tt.text})
		if !slices.EqualFunc(a.blocks, want, func(x, y block) bool { return x.kind == y.kind && x.tokens == y.tokens }) || a.stop != tt.stop {
			t.Errorf("%s: got %+v, %s; want %+v, %s", tt.name, a.blocks, a.stop, want, tt.stop)
		}
	}
}

func TestModelName(t *testing.T) {
	for id, want := range map[string]string{
		"us.anthropic.claude-sonnet-4-20250514-v1:0": "claude-sonnet-4-20250514",
		"anthropic.claude-opus-4-6-v1":               "claude-opus-4-6",
		"global.anthropic.claude-sonnet-4-6":         "claude-sonnet-4-6",
		"meta.llama3-70b-instruct-v1:0":              "meta.llama3-70b-instruct",
	} {
		m, err := bedrock.ParseModel(id)
		if err != nil {
			t.Fatal(err)
		}
		if got := modelName(m); got != want {
			t.Errorf("modelName(%s) = %q, want %q", id, got, want)
		}
	}
}
