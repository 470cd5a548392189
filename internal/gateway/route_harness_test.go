package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/metrics"
	"github.com/headroomhq/headroom/internal/store/memstore"
	"github.com/headroomhq/headroom/internal/upstream"
)

// The two regions of the routing tests: one emulator serves both, under
// /region/NAME, each with its own quota; the gateway has one upstream per
// region, east preferred.
var routeRegions = []string{"us-east-1", "us-west-2"}

type routeOpts struct {
	// emu and mirror are each region's buckets at the emulator (the real
	// account) and in the gateway's configuration (nil: testBuckets(1M, 100M)).
	emu, mirror map[string][]config.Bucket
	// fault answers a region's n-th model call (from 1) instead of the
	// emulator, or returns "" to let it through (see routeHarness.serve).
	fault func(region string, n int64) string
	// routing is Options.Routing; prefix each upstream's ModelPrefix.
	routing func(model, key string) RouteOptions
	prefix  map[string]string
	gen     func(*config.Generation)
	faults  func(*config.Faults) // the emulator's
	log     *slog.Logger
	maxWait time.Duration
}

// routeHarness is an emulator with two regions and a gateway routing over
// both.
type routeHarness struct {
	t       *testing.T
	gw      *Gateway
	gwURL   string
	emuURL  string
	secret  string
	reg     *prometheus.Registry
	ups     map[string]*Upstream
	mu      sync.Mutex
	seen    map[string][]string // region -> model IDs of the calls that reached it (faulted or not)
	n       map[string]*atomic.Int64
	th429   atomic.Int64 // 429s the emulator (or a fault) answered
	emuSrv  *emulator.Server
	started map[string]*atomic.Int64 // streams the emulator began to answer, by region
}

