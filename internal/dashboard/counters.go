package dashboard

import (
	"math"

	dto "github.com/prometheus/client_model/go"
)

// The metrics the page reads from the gateway's registry (internal/metrics
// defines them). Reading the registry rather than hooking the request path
// keeps the dashboard off it: the page costs a request nothing.
const (
	mSettled           = "headroom_settled_tokens_total"     // key, bucket
	mThrottles         = "headroom_throttles_total"          // source, kind
	mUpstreamThrottles = "headroom_upstream_throttles_total" // upstream
	mClamps            = "headroom_clamps_total"             // key, field
	mTruncations       = "headroom_truncations_total"        // key
	mCutTokens         = "headroom_cut_output_tokens_total"  // key
	mEscalations       = "headroom_escalations_total"        // key, signal
	mKeyWait           = "headroom_key_queue_wait_seconds"   // key
)

// counters is what one gather of the registry holds for the page.
type counters struct {
	// throttles["source/kind"]: 429s clients received.
	throttles map[string]float64
	// upstreamThrottles: Bedrock 429s the gateway saw, retried ones included.
	upstreamThrottles                    float64
	clamps, cuts, cutTokens, escalations float64
	perKey                               map[string]*keyCounters
	// waits[key] is the key's queue-wait histogram: cumulative counts at
	// waitBounds (the last is +Inf).
	waits      map[string][]uint64
	waitBounds []float64
}

type keyCounters struct {
	Clamps      float64 `json:"clamps"`
	Cuts        float64 `json:"cuts"`
	Escalations float64 `json:"escalations"`
}

func labels(m *dto.Metric) map[string]string {
	l := make(map[string]string, len(m.GetLabel()))
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

func readCounters(mfs []*dto.MetricFamily) counters {
	c := counters{throttles: map[string]float64{},
		perKey: map[string]*keyCounters{}, waits: map[string][]uint64{}}
	key := func(name string) *keyCounters {
		k := c.perKey[name]
		if k == nil {
			k = &keyCounters{}
			c.perKey[name] = k
		}
		return k
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := labels(m)
			v := m.GetCounter().GetValue()
			switch mf.GetName() {
			case mThrottles:
				c.throttles[l["source"]+"/"+l["kind"]] += v
			case mUpstreamThrottles:
				c.upstreamThrottles += v
			case mClamps:
				c.clamps += v
				key(l["key"]).Clamps += v
			case mTruncations:
				c.cuts += v
				key(l["key"]).Cuts += v
			case mCutTokens:
				c.cutTokens += v
			case mEscalations:
				c.escalations += v
				key(l["key"]).Escalations += v
			case mKeyWait:
				h := m.GetHistogram()
				if c.waitBounds == nil {
					for _, b := range h.GetBucket() {
						c.waitBounds = append(c.waitBounds, b.GetUpperBound())
					}
					c.waitBounds = append(c.waitBounds, math.Inf(1))
				}
				counts := make([]uint64, 0, len(h.GetBucket())+1)
				for _, b := range h.GetBucket() {
					counts = append(counts, b.GetCumulativeCount())
				}
				c.waits[l["key"]] = append(counts, h.GetSampleCount())
			}
		}
	}
	return c
}

// quantile is the q-quantile of the waits between two cumulative
// histograms (then, now) at bounds, interpolated within its bucket as
// Prometheus's histogram_quantile does; ok is false without samples.
func quantile(q float64, bounds []float64, then, now []uint64) (float64, bool) {
	if len(now) == 0 || len(now) != len(bounds) {
		return 0, false
	}
	d := func(i int) float64 {
		v := float64(now[i])
		if i < len(then) {
			v -= float64(then[i])
		}
		return v
	}
	total := d(len(now) - 1)
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	for i := range now {
		if d(i) < rank {
			continue
		}
		if math.IsInf(bounds[i], 1) {
			return bounds[max(i-1, 0)], true // beyond the last bound: say the bound
		}
		lo, below := 0.0, 0.0
		if i > 0 {
			lo, below = bounds[i-1], d(i-1)
		}
		in := d(i) - below
		if in <= 0 {
			return bounds[i], true
		}
		return lo + (bounds[i]-lo)*(rank-below)/in, true
	}
	return bounds[len(bounds)-1], true
}
