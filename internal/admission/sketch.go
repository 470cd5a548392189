package admission

import (
	"math"
	"time"
)

// sketch is a bounded, cheap quantile sketch of output lengths: fixed
// log-scale buckets, four per doubling (each about 19% wide) from 1 token
// to 2^20 (above any model's output limit), holding decaying weights.
// Observing is O(1) plus a lazy decay; a quantile walks 81 buckets. Its
// quantiles are bucket upper bounds, so they err high by at most one
// bucket (19%): for a max_tokens cap, the safe side.
//
// Weights decay with a half-life in time, so the sketch follows what a
// key does now, not what it did last month. Decay multiplies every bucket
// by the same factor, so it never changes a quantile by itself: a quiet
// key keeps its estimate, with less weight against new answers.
type sketch struct {
	w     [sketchBuckets]float64
	total float64
	at    time.Time // when w was last decayed
	seen  time.Time // last observation (eviction order)
}

const (
	sketchPerDoubling = 4
	sketchBuckets     = 20*sketchPerDoubling + 1
)

// sketchBucket is the bucket holding v tokens: bucket i holds
// (2^((i-1)/4), 2^(i/4)].
func sketchBucket(v float64) int {
	if v <= 1 {
		return 0
	}
	i := int(math.Ceil(math.Log2(v)*sketchPerDoubling - 1e-9))
	return min(max(i, 0), sketchBuckets-1)
}

// sketchUpper is bucket i's upper bound, rounded up to whole tokens.
func sketchUpper(i int) int {
	return int(math.Ceil(math.Exp2(float64(i)/sketchPerDoubling) - 1e-9))
}

// decay brings the weights to now with the given half-life (0: none).
func (s *sketch) decay(now time.Time, halfLife time.Duration) {
	if s.at.IsZero() || !now.After(s.at) {
		if s.at.IsZero() {
			s.at = now
		}
		return
	}
	if halfLife > 0 {
		f := math.Exp2(-float64(now.Sub(s.at)) / float64(halfLife))
		if f < 1 {
			for i := range s.w {
				s.w[i] *= f
			}
			s.total *= f
		}
	}
	s.at = now
}

// add records v tokens with weight w at now.
func (s *sketch) add(now time.Time, halfLife time.Duration, v, w float64) {
	s.decay(now, halfLife)
	s.w[sketchBucket(v)] += w
	s.total += w
	s.seen = now
}

// quantile returns the upper bound of the bucket holding the q-quantile,
// or 0 when the sketch is empty.
func (s *sketch) quantile(q float64) int {
	if s.total <= 0 {
		return 0
	}
	want := q * s.total
	var sum float64
	for i, w := range s.w {
		sum += w
		if sum >= want-1e-9*s.total && w > 0 {
			return sketchUpper(i)
		}
	}
	return sketchUpper(sketchBuckets - 1)
}

// fillPrior spreads weight over the buckets as a log-normal distribution
// with the given median and 99th percentile (both in tokens).
func (s *sketch) fillPrior(median, p99 int, weight float64) {
	if median < 1 || p99 <= median || weight <= 0 {
		return
	}
	mu := math.Log(float64(median))
	sigma := math.Log(float64(p99)/float64(median)) / 2.3263478740408408 // z of 0.99
	cdf := func(x float64) float64 {
		return 0.5 * math.Erfc(-(math.Log(x)-mu)/(sigma*math.Sqrt2))
	}
	prev := 0.0
	for i := range s.w {
		c := 1.0
		if i < sketchBuckets-1 {
			c = cdf(math.Exp2(float64(i) / sketchPerDoubling))
		}
		s.w[i] += weight * (c - prev)
		s.total += weight * (c - prev)
		prev = c
	}
}
