package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/httpsrv"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/metrics"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/store/memstore"
	"github.com/headroomhq/headroom/internal/upstream"
)

// Models used by the tests: Sonnet 4 through the US cross-region profile,
// which the test buckets scope.
const (
	sonnet   = "us.anthropic.claude-sonnet-4-20250514-v1:0"
	region   = "us-east-1"
	smallMsg = `{"anthropic_version":"bedrock-2023-05-31","max_tokens":%d,"messages":[{"role":"user","content":"hello there"}]}`
)

// testBuckets is one account-wide TPM and TPD for Sonnet 4 cross-region.
func testBuckets(tpm, tpd int64) []config.Bucket {
	scope := bedrock.Scope{Models: []string{"claude-sonnet-4"}, Inference: bedrock.InferenceCrossRegion}
	return []config.Bucket{
		{Name: "sonnet-tpm", Kind: config.KindTPM, Limit: tpm, Scope: scope},
		{Name: "sonnet-tpd", Kind: config.KindTPD, Limit: tpd, Scope: scope},
	}
}

type harnessOpts struct {
	buckets []config.Bucket
	// emu edits the emulator's configuration (its buckets default to the
	// gateway's: the mirror is exact).
	emu     func(*config.Emulator)
	maxWait time.Duration
	keys    []keys.Key // names, weights and limits; secrets are made here
	maxBody int64
	// settleDelay is Options.SettleDelay (0: the default).
	settleDelay time.Duration
	// upstream replaces the emulator behind the gateway (benchmarks).
	upstream http.Handler
	// name is the upstream's name ("": emu); budgets is its controller's
	// Options.Budgets (tests of several upstreams).
	name    string
	budgets *admission.Budgets
	// log is the gateway's logger (nil: discard).
	log *slog.Logger
	// opsToken is Options.OpsToken; bodyRead Options.BodyReadTimeout.
	opsToken string
	// dashboard is Options.Dashboard.
	dashboard http.Handler
	bodyRead  time.Duration
	// bodyMem is Options.MaxBodyMemory.
	bodyMem int64
	// output is the learned output policy's settings (nil: the fixed
	// policy of config.DefaultServe's caps).
	output *admission.OutputSettings
	// service is the upstream's (empty: bedrock-runtime); endpointPath is
	// appended to the upstream server's URL (Mantle under /mantle).
	service      upstream.Service
	endpointPath string
	// shadow is Options.Shadow; tap sees every request that reaches the
	// emulator (it may read the body, and must put it back).
	shadow bool
	tap    func(*http.Request)
}

