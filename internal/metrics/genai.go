package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// GenAI is the OpenTelemetry GenAI semantic conventions' client token
// usage metric, gen_ai.client.token.usage ("Semantic conventions for
// generative AI metrics", https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-metrics/,
// v1.37 and later): a histogram of tokens per operation, in the
// convention's bucket boundaries, with gen_ai.token.type input or output,
// gen_ai.request.model, gen_ai.operation.name and gen_ai.provider.name
// (aws.bedrock). Prometheus spells the dots as underscores and drops the
// {token} annotation unit, as the OpenTelemetry Prometheus exporter does.
// gen_ai_system, the provider's attribute name before v1.37, is set too so
// that dashboards of either version find it. It stands beside Headroom's
// own quota metrics (headroom_settled_tokens_total counts quota tokens,
// with output × burndown; this counts the model's tokens).
type GenAI struct {
	tokens *prometheus.HistogramVec // gen_ai_operation_name, gen_ai_request_model, gen_ai_token_type
	// observers caches each (operation, model)'s input and output
	// histograms: the label lookup hashes three strings, which costs more
	// than the observation itself on the request path.
	observers sync.Map // genAIKey -> *[2]prometheus.Observer
}

type genAIKey struct{ operation, model string }

// genAITokenBuckets are the convention's ExplicitBucketBoundaries for
// gen_ai.client.token.usage.
var genAITokenBuckets = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}

// GenAIOperationChat is gen_ai.operation.name for Claude's Messages,
// InvokeModel and Converse calls: a chat completion.
const GenAIOperationChat = "chat"

func newGenAI() *GenAI {
	return &GenAI{tokens: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:        "gen_ai_client_token_usage",
		Help:        "Number of input and output tokens used, per call (OpenTelemetry gen_ai.client.token.usage). Input counts cache reads and writes too.",
		Buckets:     genAITokenBuckets,
		ConstLabels: prometheus.Labels{"gen_ai_provider_name": "aws.bedrock", "gen_ai_system": "aws.bedrock"},
	}, []string{"gen_ai_operation_name", "gen_ai_request_model", "gen_ai_token_type"})}
}

// ObserveTokens records one call's reported input and output tokens.
func (g *GenAI) ObserveTokens(operation, model string, input, output int) {
	k := genAIKey{operation, model}
	o, ok := g.observers.Load(k)
	if !ok {
		o, _ = g.observers.LoadOrStore(k, &[2]prometheus.Observer{
			g.tokens.WithLabelValues(operation, model, "input"),
			g.tokens.WithLabelValues(operation, model, "output"),
		})
	}
	obs := o.(*[2]prometheus.Observer)
	obs[0].Observe(float64(max(input, 0)))
	obs[1].Observe(float64(max(output, 0)))
}