func newRouteHarness(t *testing.T, o routeOpts) *routeHarness {
	t.Helper()
	h := &routeHarness{t: t, ups: map[string]*Upstream{}, seen: map[string][]string{}, n: map[string]*atomic.Int64{}, started: map[string]*atomic.Int64{}}
	logger := slog.New(slog.DiscardHandler)
	if o.log != nil {
		logger = o.log
	}
	ec := config.DefaultEmulator()
	ec.Regions = nil
	for _, r := range routeRegions {
		b := o.emu[r]
		if b == nil {
			b = testBuckets(1_000_000, 100_000_000)
		}
		ec.Regions = append(ec.Regions, config.EmulatorRegion{Name: r, Buckets: b})
		h.n[r], h.started[r] = &atomic.Int64{}, &atomic.Int64{}
	}
	ec.DefaultRegion = routeRegions[0]
	ec.Generation.OutputTokens = config.Distribution{Distribution: config.DistFixed, Mean: 20, Min: 1, Max: 8000}
	if o.gen != nil {
		o.gen(&ec.Generation)
	}
	if o.faults != nil {
		o.faults(&ec.Faults)
	}
	emu, err := emulator.New(ec, logger, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	h.emuSrv = emu
	es := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, emu, o.fault) }))
	t.Cleanup(es.Close)
	h.emuURL = es.URL

	budgets := admission.NewBudgets()
	var ups []*Upstream
	names := []string{"east", "west"}
	for i, r := range routeRegions {
		client, err := upstream.New(context.Background(), upstream.Options{Name: names[i], Region: r,
			Endpoint: es.URL + "/region/" + r, Auth: upstream.AuthNone})
		if err != nil {
			t.Fatal(err)
		}
		b := o.mirror[r]
		if b == nil {
			b = testBuckets(1_000_000, 100_000_000)
		}
		u, err := NewUpstream(names[i], client, b, config.DefaultWindows(), admission.Options{Budgets: budgets}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		u.ModelPrefix = o.prefix[names[i]]
		h.ups[names[i]] = u
		ups = append(ups, u)
	}
	st := memstore.New()
	secret := keys.NewSecret()
	k := keys.Key{Name: "alice", Weight: 1, Hash: keys.Hash(secret), CreatedAt: time.Now()}
	if err := st.Create(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	h.secret = secret
	for _, u := range ups {
		u.Admission.SetKeys([]admission.Key{AdmissionKey(k)})
	}
	registry := keys.NewRegistry(st, logger)
	if err := registry.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.reg = prometheus.NewRegistry()
	profile, burndown, _ := config.Accounting{}.ProfileAndBurndown()
	h.gw, err = New(Options{
		Logger: logger, Metrics: metrics.New(h.reg), Gatherer: h.reg, Keys: registry, Upstreams: ups,
		Route:   func(string, string) []string { return names },
		Routing: o.routing,
		Caps:    config.DefaultServe().Policy.Caps, Profile: profile, Burndown: burndown, SettleDelay: -1,
		MaxWait: o.maxWait,
	})
	if err != nil {
		t.Fatal(err)
	}
	gs := httptest.NewServer(h.gw)
	t.Cleanup(gs.Close)
	h.gwURL = gs.URL
	return h
}

// serve passes a call to the emulator, or answers it with the fault o.fault
// names: "503", "reset" (the connection closed before any answer), "429",
// "429-daily", "403", "cut" (the emulator's stream, throttled mid-stream).
func (h *routeHarness) serve(w http.ResponseWriter, r *http.Request, emu http.Handler, fault func(string, int64) string) {
	region, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/region/"), "/")
	var f string
	if strings.Contains(r.URL.Path, "/model/") && h.n[region] != nil {
		n := h.n[region].Add(1)
		h.mu.Lock()
		seg := strings.Split(r.URL.Path, "/")
		h.seen[region] = append(h.seen[region], seg[len(seg)-2])
		h.mu.Unlock()
		if fault != nil {
			f = fault(region, n)
		}
	}
	errorAnswer := func(status int, name, msg string) {
		w.Header().Set("X-Amzn-ErrorType", name)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"message":%q}`, msg)
	}
	switch f {
	case "503":
		errorAnswer(http.StatusServiceUnavailable, "ServiceUnavailableException", "Service unavailable")
		return
	case "reset":
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
		return
	case "429":
		h.th429.Add(1)
		errorAnswer(http.StatusTooManyRequests, "ThrottlingException", "Too many tokens, please wait before trying again.")
		return
	case "429-daily":
		h.th429.Add(1)
		errorAnswer(http.StatusTooManyRequests, "ThrottlingException", "Too many tokens per day, please wait before trying again.")
		return
	case "403":
		errorAnswer(http.StatusForbidden, "AccessDeniedException", "The security token included in the request is expired")
		return
	case "cut":
		r.Header.Set(emulator.HeaderFault, emulator.FaultThrottleMidStream)
	}
	if strings.Contains(r.URL.Path, "-with-response-stream") && h.started[region] != nil {
		h.started[region].Add(1)
	}
	emu.ServeHTTP(&statusSpy{ResponseWriter: w, on429: func() { h.th429.Add(1) }}, r)
}

// calls is how many model calls reached region (faulted ones included).
func (h *routeHarness) calls(region string) int64 { return h.n[region].Load() }

// post sends an InvokeModel call for model through the gateway.
func (h *routeHarness) post(model string, maxTokens int, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	return h.postPath("/model/"+model+"/invoke", maxTokens, hdr)
}

func (h *routeHarness) postPath(path string, maxTokens int, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.gwURL+path, strings.NewReader(fmt.Sprintf(smallMsg, maxTokens)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.secret)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	resp.Body.Close()
	return resp, b.Bytes()
}

// routed is headroom_routed_requests_total for an upstream and reason.
func (h *routeHarness) routed(up, reason string) float64 {
	return testutil.ToFloat64(h.gw.m.RoutedRequests.WithLabelValues(up, reason))
}

// status reads /v1/status's routing part of each upstream.
func (h *routeHarness) status() map[string]RouteStatus {
	h.t.Helper()
	resp, err := http.Get(h.gwURL + "/v1/status")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Upstreams []struct {
			Name    string      `json:"name"`
			Routing RouteStatus `json:"routing"`
		} `json:"upstreams"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		h.t.Fatal(err)
	}
	out := map[string]RouteStatus{}
	for _, u := range st.Upstreams {
		out[u.Name] = u.Routing
	}
	return out
}

// reserved is what the gateway's ledgers still hold, every upstream.
func (h *routeHarness) reserved() int64 {
	var n int64
	for _, u := range h.ups {
		for _, b := range u.Ledger().Snapshot(time.Now()) {
			n += b.Reserved
		}
	}
	return n
}
