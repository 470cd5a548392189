package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/dashboard"
	"github.com/headroomhq/headroom/internal/gateway"
	"github.com/headroomhq/headroom/internal/httpsrv"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/metrics"
	"github.com/headroomhq/headroom/internal/upstream"
)

const serveUsage = `Usage: headroom serve --config FILE [flags]
       headroom serve --demo [--addr HOST:PORT] [--data-dir DIR]

Runs the gateway: a Bedrock Runtime endpoint for Claude Code and the AWS
SDKs that mirrors the account's quota, shares it fairly between developer
keys, queues what does not fit instead of answering 429, and never sends
Bedrock a request it would throttle.

--demo needs no AWS account and no configuration: it runs an in-process
emulator as the upstream, keeps its data in a temporary directory (removed
at exit; with --data-dir, in DIR, kept, so its keys survive a restart), and
creates three developer keys (alice, bob, carol), printing their Claude Code
settings.

Clients authenticate with a Headroom key ('headroom keys create NAME'):
  Claude Code:  ANTHROPIC_BEDROCK_BASE_URL=<gateway URL>, AWS_BEARER_TOKEN_BEDROCK=<key>
  AWS SDKs:     the gateway URL as endpoint, and either the key as bearer token
                (AWS_BEARER_TOKEN_BEDROCK; the SDKs send one only over https)
                or the key as AWS_ACCESS_KEY_ID with any secret access key (SigV4)

Endpoints: the five Bedrock Runtime operations, GET /inference-profiles,
GET /healthz, GET /metrics (Prometheus), GET /v1/status (JSON), GET /v1/doctor
(for 'headroom doctor --probe'; a developer key or the operations token).

The day's usage is saved to the data directory within 100 ms of changing, so
a restart, even kill -9, keeps it. One server holds a data directory: a
second on the same one refuses to start. Several replicas share keys, usage
and the quota ledger through a Redis: --redis URL (or redis.url in the file)
on each.

Flags:
`

// serveFlags are the command line of `headroom serve`.
type serveFlags struct {
	config, addr, dataDir, redis, tlsCert, tlsKey string
	demo                                          bool
	level                                         slog.Level
}

func parseServeFlags(e env) (serveFlags, int, bool) {
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.StringVar(&f.config, "config", "", "serve configuration `FILE` (see examples/)")
	fs.StringVar(&f.addr, "addr", "", "`HOST:PORT` to listen on (overrides the file's listen; default 127.0.0.1:8080)")
	fs.StringVar(&f.dataDir, "data-dir", "", "data `DIR` for keys and the day's usage (overrides the file's data_dir)")
	fs.StringVar(&f.redis, "redis", "", "share keys, the day's usage and the ledger with other replicas in the Redis at `URL` (redis://HOST:PORT[/DB]; overrides the file's redis.url)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this certificate `FILE` (PEM; with --tls-key)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "private key `FILE` for --tls-cert (PEM)")
	fs.BoolVar(&f.demo, "demo", false, "self-contained trial: in-process emulator upstream, temporary data, three demo keys")
	fs.TextVar(&f.level, "log-level", slog.LevelInfo, "log `LEVEL`: debug, info (one line per request), warn, error")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serveUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(e.args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, 0, false
		}
		return f, 2, false
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(e.stderr, "headroom serve: unexpected argument %q\n", fs.Arg(0))
		return f, 2, false
	case f.demo && f.config != "":
		fmt.Fprintln(e.stderr, "headroom serve: --demo and --config exclude each other")
		return f, 2, false
	case f.demo && f.redis != "":
		fmt.Fprintln(e.stderr, "headroom serve: --demo keeps its data in SQLite; --redis goes with --config")
		return f, 2, false
	case !f.demo && f.config == "":
		fmt.Fprintln(e.stderr, "headroom serve: --config FILE is required (or try --demo)")
		fs.Usage()
		return f, 2, false
	case (f.tlsCert == "") != (f.tlsKey == ""):
		fmt.Fprintln(e.stderr, "headroom serve: --tls-cert and --tls-key go together")
		return f, 2, false
	}
	return f, 0, true
}

