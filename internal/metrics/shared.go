package metrics

import "github.com/prometheus/client_golang/prometheus"

// SharedLedger is one upstream's ledger shared with the other replicas in
// Redis, at scrape time.
type SharedLedger struct {
	Upstream string
	// Up is whether Redis answers; Share is N while the replica admits
	// against 1/N of every bucket on its own (redis.when_down: local_share).
	Up       bool
	Share    int
	Replicas int
}

// RegisterSharedLedgers registers a collector that reads the shared
// ledgers' state from snapshot at every scrape.
func RegisterSharedLedgers(reg prometheus.Registerer, snapshot func() []SharedLedger) {
	reg.MustRegister(sharedCollector(snapshot))
}

var (
	descSharedUp = prometheus.NewDesc("headroom_shared_ledger_up",
		"1 while the Redis holding the ledger the replicas share answers, 0 while it does not.", []string{"upstream"}, nil)
	descSharedShare = prometheus.NewDesc("headroom_shared_ledger_local_share",
		"N while Redis does not answer and this replica admits against 1/N of every bucket (redis.when_down: local_share); 0 otherwise.", []string{"upstream"}, nil)
	descSharedReplicas = prometheus.NewDesc("headroom_shared_ledger_replicas",
		"Replicas holding a live lease in the shared ledger at Redis's last answer.", []string{"upstream"}, nil)
)

type sharedCollector func() []SharedLedger

func (c sharedCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSharedUp, descSharedShare, descSharedReplicas} {
		ch <- d
	}
}

func (c sharedCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c() {
		up := 0.0
		if s.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descSharedUp, prometheus.GaugeValue, up, s.Upstream)
		ch <- prometheus.MustNewConstMetric(descSharedShare, prometheus.GaugeValue, float64(s.Share), s.Upstream)
		ch <- prometheus.MustNewConstMetric(descSharedReplicas, prometheus.GaugeValue, float64(s.Replicas), s.Upstream)
	}
}
