package gateway

import (
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