func runServe(ctx context.Context, e env) int {
	f, code, ok := parseServeFlags(e)
	if !ok {
		return code
	}
	lw := newLogWriter(e.stderr)
	defer lw.Close()
	logger := slog.New(slog.NewJSONHandler(lw, &slog.HandlerOptions{Level: f.level}))
	defer tuneServeGC(os.Getenv)()
	fail := func(err error) int {
		logger.Error("headroom serve failed", "error", err.Error())
		lw.flush()
		fmt.Fprintf(e.stderr, "headroom serve: %v\n", err)
		return 1
	}

	var cfg config.Serve
	var demo *demoSetup
	if f.demo {
		var err error
		if demo, err = startDemo(ctx, logger, f.dataDir); err != nil {
			return fail(err)
		}
		defer demo.close()
		lw.flush() // the demo warning goes out first, whatever happens next
		cfg = demo.cfg
		f.dataDir = demo.dataDir
	} else {
		var err error
		if cfg, err = config.LoadServe(f.config); err != nil {
			return fail(fmt.Errorf("%s: %w", f.config, err))
		}
	}
	if f.addr != "" {
		cfg.Listen = f.addr
	}
	if f.tlsCert != "" {
		cfg.TLS = config.TLS{CertFile: f.tlsCert, KeyFile: f.tlsKey}
	}
	if err := cfg.Validate(); err != nil {
		return fail(err)
	}
	redisURL, dir, err := chooseStore(f.redis, f.dataDir, &cfg)
	if err != nil {
		return fail(err)
	}
	st, where, err := openState(ctx, redisURL, dir, true, logger)
	if err != nil {
		return fail(err)
	}
	defer st.Close()

	srv, err := buildServer(ctx, cfg, st, logger)
	if err != nil {
		return fail(err)
	}
	ln, err := listen(cfg.Listen)
	if err != nil {
		return fail(err)
	}
	url := gatewayURL(ln.Addr().String(), cfg.TLS.Enabled())
	logger.Info("headroom serve listening", "url", url, "data_dir", dir, "redis", where.redisURL, "upstreams", len(cfg.Upstreams), "enforcement", cfg.Policy.Enforcement)
	if cfg.Policy.Shadow() {
		logger.Warn("shadow mode (policy.enforcement: shadow): every request is forwarded as sent, with no clamp, queue or refusal; what enforce mode would have done is in the logs (shadow), /metrics (headroom_shadow_*) and /v1/status (shadow)")
	}
	lw.flush()
	if demo != nil {
		// A stop signal while the keys are made is a stop, not a failure:
		// run then shuts down at once, and the demo's data is removed.
		if err := demo.createKeys(ctx, st, srv.registry, e.stdout, url); err != nil && ctx.Err() == nil {
			return fail(err)
		}
	} else {
		fmt.Fprintf(e.stdout, "headroom serve: listening on %s (%s)\n", url, where)
	}
	return srv.run(ctx, newConnLimit(ln, cfg.Limits.MaxConnections, logger), cfg.TLS)
}

// credentialsCheckTimeout bounds the start-up credentials check of one
// upstream (an instance-metadata lookup on a host without a role can take
// seconds).
const credentialsCheckTimeout = 10 * time.Second

// checkCredentials tells the operator at start-up, with what to do, about
// every upstream whose AWS credentials cannot be had now. It only warns:
// credentials may well appear later (`aws sso login`), and until then
// requests to that upstream fail at once with the same advice.
func (s *server) checkCredentials(ctx context.Context) {
	for _, u := range s.upstreams {
		cctx, cancel := context.WithTimeout(ctx, credentialsCheckTimeout)
		err := u.Client.CheckCredentials(cctx)
		cancel()
		var ce *upstream.CredentialsError
		if errors.As(err, &ce) && ctx.Err() == nil {
			s.log.Warn("no AWS credentials for upstream: its requests will fail until this is fixed",
				"upstream", ce.Upstream, "fix", ce.Hint, "error", ce.Err.Error())
		}
	}
}

// server is everything `headroom serve` runs, wired together.
type server struct {
	log       *slog.Logger
	gw        *gateway.Gateway
	dash      *dashboard.Dashboard
	registry  *keys.Registry
	upstreams []*gateway.Upstream
	usage     *usageSaver
	refresh   time.Duration
	shared    *sharedLedgers // nil without Redis
}

