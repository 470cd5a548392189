// Package metrics defines the gateway's Prometheus metrics: requests by
// outcome, queue wait, tokens reserved and settled by key and bucket, bucket
// utilisation and effective capacity, upstream throttles, max_tokens clamps
// and truncations by the cap.
//
// Metrics are registered on a Registerer the caller passes in; there are no
// package-level collectors and nothing here touches the default registry.
// It records what it is told and reads bucket state through a callback; it
// decides nothing and imports nothing of Headroom's.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes a request ends with, the values of the requests_total "outcome" label.
const (
	OutcomeOK               = "ok"                // 2xx passed through (a mid-stream exception included)
	OutcomeThrottledGateway = "throttled_gateway" // Headroom answered 429 (deadline or daily budget)
	OutcomeThrottledUp      = "throttled_upstream"
	OutcomeTooLarge         = "too_large"    // the charge can never fit a bucket
	OutcomeClientError      = "client_error" // bad input, bad key, unknown model
	OutcomeUpstreamError    = "upstream_error"
	OutcomeCanceled         = "canceled" // the client went away
	OutcomeInternal         = "internal_error"
)

// Throttle sources and kinds, the labels of headroom_throttles_total. A
// kind is a bucket kind (tpm, tpd, rpm, input-tpm, output-tpm), "budget"
// (the key's daily budget) or "queue" (the key's concurrency, the
// upstream's, or fair order) or "other" (the gateway's memory for request
// bodies). An upstream 429 is "tpd" when Bedrock's
// message says tokens per day, else "tpm" (Bedrock does not say more).
const (
	SourceGateway  = "gateway"
	SourceUpstream = "upstream"
	KindBudget     = "budget"
	KindQueue      = "queue"
	KindOther      = "other"
)

// queueWaitBuckets are the bounds of the queue-wait histograms (seconds).
var queueWaitBuckets = []float64{0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120}

