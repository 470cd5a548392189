package simulate

import (
	"math"
	"slices"
)

// runStats is what one strategy's run counts as it goes.
type runStats struct {
	started, completed, failed, unfinished int
	taskTimes                              []float64 // seconds, completed tasks

	sent, admitted, calls      int   // attempts sent, admitted, answered
	truncated                  int   // answers cut at max_tokens
	cutOutput                  int64 // output tokens generated in cut answers
	recoveryTurns, toolRetries int   // follow-ups of cut text, repeats of cut tool calls
	capFailedText              int   // tasks failed: text still cut after the recovery turns
	capFailedTool              int   // tasks failed: a tool call cut on every repeat
	escalated                  int   // gateway calls whose cap grew after a cut (learned policy)
	gaveUpRetryAfter           int   // calls abandoned on a Retry-After above 60 s
	client429, gateway429      int   // 429s Claude Code saw; those the gateway sent
	upstream429                int   // 429s Bedrock sent the gateway (headroom only)
	first429                   int   // the ordinal of the first request answered 429
	gaveUpNoRetry              int   // calls abandoned on x-should-retry: false
	backgroundFailed           int
	rejected                   int     // ValidationExceptions from the gateway: a call too large ever to fit
	reservedSum                float64 // admission charges at Bedrock
	queueWait                  []float64
	held, peakHeld             int64 // reserved in the drain bucket, now and at most

	bucketUse []float64 // settled per bucket

	sampleAt   []float64   // hours since the start of the day
	drainByDev [][]float64 // per developer: settled in the drain bucket so far
	// committedAt is, per sample, the most the drain bucket had settled
	// and reserved at once since the previous sample.
	committedAt   []float64
	committedPeak float64
	// heldAt is, per sample, what calls in flight hold reserved in the
	// drain bucket.
	heldAt       []float64
	drainSettled float64
}

func (s *runStats) init(devs, buckets int) {
	s.bucketUse = make([]float64, buckets)
	s.drainByDev = make([][]float64, devs)
}

// quantile returns the q-quantile of xs (nearest rank), 0 for none. It
// sorts xs.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// jain is Jain's fairness index of xs: (Σx)² / (n·Σx²), 1 when all are
// equal, 1/n when one gets everything. It is undefined (ok false) when
// every value is zero: nobody got anything, which is not fairness.
func jain(xs []float64) (index float64, ok bool) {
	var sum, sq float64
	for _, x := range xs {
		sum += x
		sq += x * x
	}
	if sq == 0 {
		return 0, false
	}
	return sum * sum / (float64(len(xs)) * sq), true
}
