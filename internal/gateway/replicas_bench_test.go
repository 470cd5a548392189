package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/store/redistest"
)

// BenchmarkSharedLedger is the cost per request of sharing the ledger on
// Redis: a small InvokeModel through the gateway to a replaying upstream,
// with the upstream's ledger in the process alone (local) and shared in a
// real redis-server on loopback (redis: one reserve round trip on the
// request path; the settlement is sent by the Shared's goroutine). The
// two run in the same process and binary; p50 and p99 are per request.
func BenchmarkSharedLedger(b *testing.B) {
	body := []byte(fmt.Sprintf(smallMsg, 32000))
	rp := record(b, "invoke", body)
	for _, shared := range []bool{false, true} {
		b.Run(map[bool]string{false: "local", true: "redis"}[shared], func(b *testing.B) {
			h := newHarness(b, harnessOpts{buckets: testBuckets(1e15, 1e18), keys: []keys.Key{{Name: "alice", Weight: 1}},
				settleDelay: -1, upstream: rp})
			var srv *redistest.Server
			if shared {
				srv = redistest.Start(b)
				shareUpstream(b, srv, h.up, "r0")
				srv.Client(b).ConfigResetStat(context.Background())
			}
			secret := h.secret["alice"]
			path := "/model/" + sonnet + "/invoke"
			var lat []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+secret)
				rec := httptest.NewRecorder()
				start := time.Now()
				h.gw.ServeHTTP(rec, req)
				lat = append(lat, time.Since(start))
				if rec.Code != 200 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
			if srv != nil {
				// Script calls per request: the reserve, and what the
				// Shared's goroutine sent (settlements, beats).
				calls, us := scriptCalls(b, srv)
				b.ReportMetric(float64(calls)/float64(len(lat)), "scripts/op")
				b.ReportMetric(us, "script-us/call")
			}
		})
	}
}

// scriptCalls is how many ledger script calls srv ran since its stats
// were reset (EVALSHA and EVAL: each is one round trip), and the Redis
// time each took on average.
func scriptCalls(b *testing.B, srv *redistest.Server) (calls int64, usPerCall float64) {
	info, err := srv.Client(b).Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var usec int64
	for _, m := range evalRE.FindAllStringSubmatch(info, -1) {
		c, _ := strconv.ParseInt(m[1], 10, 64)
		u, _ := strconv.ParseInt(m[2], 10, 64)
		calls, usec = calls+c, usec+u
	}
	if calls > 0 {
		usPerCall = float64(usec) / float64(calls)
	}
	return calls, usPerCall
}

var evalRE = regexp.MustCompile(`cmdstat_eval(?:sha)?:calls=(\d+),usec=(\d+)`)

// BenchmarkReplicasSaturated is the throughput of gateways whose quota is
// the bottleneck: the emulator of the replica tests (four requests at a
// time, 100 ms each, 200 ms settle delay) under eight clients for 3 s,
// through one replica alone, one replica on Redis, and two replicas on
// Redis (four clients each). Sharing must not cost the account capacity:
// two replicas should serve what one does. Run with -benchtime=1x: each
// run is one 3 s load; req/s is the metric.
func BenchmarkReplicasSaturated(b *testing.B) {
	for _, c := range []struct {
		name     string
		replicas int
		redis    bool
	}{{"one", 1, false}, {"one-redis", 1, true}, {"two-redis", 2, true}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				h := newHarness(b, harnessOpts{buckets: testBuckets(replicaTPM, replicaTPD), emu: replicaEmulator,
					keys: []keys.Key{{Name: "a", Weight: 1}, {Name: "b", Weight: 1}}})
				var srv *redistest.Server
				if c.redis {
					srv = redistest.Start(b)
				}
				var loads []workload
				for i := range c.replicas {
					r := addReplica(b, h, srv, fmt.Sprintf("r%d", i))
					loads = append(loads, workload{key: []string{"a", "b"}[i], clients: 8 / c.replicas, maxTokens: 1000, outputTokens: 20, url: r.url})
				}
				out := runBacklog(b, h, 0, 3*time.Second, loads)
				ok := 0
				for _, s := range out {
					if s.status == http.StatusOK {
						ok++
					}
				}
				b.ReportMetric(float64(ok)/3, "req/s")
				b.ReportMetric(float64(h.throttle.Load()), "upstream-429s")
			}
		})
	}
}