// Metrics holds the gateway's collectors.
type Metrics struct {
	Requests          *prometheus.CounterVec   // op, outcome
	QueueWait         *prometheus.HistogramVec // result: admitted, refused
	ReservedTokens    *prometheus.CounterVec   // key, bucket
	SettledTokens     *prometheus.CounterVec   // key, bucket
	UpstreamThrottles *prometheus.CounterVec   // upstream
	// Throttles counts the 429s clients received, by source (gateway,
	// upstream) and kind (ThrottleKinds).
	Throttles *prometheus.CounterVec // source, kind
	// KeyQueueWait is the queue wait of admitted requests by key, for
	// each key's p95 on the dashboard.
	KeyQueueWait    *prometheus.HistogramVec // key
	UpstreamRetries *prometheus.CounterVec   // upstream, class
	Clamps          *prometheus.CounterVec   // key, what: max_tokens, thinking_budget, missing_max_tokens
	Truncations     *prometheus.CounterVec   // key
	// The output policy (admission.OutputPolicy):
	MaxTokensDecisions *prometheus.CounterVec // key, reason
	Escalations        *prometheus.CounterVec // key, signal
	CutOutputTokens    *prometheus.CounterVec // key
	InFlight           *prometheus.GaugeVec   // upstream
	UsageClamps        *prometheus.CounterVec // upstream, field: input, output
	ServiceTiers       *prometheus.CounterVec // op, tier (bedrock.TierLabel: bounded)
	RoutedRequests     *prometheus.CounterVec // upstream, reason (gateway.Reason*)
	Failovers          *prometheus.CounterVec // upstream (the one that failed), cause
	UpstreamOut        *prometheus.GaugeVec   // upstream: 1 while its circuit breaker has it out
	// Shadow mode's record of what enforce mode would have done (only
	// shadow mode counts in them):
	ShadowRequests    *prometheus.CounterVec // upstream
	ShadowWouldClamp  *prometheus.CounterVec // key
	ShadowWouldQueue  *prometheus.CounterVec // key
	ShadowQueueWait   prometheus.Histogram
	ShadowWouldRefuse *prometheus.CounterVec // key, reason: too_large, budget, daily, deadline
	ShadowPredicted   *prometheus.CounterVec // upstream
	ShadowMissed      *prometheus.CounterVec // upstream
	ShadowFalseAlarms *prometheus.CounterVec // upstream
	// GenAI is the OpenTelemetry GenAI token usage (genai.go).
	GenAI *GenAI
}

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_requests_total",
			Help: "Requests by operation and outcome.",
		}, []string{"op", "outcome"}),
		ServiceTiers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_service_tier_requests_total",
			Help: "Requests by operation and the service tier the client asked for (X-Amzn-Bedrock-Service-Tier): reserved, priority, standard, flex, other or none.",
		}, []string{"op", "tier"}),
		QueueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "headroom_queue_wait_seconds",
			Help:    "Time a request waited for quota before it was admitted or refused.",
			Buckets: queueWaitBuckets,
		}, []string{"result"}),
		KeyQueueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "headroom_key_queue_wait_seconds",
			Help:    "Time an admitted request waited for quota, by key.",
			Buckets: queueWaitBuckets,
		}, []string{"key"}),
		Throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_throttles_total",
			Help: "429s clients received, by source (gateway: Headroom refused; upstream: Bedrock's passed on) and kind (tpm, tpd, rpm, input-tpm, output-tpm, budget, queue, other).",
		}, []string{"source", "kind"}),
		ReservedTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_reserved_tokens_total",
			Help: "Quota tokens reserved at admission, by key and bucket.",
		}, []string{"key", "bucket"}),
		SettledTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_settled_tokens_total",
			Help: "Quota tokens finally charged at settlement, by key and bucket.",
		}, []string{"key", "bucket"}),
		UpstreamThrottles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_upstream_throttles_total",
			Help: "ThrottlingExceptions Bedrock answered despite the mirror, by upstream.",
		}, []string{"upstream"}),
		UpstreamRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_upstream_retries_total",
			Help: "Upstream calls retried before the first byte reached the client, by upstream and retry class.",
		}, []string{"upstream", "class"}),
		Clamps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_clamps_total",
			Help: "Requests whose max_tokens or thinking budget the policy changed, by key and field.",
		}, []string{"key", "field"}),
		Truncations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_truncations_total",
			Help: "Answers the policy's cap cut short: stopped at max_tokens below what the client asked, by key.",
		}, []string{"key"}),
		MaxTokensDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_max_tokens_decisions_total",
			Help: "Requests by the reason the output policy gave their max_tokens (learned, floor, asked, room, contention, key_cap, escalated_tool, escalated_recovery, fixed), by key.",
		}, []string{"key", "reason"}),
		Escalations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_escalations_total",
			Help: "Calls after a cut given a larger cap, by key and signal (escalated_tool: a tool_result for a cut tool call; escalated_recovery: Claude Code's recovery turn).",
		}, []string{"key", "signal"}),
		CutOutputTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_cut_output_tokens_total",
			Help: "Output tokens of the answers the policy's cap cut (billed, and wasted when the client cannot use a cut answer), by key.",
		}, []string{"key"}),
		InFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "headroom_in_flight_requests",
			Help: "Requests sent upstream whose answer (a stream included) has not finished, by upstream.",
		}, []string{"upstream"}),
		UsageClamps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_usage_clamped_total",
			Help: "Upstream answers whose reported usage exceeded what the request could have used and was cut to that bound, by upstream and field.",
		}, []string{"upstream", "field"}),
		RoutedRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_routed_requests_total",
			Help: "Requests admitted to an upstream, by upstream and why it was chosen: preferred, weighted, affinity, overflow (the first choice had no room), preferred_out (the first choice is out of the route), failover (an upstream before it failed before the first byte).",
		}, []string{"upstream", "reason"}),
		Failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_failovers_total",
			Help: "Requests moved to another upstream of their route before the first byte, by the upstream that failed and the cause: throttled, unavailable, connection.",
		}, []string{"upstream", "cause"}),
		UpstreamOut: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "headroom_upstream_out",
			Help: "1 while an upstream is out of its routes (circuit breaker: it kept failing, or its daily quota throttled), 0 while it is in.",
		}, []string{"upstream"}),
		ShadowRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_shadow_requests_total",
			Help: "Shadow mode: requests judged (what enforce mode would have done) that the upstream served or throttled, by upstream.",
		}, []string{"upstream"}),
		ShadowWouldClamp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_shadow_would_clamp_total",
			Help: "Shadow mode: requests whose max_tokens or thinking budget enforce mode would have changed, by key.",
		}, []string{"key"}),
		ShadowWouldQueue: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_shadow_would_queue_total",
			Help: "Shadow mode: requests enforce mode would have queued before admitting them, by key.",
		}, []string{"key"}),
		ShadowQueueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "headroom_shadow_would_queue_wait_seconds",
			Help:    "Shadow mode: how long a request enforce mode would have queued would have waited (the ledger's estimate of when it fits).",
			Buckets: []float64{0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120},
		}),
		ShadowWouldRefuse: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_shadow_would_refuse_total",
			Help: "Shadow mode: requests enforce mode would have refused, by key and reason (too_large, budget, daily, deadline).",
		}, []string{"key", "reason"}),
		ShadowPredicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_shadow_upstream_429_predicted_total",
			Help: "Shadow mode: upstream throttles the mirror predicted (it would have queued or refused the request as forwarded), by upstream.",
		}, []string{"upstream"}),
		ShadowMissed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_shadow_upstream_429_missed_total",
			Help: "Shadow mode: upstream throttles the mirror missed (it would have admitted the request as forwarded at once), by upstream.",
		}, []string{"upstream"}),
		ShadowFalseAlarms: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_shadow_false_alarms_total",
			Help: "Shadow mode: requests the mirror would have queued or refused as forwarded that the upstream served, by upstream.",
		}, []string{"upstream"}),
	}
	reg.MustRegister(m.RoutedRequests, m.Failovers, m.UpstreamOut)
	reg.MustRegister(m.ShadowRequests, m.ShadowWouldClamp, m.ShadowWouldQueue, m.ShadowQueueWait, m.ShadowWouldRefuse,
		m.ShadowPredicted, m.ShadowMissed, m.ShadowFalseAlarms)
	reg.MustRegister(m.Requests, m.QueueWait, m.ReservedTokens, m.SettledTokens,
		m.UpstreamThrottles, m.UpstreamRetries, m.Clamps, m.Truncations, m.InFlight,
		m.MaxTokensDecisions, m.Escalations, m.CutOutputTokens, m.UsageClamps, m.ServiceTiers,
		m.Throttles, m.KeyQueueWait)
	m.GenAI = newGenAI()
	reg.MustRegister(m.GenAI.tokens)
	return m
}

