package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBucketsCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	RegisterBuckets(reg, func() []Bucket {
		return []Bucket{{Upstream: "u", Name: "tpm", Kind: "tpm", Capacity: 1000, Effective: 500, Used: 100, Reserved: 150}}
	})
	m.Requests.WithLabelValues("InvokeModel", OutcomeOK).Inc()
	want := `
# HELP headroom_bucket_utilisation_ratio (used + reserved) / effective capacity.
# TYPE headroom_bucket_utilisation_ratio gauge
headroom_bucket_utilisation_ratio{bucket="tpm",kind="tpm",upstream="u"} 0.5
# HELP headroom_requests_total Requests by operation and outcome.
# TYPE headroom_requests_total counter
headroom_requests_total{op="InvokeModel",outcome="ok"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "headroom_bucket_utilisation_ratio", "headroom_requests_total"); err != nil {
		t.Error(err)
	}
}

func TestNoDefaultRegistry(t *testing.T) {
	// Two gateways in one process (tests do this) must not collide.
	New(prometheus.NewRegistry())
	New(prometheus.NewRegistry())
}
