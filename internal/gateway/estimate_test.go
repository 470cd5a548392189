package gateway

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestEstimatorLearnsConservatively(t *testing.T) {
	tests := []struct {
		name        string
		raw, actual []int // one settled request per element
		want        float64
	}{
		{"untrained", nil, nil, 1},
		{"exact estimates keep 1", []int{100, 100}, []int{100, 100}, 1},
		{"one low estimate raises fast", []int{100}, []int{200}, 1.5},
		{"one high estimate lowers slowly", []int{100}, []int{50}, 0.975},
		{"an outlier is clipped at 4x", []int{100}, []int{10_000}, 2.5},
		{"caching pulls it down, not below 0.25", []int{100, 100, 100}, []int{1, 1, 1}, 1 - (1-0.25)*(1-0.95*0.95*0.95)},
		{"no usage is ignored", []int{100, 0}, []int{0, 100}, 1},
	}
	for _, tt := range tests {
		e := newEstimator()
		for i := range tt.raw {
			e.learn("m", tt.raw[i], tt.actual[i])
		}
		if diff := cmp.Diff(tt.want, e.factor("m"), cmpopts.EquateApprox(0, 1e-9)); diff != "" {
			t.Errorf("%s: factor (-want +got):\n%s", tt.name, diff)
		}
	}
	e := newEstimator()
	e.learn("m", 100, 150)
	if got, want := e.estimate("m", 1000), 1250; got != want {
		t.Errorf("estimate = %d, want %d", got, want)
	}
	if got := e.estimate("other", 1000); got != 1000 {
		t.Errorf("another model's estimate = %d, want it untouched", got)
	}
}

// TestEstimatorPerModel: a model whose tokenizer counts 1.35x more (Opus
// 4.7) learns its own factor while another model's stays at 1, and the
// table is bounded (the gateway keys it by bedrock.Model.Base, the same for
// every spelling of a model: TestModelSpellingsShareBurndown).
func TestEstimatorPerModel(t *testing.T) {
	e := newEstimator()
	for range 20 {
		e.learn("anthropic.claude-opus-4-7", 1000, 1350)
		e.learn("anthropic.claude-opus-4-6-v1", 1000, 1000)
	}
	if got := e.estimate("anthropic.claude-opus-4-7", 10_000); got < 13_400 || got > 13_500 {
		t.Errorf("Opus 4.7's estimate of 10,000 = %d, want ~13,500", got)
	}
	if got := e.estimate("anthropic.claude-opus-4-6-v1", 10_000); got != 10_000 {
		t.Errorf("Opus 4.6's estimate of 10,000 = %d, want 10,000", got)
	}
	for i := range 10 * estMaxModels {
		e.learn(fmt.Sprintf("made-up-%d", i), 100, 400)
	}
	if n := len(e.snapshot()); n != estMaxModels {
		t.Errorf("%d models learned, want the bound %d", n, estMaxModels)
	}
	if got := e.estimate("made-up-99999", 100); got != 100 {
		t.Errorf("a model beyond the bound: estimate %d, want the raw 100", got)
	}
	e.learn("anthropic.claude-opus-4-7", 1000, 2000) // known models still learn
	if got := e.factor("anthropic.claude-opus-4-7"); got <= 1.35 {
		t.Errorf("Opus 4.7's factor %v did not rise with the table full", got)
	}
}
