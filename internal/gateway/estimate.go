package gateway

import (
	"math"
	"sync"
)

// estimator corrects the body-based input estimate (bedrock.EstimateTokens)
// per model, learning from settled usage. The correction is an asymmetric
// moving average of actual/estimated: it rises fast (alpha 0.5) when the
// estimate ran low, because an estimate that runs low lets the mirror admit
// what Bedrock then throttles, and falls slowly (alpha 0.05) when it ran
// high, which only costs some queueing. It stays within [0.25, 4] so one
// odd request cannot swing it, and starts at 1.
//
// "Actual" is what the quota charges for input, input + cache-write tokens;
// cache reads are free at settlement, so a model used with prompt caching
// learns a factor well below 1.
//
// Factors are kept per foundation model (bedrock.Model.Base, the same for
// every spelling of a model), because tokenizers differ: Opus 4.7's counts
// 1.0-1.35x more tokens than earlier models' for the same text (BEDROCK.md
// section 6). Model names come from clients, so at most estMaxModels are
// learned; a model beyond them keeps the factor 1.
type estimator struct {
	mu sync.Mutex
	f  map[string]float64
}

const (
	estAlphaUp   = 0.5
	estAlphaDown = 0.05
	estMin       = 0.25
	estMax       = 4
	// estMaxModels bounds the table: far more than the models one account
	// calls, small enough that made-up model names cannot grow it.
	estMaxModels = 256
)

func newEstimator() *estimator { return &estimator{f: map[string]float64{}} }

// factor returns the model's current correction.
func (e *estimator) factor(model string) float64 {
	e.mu.Lock()
	f, ok := e.f[model]
	e.mu.Unlock()
	if !ok {
		return 1
	}
	return f
}

// estimate returns the corrected input estimate for model, rounded up.
func (e *estimator) estimate(model string, raw int) int {
	return int(math.Ceil(float64(raw) * e.factor(model)))
}

// learn folds one settled request in: raw is the uncorrected estimate,
// actual the input the quota was charged.
func (e *estimator) learn(model string, raw, actual int) {
	if raw <= 0 || actual <= 0 {
		return
	}
	r := min(max(float64(actual)/float64(raw), estMin), estMax)
	e.mu.Lock()
	defer e.mu.Unlock()
	f, ok := e.f[model]
	if !ok {
		if len(e.f) >= estMaxModels {
			return
		}
		f = 1
	}
	a := estAlphaDown
	if r > f {
		a = estAlphaUp
	}
	e.f[model] = f + a*(r-f)
}

// snapshot copies the factors for /v1/status.
func (e *estimator) snapshot() map[string]float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]float64, len(e.f))
	for k, v := range e.f {
		out[k] = v
	}
	return out
}
