package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// z95 is the standard normal quantile at 0.95: a log-normal with median m
// and sigma s has its 95th percentile at m·exp(z95·s).
const z95 = 1.6448536269514722

// Spread is a positive quantity drawn from a log-normal distribution given
// by its median and 95th percentile: mostly near the median with a heavy
// right tail, which is how output lengths and think times look. Max, when
// positive, clamps the tail. P95 at or below Median gives the median always.
type Spread struct {
	Median float64 `yaml:"median" json:"median"`
	P95    float64 `yaml:"p95" json:"p95"`
	Max    float64 `yaml:"max,omitempty" json:"max,omitempty"`
}

// sigma is the log-normal's shape parameter.
func (s Spread) sigma() float64 {
	if s.P95 <= s.Median || s.Median <= 0 {
		return 0
	}
	return math.Log(s.P95/s.Median) / z95
}

// draw returns one value. It always consumes exactly one normal draw from
// r, so that changing a spread's parameters never shifts the draws that
// follow it.
func (s Spread) draw(r *rand.Rand) float64 {
	z := r.NormFloat64()
	v := s.Median * math.Exp(s.sigma()*z)
	if s.Max > 0 && v > s.Max {
		v = s.Max
	}
	if v < 0 {
		v = 0
	}
	return v
}

// drawInt is draw rounded to a whole number of at least lo.
func (s Spread) drawInt(r *rand.Rand, lo int) int {
	return max(int(math.Round(s.draw(r))), lo)
}

func (s Spread) validate(where string, p *[]string) {
	if s.Median < 0 || s.P95 < 0 || s.Max < 0 {
		*p = append(*p, fmt.Sprintf("%s: median, p95 and max must not be negative", where))
	}
	if s.Max > 0 && s.Max < s.Median {
		*p = append(*p, fmt.Sprintf("%s: max %v is below the median %v", where, s.Max, s.Median))
	}
}

// IntRange is a whole number drawn uniformly from Min to Max inclusive.
type IntRange struct {
	Min int `yaml:"min" json:"min"`
	Max int `yaml:"max" json:"max"`
}

func (g IntRange) draw(r *rand.Rand) int {
	if g.Max <= g.Min {
		// Keep the stream aligned whatever the range.
		r.Uint64()
		return g.Min
	}
	return g.Min + int(r.Uint64N(uint64(g.Max-g.Min+1)))
}

func (g IntRange) validate(where string, lo int, p *[]string) {
	if g.Min < lo || g.Max < g.Min {
		*p = append(*p, fmt.Sprintf("%s: want %d <= min <= max, got min %d max %d", where, lo, g.Min, g.Max))
	}
}

// Pareto is a heavy-tailed size: Min / U^(1/Alpha) for U uniform in
// (0, 1], so that P(X > x) = (Min/x)^Alpha; Max, when positive, clamps the
// tail. A smaller Alpha is a heavier tail (the mean is infinite at 1 and
// below, hence the clamp).
type Pareto struct {
	Min   float64 `yaml:"min" json:"min"`
	Alpha float64 `yaml:"alpha" json:"alpha"`
	Max   float64 `yaml:"max,omitempty" json:"max,omitempty"`
}

// drawInt returns one value, rounded. It always consumes exactly one
// uniform draw from r.
func (p Pareto) drawInt(r *rand.Rand) int {
	u := 1 - r.Float64() // (0, 1]
	if !(p.Alpha > 0) || !(p.Min > 0) {
		return 1
	}
	v := p.Min / math.Pow(u, 1/p.Alpha)
	if p.Max > 0 && v > p.Max {
		v = p.Max
	}
	return max(int(math.Round(v)), 1)
}

func (p Pareto) validate(where string, problems *[]string) {
	if !(p.Min >= 1) || !(p.Alpha > 0) || math.IsInf(p.Min, 0) || math.IsInf(p.Alpha, 0) {
		*problems = append(*problems, fmt.Sprintf("%s: min must be at least 1 and alpha positive", where))
	}
	if p.Max < 0 || p.Max > 0 && p.Max < p.Min {
		*problems = append(*problems, fmt.Sprintf("%s: max %v is below min %v", where, p.Max, p.Min))
	}
}