// buildServer wires configuration, store, upstreams, ledgers, admission,
// metrics and the gateway, and restores the day's usage.
func buildServer(ctx context.Context, cfg config.Serve, st stateStore, logger *slog.Logger) (*server, error) {
	profile, burndown, err := cfg.Accounting.ProfileAndBurndown()
	if err != nil {
		return nil, err
	}
	registry := keys.NewRegistry(st, logger)
	if err := registry.Refresh(ctx); err != nil {
		return nil, err
	}
	now := time.Now()
	pf := cfg.Fairness.ProtectedFraction
	if pf == 0 {
		pf = -1 // admission reads 0 as its default; the file's 0 means off
	}
	var ups []*gateway.Upstream
	budgets := admission.NewBudgets() // a key's budget and concurrency cap hold across upstreams
	for _, uc := range cfg.Upstreams {
		var apiKey string
		if uc.Auth.Mode == config.AuthAPIKey {
			if apiKey = os.Getenv(uc.Auth.APIKeyEnv); apiKey == "" {
				return nil, fmt.Errorf("upstream %q: environment variable %s (auth.api_key_env) is empty", uc.Name, uc.Auth.APIKeyEnv)
			}
		}
		client, err := upstream.New(ctx, upstream.Options{Name: uc.Name, Region: uc.Region, Service: upstream.Service(uc.Service), Endpoint: uc.Endpoint,
			Auth: upstream.AuthMode(uc.Auth.Mode), Profile: uc.Auth.Profile, APIKey: apiKey})
		if err != nil {
			return nil, err
		}
		u, err := gateway.NewUpstream(uc.Name, client, uc.Buckets, cfg.Windows,
			admission.Options{ProtectedFraction: pf, MaxInFlight: uc.MaxInFlight, DefaultMaxWait: cfg.Queue.MaxWait.Duration, Budgets: budgets}, now)
		if err != nil {
			return nil, err
		}
		u.Profiles, u.AllowUnmatched = uc.InferenceProfiles, uc.Unmatched == config.UnmatchedUnlimited
		u.ModelPrefix, u.ModelIDs = uc.ModelPrefix, uc.ModelIDs
		ups = append(ups, u)
	}
	shared, err := shareLedgers(st, cfg, ups, logger)
	if err != nil {
		return nil, err
	}
	saver := &usageSaver{store: st, upstreams: ups, log: logger}
	if shared != nil {
		// The shared ledger in Redis holds the day's usage of every bucket
		// and key for all replicas; a copy saved by each replica (the last
		// writer winning) would only be restored as this replica's own and
		// be published again, counted twice, should Redis restart empty.
		saver = &usageSaver{log: logger}
	}
	if err := saver.restore(ctx, now); err != nil {
		return nil, err
	}
	setKeys(ups, registry)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	metrics.RegisterBuckets(reg, func() []metrics.Bucket { return bucketMetrics(ups) })
	var gw *gateway.Gateway // set below; nothing scrapes before serving starts
	metrics.RegisterState(reg, func() metrics.State { return gw.StateMetrics() })
	if shared != nil {
		metrics.RegisterSharedLedgers(reg, shared.metrics)
	}
	var opsToken string
	if e := cfg.Operations.TokenEnv; e != "" {
		if opsToken = os.Getenv(e); opsToken == "" {
			return nil, fmt.Errorf("environment variable %s (operations.token_env) is empty", e)
		}
	}
	dash := dashboard.New(dashboard.Options{Status: func(now time.Time) gateway.Status { return gw.Status(now) }, Gatherer: reg, Logger: logger})
	gw, err = gateway.New(gateway.Options{
		Logger: logger, Metrics: m, Gatherer: reg, Keys: registry, Upstreams: ups,
		Route: cfg.RouteFor, Routing: routing(&cfg), Failover: gateway.FailoverOptions{TripAfter: cfg.Failover.TripAfter,
			OutFor: cfg.Failover.OutFor.Duration, MaxOutFor: cfg.Failover.MaxOutFor.Duration},
		Caps: cfg.Policy.Caps, Output: admission.NewOutputPolicy(outputSettings(cfg.Policy)),
		Profile: profile, Burndown: burndown,
		MaxWait: cfg.Queue.MaxWait.Duration, OpsToken: opsToken, MaxBodyMemory: int64(cfg.Limits.MaxBodyMemoryMB) << 20,
		OpsClosed: !loopbackListen(cfg.Listen), Options: cfg.OptionsFor, BodyReadTimeout: cfg.Limits.BodyReadTimeout.Duration,
		Dashboard:  dash,
		Shadow:     cfg.Policy.Shadow(),
		UsageShare: usageShare(st),
	})
	if err != nil {
		return nil, err
	}
	return &server{log: logger, gw: gw, dash: dash, registry: registry, upstreams: ups, usage: saver, refresh: cfg.KeysRefresh.Duration, shared: shared}, nil
}