// Bucket is one mirrored bucket's state at scrape time.
type Bucket struct {
	Upstream string
	Name     string
	Kind     string
	// Capacity is the configured limit; Effective is the capacity the
	// ledger currently uses after upstream throttles lowered it.
	Capacity, Effective float64
	// Used is settled consumption in the current window; Reserved is held by
	// requests in flight.
	Used, Reserved float64
}

// RegisterBuckets registers a collector that reads bucket state from
// snapshot at every scrape.
func RegisterBuckets(reg prometheus.Registerer, snapshot func() []Bucket) {
	reg.MustRegister(bucketCollector(snapshot))
}

var (
	descCapacity = prometheus.NewDesc("headroom_bucket_capacity_tokens",
		"Configured capacity of a mirrored quota bucket.", []string{"upstream", "bucket", "kind"}, nil)
	descEffective = prometheus.NewDesc("headroom_bucket_effective_capacity_tokens",
		"Capacity the ledger uses after upstream throttles (AIMD) lowered it.", []string{"upstream", "bucket", "kind"}, nil)
	descUsed = prometheus.NewDesc("headroom_bucket_used_tokens",
		"Settled consumption in the bucket's current window.", []string{"upstream", "bucket", "kind"}, nil)
	descReserved = prometheus.NewDesc("headroom_bucket_reserved_tokens",
		"Tokens held by admitted requests not yet settled.", []string{"upstream", "bucket", "kind"}, nil)
	descUtil = prometheus.NewDesc("headroom_bucket_utilisation_ratio",
		"(used + reserved) / effective capacity.", []string{"upstream", "bucket", "kind"}, nil)
)

