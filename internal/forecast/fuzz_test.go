package forecast

import (
	"math"
	"testing"
	"time"
)

// FuzzProject: whatever the state and rates, a forecast is consistent:
// every time it gives lies in [now, day end), the earliest is no later
// than the headline and the latest no earlier, and the status agrees with
// which times are set.
func FuzzProject(f *testing.F) {
	f.Add(int64(500_000), int64(1_000_000), 1000.0, 1000.0, 1000.0, int64(60), int64(800), int64(600))
	f.Add(int64(0), int64(10), 0.0, 0.0, 0.0, int64(0), int64(0), int64(1))
	f.Add(int64(100), int64(1000), 10.0, 0.0, 50.0, int64(30), int64(800), int64(1440))
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), 1e-12, 1e300, math.Inf(1), int64(-5), int64(-3), int64(3000))
	f.Fuzz(func(t *testing.T, left, limit int64, hour, quarter, five float64, regainMin, regainTokens, dayMin int64) {
		for _, r := range []float64{hour, quarter, five} {
			if math.IsNaN(r) || r < 0 {
				t.Skip() // rates come from counts over positive spans
			}
		}
		now := at(10, 0)
		end := now.Add(time.Duration(max(dayMin%1441, 1)) * time.Minute)
		in := Input{Name: "b", Now: now, Left: left, Limit: limit, DayEnd: end, Rates: Rates{hour, quarter, five}}
		if regainTokens > 0 {
			in.Regains = []Regain{{now.Add(time.Duration(regainMin%2000) * time.Minute), regainTokens}}
		}
		fc := Project(in)
		in2 := func(p *time.Time) bool { return p == nil || !p.Before(now) && (p.Before(end) || fc.Status == Spent) }
		if !in2(fc.At) || !in2(fc.Earliest) || !in2(fc.Latest) {
			t.Fatalf("a time outside [now, day end): %+v", fc)
		}
		switch fc.Status {
		case Spent:
			if left > 0 {
				t.Fatalf("spent with %d left", left)
			}
		case Never:
			if hour > 0 || fc.At != nil {
				t.Fatalf("never with an hour's rate %v: %+v", hour, fc)
			}
		case RunsOut:
			if fc.At == nil || fc.Earliest == nil || fc.Earliest.After(*fc.At) || fc.Latest != nil && fc.Latest.Before(*fc.At) {
				t.Fatalf("runs out with times out of order: %+v", fc)
			}
		case NotToday:
			if fc.At != nil || fc.Latest != nil {
				t.Fatalf("not today with a headline or latest time: %+v", fc)
			}
		default:
			t.Fatalf("status %q", fc.Status)
		}
		if fc.Text == "" {
			t.Fatal("no text")
		}
		low, high := fc.Seconds(now)
		if low > high || math.IsNaN(low) || math.IsNaN(high) {
			t.Fatalf("seconds low %v high %v", low, high)
		}
	})
}