// routing is how the config's routes spread their requests.
func routing(cfg *config.Serve) func(model, key string) gateway.RouteOptions {
	return func(model, key string) gateway.RouteOptions {
		w, aff := cfg.RoutingFor(model, key)
		return gateway.RouteOptions{Weights: w, Affinity: aff}
	}
}

// outputSettings is the admission output policy a serve file's policy
// section describes.
func outputSettings(p config.Policy) admission.OutputSettings {
	s := admission.OutputSettings{
		Mode: admission.ModeLearned, Caps: p.Caps,
		Percentile: p.Percentile, Floor: p.Floor, PriorWeight: p.PriorWeight,
		KeyMinSamples: p.KeyMinSamples, HalfLife: p.HalfLife.Duration,
		MaxModels: p.MaxModels, MaxKeys: p.MaxKeys, CensoredFactor: p.CensoredFactor,
		RoomFraction: p.RoomFraction, FairShare: p.FairShare,
		EscalateFactor: p.Escalation.Factor, CutTTL: p.Escalation.TTL.Duration,
		MaxCuts: p.Escalation.MaxCuts, MaxSessions: p.Escalation.MaxSessions,
	}
	if !p.Learned() {
		s.Mode = admission.ModeFixed
	}
	for _, pr := range p.Priors {
		s.Priors = append(s.Priors, admission.Prior{Match: pr.Match, Median: pr.Median, P99: pr.P99})
	}
	return s
}

// setKeys tells every controller which keys exist, for daily protection.
func setKeys(ups []*gateway.Upstream, r *keys.Registry) {
	var aks []admission.Key
	for _, k := range r.Active() {
		aks = append(aks, gateway.AdmissionKey(k))
	}
	for _, u := range ups {
		u.Admission.SetKeys(aks)
	}
}

func bucketMetrics(ups []*gateway.Upstream) []metrics.Bucket {
	now := time.Now()
	var out []metrics.Bucket
	for _, u := range ups {
		for _, b := range u.Ledger().Snapshot(now) {
			out = append(out, metrics.Bucket{Upstream: u.Name, Name: b.Name, Kind: b.KindName,
				Capacity: float64(b.Limit), Effective: float64(b.Effective), Used: float64(b.Used), Reserved: float64(b.Reserved)})
		}
	}
	return out
}

// shutdownGrace is how long in-flight requests (streams included) may run
// after a shutdown signal before their connections are closed.
const shutdownGrace = 30 * time.Second

// run serves until ctx ends, then drains in-flight requests, saves the
// day's usage one last time, and returns the exit code.
func (s *server) run(ctx context.Context, ln net.Listener, t config.TLS) int {
	hs := httpsrv.New(s.gw, s.log)
	if t.Enabled() {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			s.log.Error("load TLS certificate", "error", err.Error())
			return 1
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	bg, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.usage.run(bg, usageSaveEvery) })
	// Keys created or revoked by `headroom keys` in another process take
	// effect at the next refresh; the controllers learn them too.
	wg.Go(func() { s.registry.Run(bg, s.refresh, func() { setKeys(s.upstreams, s.registry) }) })
	wg.Go(func() { s.checkCredentials(bg) })
	wg.Go(func() { s.dash.Run(bg) })
	wg.Go(func() { s.shared.run(bg) })
	wg.Go(func() { s.gw.ShareUsage(bg, usageShareEvery) })

	errc := make(chan error, 1)
	go func() {
		if t.Enabled() {
			errc <- hs.ServeTLS(ln, "", "") // HTTP/2 and HTTP/1.1, as clients prefer (ALPN)
			return
		}
		errc <- hs.Serve(ln) // HTTP/1.1 and h2c with prior knowledge
	}()
	code := 0
	select {
	case err := <-errc:
		s.log.Error("server stopped", "error", err.Error())
		code = 1
	case <-ctx.Done():
		s.log.Info("shutting down: finishing requests in flight", "grace", shutdownGrace.String())
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		if err := hs.Shutdown(sctx); err != nil {
			_ = hs.Close()
		}
		cancel()
		<-errc
	}
	stop()
	wg.Wait()
	if err := s.usage.save(context.Background(), time.Now()); err != nil {
		s.log.Error("final save of the day's usage failed", "error", err.Error())
		code = 1
	}
	s.log.Info("stopped")
	return code
}

// loopbackListen reports whether listen (HOST:PORT) accepts connections
// from this host only: a loopback IP or "localhost".
func loopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