// BenchmarkReplicasThroughput is the saturation throughput of the gateway
// where nothing but the gateways themselves binds: a replaying upstream
// (an answer recorded once from the emulator, sent back at once) and a
// quota too large to bind. Sixteen closed-loop clients over loopback HTTP
// for 2 s (after 0.3 s of warm-up) drive one replica alone (its ledger in
// the process), one replica on Redis, and two replicas on Redis with the
// clients split between them. Each reports req/s, the p50 and p99 of a
// request, the CPU time per request of this process (clients, gateways,
// upstream) and of redis-server, and script calls per request. Run with
// -benchtime=1x: each run is one load.
func BenchmarkReplicasThroughput(b *testing.B) {
	const clients = 16
	window, warmup := 2*time.Second, 300*time.Millisecond
	body := fmt.Sprintf(smallMsg, 1000)
	rp := record(b, "invoke", []byte(body))
	for _, c := range []struct {
		name     string
		replicas int
		redis    bool
	}{{"one", 1, false}, {"one-redis", 1, true}, {"two-redis", 2, true}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				h := newHarness(b, harnessOpts{buckets: testBuckets(1e15, 1e18), upstream: rp,
					keys: []keys.Key{{Name: "a", Weight: 1}, {Name: "b", Weight: 1}}})
				var srv *redistest.Server
				if c.redis {
					srv = redistest.Start(b)
				}
				var urls []string
				for i := range c.replicas {
					urls = append(urls, addReplicaWith(b, h, srv, fmt.Sprintf("r%d", i), replicaOpts{buckets: testBuckets(1e15, 1e18)}).url)
				}
				from := time.Now().Add(warmup)
				ctx, cancel := context.WithDeadline(context.Background(), from.Add(window))
				var (
					mu      sync.Mutex
					lat     []time.Duration
					failed  int
					wg      sync.WaitGroup
					cpu0    = processCPU(b)
					redis0  time.Duration
					started bool
				)
				// Stats and CPU are read when the window opens.
				go func() {
					time.Sleep(time.Until(from))
					mu.Lock()
					defer mu.Unlock()
					cpu0, started = processCPU(b), true
					if srv != nil {
						redis0 = redisCPU(b, srv)
						srv.Client(b).ConfigResetStat(context.Background())
					}
				}()
				for i := range clients {
					url, key := urls[i%len(urls)], []string{"a", "b"}[i%len(urls)]
					wg.Go(func() {
						for ctx.Err() == nil {
							start := time.Now()
							s, ok := invokeOnce(ctx, url, h.secret[key], body, 20)
							if !ok || start.Before(from) {
								continue
							}
							mu.Lock()
							if s.status == http.StatusOK {
								lat = append(lat, s.done.Sub(start))
							} else {
								failed++
							}
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				cancel()
				mu.Lock()
				if !started || len(lat) == 0 {
					b.Fatalf("no request answered in the window (started %v)", started)
				}
				cpu := processCPU(b) - cpu0
				slices.Sort(lat)
				n := float64(len(lat))
				b.ReportMetric(n/window.Seconds(), "req/s")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-us/req")
				b.ReportMetric(float64(failed), "failed")
				if srv != nil {
					calls, _ := scriptCalls(b, srv)
					b.ReportMetric(float64(calls)/n, "scripts/req")
					b.ReportMetric(float64((redisCPU(b, srv)-redis0).Microseconds())/n, "redis-cpu-us/req")
				}
				mu.Unlock()
			}
		})
	}
}

// redisCPU is the CPU time (user and system) srv's process used so far.
func redisCPU(b *testing.B, srv *redistest.Server) time.Duration {
	info, err := srv.Client(b).Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var t float64
	for _, m := range cpuRE.FindAllStringSubmatch(info, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		t += v
	}
	return time.Duration(t * float64(time.Second))
}

var cpuRE = regexp.MustCompile(`(?m)^used_cpu_(?:sys|user):([\d.]+)`)
