package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/metrics"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/store/redisstore"
	"github.com/headroomhq/headroom/internal/store/redistest"
	"github.com/headroomhq/headroom/internal/upstream"
)

// Replicas: several gateways, each with its own ledger and HTTP server, in
// front of one emulator, sharing their ledger through one real
// redis-server (internal/store/redisstore) or not at all.
//
// Quantities: a request reserves 4,096 × 5 + its input, about 20,500
// tokens, in both buckets, and costs ~110 when it settles; the emulator
// writes its 20 output tokens in 100 ms. The minute bucket (100,000) holds
// four reservations at once and the day bucket (250,000) twelve, so the
// account runs four requests at a time: three replicas that each believe
// they have the whole account run twelve, and the emulator throttles.
const (
	replicaTPM = 100_000
	replicaTPD = 250_000
)

func replicaEmulator(c *config.Emulator) {
	c.Generation.TimeToFirstToken = config.Duration{}
	c.Generation.TokensPerSecond = 200
}

// replica is one more gateway in front of h's emulator, with h's keys.
type replica struct {
	url string
	up  *Upstream
}

// addReplica starts a gateway in front of h's emulator; with rdb, its
// upstream shares its ledger there (as replica name).
func addReplica(t testing.TB, h *harness, rdb *redisstoreClient, name string) *replica {
	t.Helper()
	return addReplicaWith(t, h, rdb, name, replicaOpts{})
}

// replicaOpts are a replica's differences from the default: shadow mode,
// its buckets (nil: replicaTPM and replicaTPD), Options.SettleDelay.
type replicaOpts struct {
	shadow      bool
	buckets     []config.Bucket
	settleDelay time.Duration
	// pool is Options.UsageShare, shared every 50 ms (ShareUsage).
	pool UsageShare
}