// harness is an emulator, a gateway in front of it, and developer keys.
type harness struct {
	// gwServe is the gateway served by httpsrv.New, as `headroom serve`
	// serves it (HTTP/1.1 and h2c); gwURL by httptest (HTTP/1.1).
	gwServe   string
	t         testing.TB
	emu       *emulator.Server
	emuURL    string
	throttle  atomic.Int64 // 429s the emulator answered
	gw        *Gateway
	gwURL     string
	gwTLS     string
	tlsClient *http.Client
	up        *Upstream
	reg       *prometheus.Registry
	secret    map[string]string
	store     *memstore.Store
	registry  *keys.Registry
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	if o.buckets == nil {
		o.buckets = testBuckets(1_000_000, 100_000_000)
	}
	if o.keys == nil {
		o.keys = []keys.Key{{Name: "alice", Weight: 1}}
	}
	if o.name == "" {
		o.name = "emu"
	}
	h := &harness{t: t, secret: map[string]string{}}
	logger := slog.New(slog.DiscardHandler)

	ec := config.DefaultEmulator()
	ec.Regions = []config.EmulatorRegion{{Name: region, Buckets: o.buckets}}
	if o.service == upstream.ServiceMantle {
		// The emulator's runtime buckets; the gateway mirrors Mantle's.
		ec.Regions[0].Buckets = testBuckets(1_000_000, 100_000_000)
	}
	ec.DefaultRegion = region
	ec.Generation.OutputTokens = config.Distribution{Distribution: config.DistFixed, Mean: 20, Min: 1, Max: 8000}
	if o.emu != nil {
		o.emu(&ec)
	}
	emu, err := emulator.New(ec, logger, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	h.emu = emu
	var behind http.Handler = emu
	if o.upstream != nil {
		behind = o.upstream
	}
	es := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.tap != nil {
			o.tap(r)
		}
		behind.ServeHTTP(&statusSpy{ResponseWriter: w, on429: func() { h.throttle.Add(1) }}, r)
	}))
	t.Cleanup(es.Close)
	h.emuURL = es.URL

	client, err := upstream.New(context.Background(), upstream.Options{Name: o.name, Region: region, Service: o.service,
		Endpoint: es.URL + o.endpointPath, Auth: upstream.AuthNone})
	if err != nil {
		t.Fatal(err)
	}
	h.up, err = NewUpstream(o.name, client, o.buckets, config.DefaultWindows(), admission.Options{Budgets: o.budgets}, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	h.store = memstore.New()
	var aks []admission.Key
	for _, k := range o.keys {
		s := keys.NewSecret()
		k.Hash = keys.Hash(s)
		k.CreatedAt = time.Now()
		if err := h.store.Create(context.Background(), k); err != nil {
			t.Fatal(err)
		}
		h.secret[k.Name] = s
		aks = append(aks, AdmissionKey(k))
	}
	h.up.Admission.SetKeys(aks)
	registry := keys.NewRegistry(h.store, logger)
	h.registry = registry
	if err := registry.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}

	h.reg = prometheus.NewRegistry()
	profile, burndown, _ := config.Accounting{}.ProfileAndBurndown()
	var output *admission.OutputPolicy
	if o.output != nil {
		output = admission.NewOutputPolicy(*o.output)
	}
	h.gw, err = New(Options{
		Output: output,
		Logger: cmp.Or(o.log, logger), Metrics: metrics.New(h.reg), Gatherer: h.reg, Keys: registry,
		Upstreams: []*Upstream{h.up}, Route: func(model, _ string) []string {
			if strings.Contains(model, "claude") {
				return []string{o.name}
			}
			return nil
		},
		Caps:    config.DefaultServe().Policy.Caps,
		Profile: profile, Burndown: burndown, MaxWait: o.maxWait, MaxBody: o.maxBody, SettleDelay: o.settleDelay,
		OpsToken: o.opsToken, Dashboard: o.dashboard, BodyReadTimeout: o.bodyRead, MaxBodyMemory: o.bodyMem, Shadow: o.shadow,
	})
	if err != nil {
		t.Fatal(err)
	}
	gs := httptest.NewServer(h.gw)
	t.Cleanup(gs.Close)
	h.gwURL = gs.URL
	// The gateway as `headroom serve` runs it: HTTP/1.1 and h2c.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := httpsrv.New(h.gw, logger)
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	h.gwServe = "http://" + ln.Addr().String()
	// The SDKs send a bearer token only over HTTPS.
	ts := httptest.NewTLSServer(h.gw)
	t.Cleanup(ts.Close)
	h.gwTLS, h.tlsClient = ts.URL, ts.Client()
	return h
}

type statusSpy struct {
	http.ResponseWriter
	on429 func()
}

func (s *statusSpy) WriteHeader(code int) {
	if code == http.StatusTooManyRequests {
		s.on429()
	}
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets a fake upstream hijack the connection (reset faults).
func (s *statusSpy) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusSpy) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// post sends a runtime call to base (the gateway or the emulator) with key
// as a bearer token.
func (h *harness) post(base, key, path, body string, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// ledger returns the mirrored buckets now.
func (h *harness) ledger() []quota.BucketState { return h.up.Ledger().Snapshot(time.Now()) }

// reserved is the total still reserved in the gateway's ledger.
func (h *harness) reserved() int64 {
	var n int64
	for _, b := range h.ledger() {
		n += b.Reserved
	}
	return n
}

// emuState reads the emulator's /_emulator/state.
func (h *harness) emuState() emulator.State {
	h.t.Helper()
	resp, err := http.Get(h.emuURL + emulator.PathState)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st emulator.State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

// waitFor polls cond (for effects of other goroutines, such as a handler
// finishing after its client left) for up to two seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