type bucketCollector func() []Bucket

func (c bucketCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCapacity, descEffective, descUsed, descReserved, descUtil} {
		ch <- d
	}
}

func (c bucketCollector) Collect(ch chan<- prometheus.Metric) {
	for _, b := range c() {
		l := []string{b.Upstream, b.Name, b.Kind}
		ch <- prometheus.MustNewConstMetric(descCapacity, prometheus.GaugeValue, b.Capacity, l...)
		ch <- prometheus.MustNewConstMetric(descEffective, prometheus.GaugeValue, b.Effective, l...)
		ch <- prometheus.MustNewConstMetric(descUsed, prometheus.GaugeValue, b.Used, l...)
		ch <- prometheus.MustNewConstMetric(descReserved, prometheus.GaugeValue, b.Reserved, l...)
		util := 0.0
		if b.Effective > 0 {
			util = (b.Used + b.Reserved) / b.Effective
		}
		ch <- prometheus.MustNewConstMetric(descUtil, prometheus.GaugeValue, util, l...)
	}
}

// State is what the gateway knows at scrape time beyond the buckets.
type State struct {
	Exhaustion []Exhaustion
	Keys       []KeyQueue
}

// Exhaustion is when a daily bucket (Upstream, Bucket) or a key's daily
// budget (Key) runs out, in seconds from now, at the fastest (Low) and
// slowest (High) of its recent rates: 0 when spent, +Inf when the day
// ends first or nothing was used in the last hour.
type Exhaustion struct {
	Upstream, Bucket, Key string
	Low, High             float64
}

// KeyQueue is one key's requests waiting for quota and in flight, over
// every upstream.
type KeyQueue struct {
	Key              string
	Queued, InFlight int
}

// RegisterState registers a collector that reads the forecasts and the
// keys' queues from snapshot at every scrape.
func RegisterState(reg prometheus.Registerer, snapshot func() State) {
	reg.MustRegister(stateCollector(snapshot))
}

var (
	descBucketExhaustion = prometheus.NewDesc("headroom_forecast_exhaustion_seconds",
		"Seconds until a daily bucket runs out at its recent rate: bound=low at the fastest of the last 5, 15 and 60 minutes' rates, high at the slowest; 0 when spent, +Inf when the day ends first.",
		[]string{"upstream", "bucket", "bound"}, nil)
	descBudgetExhaustion = prometheus.NewDesc("headroom_key_budget_exhaustion_seconds",
		"Seconds until a key's daily budget runs out at its recent rate: bound=low at the fastest of the last 5, 15 and 60 minutes' rates, high at the slowest; 0 when spent, +Inf when the day ends first.",
		[]string{"key", "bound"}, nil)
	descKeyQueued = prometheus.NewDesc("headroom_key_queued_requests",
		"Requests of a key waiting in the fair queues for quota (every upstream).", []string{"key"}, nil)
	descKeyInFlight = prometheus.NewDesc("headroom_key_in_flight_requests",
		"Requests of a key admitted and not yet settled (every upstream).", []string{"key"}, nil)
)

type stateCollector func() State

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBucketExhaustion, descBudgetExhaustion, descKeyQueued, descKeyInFlight} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c()
	for _, e := range st.Exhaustion {
		for _, b := range [...]struct {
			bound string
			v     float64
		}{{"low", e.Low}, {"high", e.High}} {
			if e.Key != "" {
				ch <- prometheus.MustNewConstMetric(descBudgetExhaustion, prometheus.GaugeValue, b.v, e.Key, b.bound)
			} else {
				ch <- prometheus.MustNewConstMetric(descBucketExhaustion, prometheus.GaugeValue, b.v, e.Upstream, e.Bucket, b.bound)
			}
		}
	}
	for _, k := range st.Keys {
		ch <- prometheus.MustNewConstMetric(descKeyQueued, prometheus.GaugeValue, float64(k.Queued), k.Key)
		ch <- prometheus.MustNewConstMetric(descKeyInFlight, prometheus.GaugeValue, float64(k.InFlight), k.Key)
	}
}