// addReplicaWith is addReplica with o.
func addReplicaWith(t testing.TB, h *harness, rdb *redisstoreClient, name string, o replicaOpts) *replica {
	t.Helper()
	if o.buckets == nil {
		o.buckets = testBuckets(replicaTPM, replicaTPD)
	}
	client, err := upstream.New(context.Background(), upstream.Options{Name: "emu", Region: region,
		Endpoint: h.emuURL, Auth: upstream.AuthNone})
	if err != nil {
		t.Fatal(err)
	}
	up, err := NewUpstream("emu", client, o.buckets, config.DefaultWindows(), admission.Options{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := h.store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var aks []admission.Key
	for _, k := range keys {
		aks = append(aks, AdmissionKey(k))
	}
	up.Admission.SetKeys(aks)
	if rdb != nil {
		shareUpstream(t, rdb, up, name)
	}
	reg := prometheus.NewRegistry()
	profile, burndown, _ := config.Accounting{}.ProfileAndBurndown()
	gw, err := New(Options{
		Logger: slog.New(slog.DiscardHandler), Metrics: metrics.New(reg), Gatherer: reg, Keys: h.registry,
		Upstreams: []*Upstream{up}, Route: func(model, _ string) []string {
			if strings.Contains(model, "claude") {
				return []string{"emu"}
			}
			return nil
		},
		Caps: config.DefaultServe().Policy.Caps, Profile: profile, Burndown: burndown,
		Shadow: o.shadow, SettleDelay: o.settleDelay, UsageShare: o.pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.pool != nil {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { gw.ShareUsage(ctx, 50*time.Millisecond); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	s := httptest.NewServer(gw)
	t.Cleanup(s.Close)
	return &replica{url: s.URL, up: up}
}

type redisstoreClient = redistest.Server

// shareUpstream makes up's controller share its ledger in the Redis of srv.
func shareUpstream(t testing.TB, srv *redistest.Server, up *Upstream, name string) *redisstore.Shared {
	t.Helper()
	rdb := srv.Client(t)
	l := up.Ledger()
	specs := make([]quota.BucketSpec, l.Len())
	for i := range specs {
		specs[i] = l.Spec(i)
	}
	sl, err := redisstore.NewLedger(rdb, specs, quota.Windows{}, redisstore.LedgerOptions{Upstream: up.Name, Replica: name})
	if err != nil {
		t.Fatal(err)
	}
	sh := redisstore.NewShared(sl, l, redisstore.SharedOptions{})
	up.Admission.ShareWith(sh)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sh.Run(ctx, up.Admission); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return sh
}

// TestReplicasShareOneLedger: three replicas under a load spread over all
// of them send the emulator no more than its quota (no upstream 429) when
// they share their ledger on Redis, and over it (429s) when they do not.
func TestReplicasShareOneLedger(t *testing.T) {
	for _, shared := range []bool{true, false} {
		t.Run(map[bool]string{true: "redis", false: "alone"}[shared], func(t *testing.T) {
			h := newHarness(t, harnessOpts{buckets: testBuckets(replicaTPM, replicaTPD), emu: replicaEmulator,
				keys: []keys.Key{{Name: "a", Weight: 1}, {Name: "b", Weight: 1}, {Name: "c", Weight: 1}}})
			var srv *redistest.Server
			if shared {
				srv = redistest.Start(t)
			}
			var loads []workload
			for i, k := range []string{"a", "b", "c"} {
				r := addReplica(t, h, srv, fmt.Sprintf("r%d", i))
				loads = append(loads, workload{key: k, clients: 4, maxTokens: 1000, outputTokens: 20, url: r.url})
			}
			out := runBacklog(t, h, 0, 2*time.Second, loads)
			tokens, _, failed := tally(out)
			up429 := h.throttle.Load()
			t.Logf("answers %d, served %v, failed %v, upstream 429s %d", len(out), tokens, failed, up429)
			if len(out) < 20 {
				t.Fatalf("only %d answers in 2 s: the replicas stalled", len(out))
			}
			if shared && (up429 != 0 || len(failed) != 0) {
				t.Errorf("sharing one ledger: %d upstream 429s, client failures %v; want none", up429, failed)
			}
			if !shared && up429 == 0 {
				t.Errorf("three replicas with a ledger each: no upstream 429; the load is too light to tell")
			}
		})
	}
}

// TestReplicasFairAcrossReplicas: a heavy key whose six clients all send
// to one replica cannot starve two light keys on two other replicas: the
// shared ledger keeps every backlogged key within a request of the others
// in fair order, whichever replica it waits on.
func TestReplicasFairAcrossReplicas(t *testing.T) {
	h := newHarness(t, harnessOpts{buckets: testBuckets(replicaTPM, replicaTPD), emu: replicaEmulator,
		keys: []keys.Key{{Name: "heavy", Weight: 1}, {Name: "l1", Weight: 1}, {Name: "l2", Weight: 1}}})
	srv := redistest.Start(t)
	loads := []workload{
		{key: "heavy", clients: 6, maxTokens: 1000, outputTokens: 20, url: addReplica(t, h, srv, "r0").url},
		{key: "l1", clients: 2, maxTokens: 1000, outputTokens: 20, url: addReplica(t, h, srv, "r1").url},
		{key: "l2", clients: 2, maxTokens: 1000, outputTokens: 20, url: addReplica(t, h, srv, "r2").url},
	}
	out := runBacklog(t, h, time.Second, 3*time.Second, loads)
	tokens, _, failed := tally(out)
	var xs []float64
	for _, k := range []string{"heavy", "l1", "l2"} {
		xs = append(xs, float64(tokens[k]))
	}
	j := jain(xs)
	t.Logf("answers %d, served %v, failed %v, upstream 429s %d, Jain %.3f", len(out), tokens, failed, h.throttle.Load(), j)
	if len(out) < 20 {
		t.Fatalf("only %d answers in 3 s: the replicas stalled", len(out))
	}
	if j < 0.9 {
		t.Errorf("Jain's index among the backlogged keys %.3f, want >= 0.9 (served %v)", j, tokens)
	}
	if h.throttle.Load() != 0 {
		t.Errorf("%d upstream 429s", h.throttle.Load())
	}
}
