package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/semaphore"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/forecast"
	"github.com/headroomhq/headroom/internal/metrics"
)

// Defaults for Options left zero.
const (
	DefaultMaxBody = 20 << 20
	DefaultMaxWait = 60 * time.Second
	// DefaultSettleDelay: long enough for the upstream to run its own
	// settlement after the last byte, short against a model call.
	DefaultSettleDelay = 200 * time.Millisecond
	// DefaultBodyReadTimeout bounds how long a client may take to send its
	// request body (20 MB at 1 MB/s fits in 20 s).
	DefaultBodyReadTimeout = 60 * time.Second
)

// Headers Headroom adds to or reads from requests and responses.
const (
	// HeaderMaxTokens says what the policy did to max_tokens and why,
	// "128000->12288 (learned p99)", "32000->4096 (fixed)", with the thinking
	// budget when it changed, "32000->4096, thinking 31999->4095 (fixed)";
	// the reasons are in admission.OutputPolicy.
	HeaderMaxTokens = "X-Headroom-Max-Tokens"
	// HeaderSession is Claude Code's session id, which the output policy
	// keys its memory of recovery turns by.
	HeaderSession = "X-Claude-Code-Session-Id"
	// HeaderThrottle says who throttled a 429: "gateway" or "upstream".
	HeaderThrottle = "X-Headroom-Throttle"
	// HeaderMaxWait lets a client ask to wait less than the queue's maximum (seconds).
	HeaderMaxWait = "X-Headroom-Max-Wait"
	// HeaderQueued is the time a request waited for quota, in milliseconds.
	HeaderQueued = "X-Headroom-Queued-Ms"
	// HeaderShouldRetry "false" makes Claude Code give up at once (daily budget spent).
	HeaderShouldRetry = "X-Should-Retry"
)

// Options are the parts a Gateway is built from.
type Options struct {
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// Gatherer serves /metrics; nil serves an empty page.
	Gatherer prometheus.Gatherer
	Keys     Authenticator
	// Upstreams in configuration order; Route names them.
	Upstreams []*Upstream
	// Route returns the upstream names that may serve a model (its
	// foundation ID, bedrock.Model.Base) for a key, in order of preference;
	// nil when none does.
	Route func(model, key string) []string
	// Routing returns how a route spreads its requests (weights, cache
	// affinity); nil: preference order with affinity (config.Serve.RoutingFor).
	Routing func(model, key string) RouteOptions
	// Failover tunes the circuit breaker that takes failing upstreams out
	// of their routes (zero: defaults).
	Failover FailoverOptions
	// Caps returns the max_tokens and thinking-budget caps for a model (its
	// foundation ID); config.Policy.Caps. A key's own max output replaces
	// the first.
	Caps func(model string) (maxTokens, thinkingBudget int)
	// Output is the max_tokens policy (config.Policy; `headroom serve`
	// builds the learned one). nil: the fixed policy of Caps.
	Output *admission.OutputPolicy
	// Profile and Burndown turn a request into quota tokens.
	Profile  bedrock.Profile
	Burndown bedrock.Burndown
	// MaxWait is the longest a request queues for quota (DefaultMaxWait).
	MaxWait time.Duration
	// MaxBody is the largest request body accepted (DefaultMaxBody).
	MaxBody int64
	// SettleDelay holds a settled request's refund this long before the
	// ledger gives it to others (DefaultSettleDelay; negative: none). The
	// upstream settles only after its last byte, so an immediate refund can
	// admit a request the upstream would still throttle.
	SettleDelay time.Duration
	// BodyReadTimeout bounds the reading of a request body
	// (DefaultBodyReadTimeout), so that a client that stalls mid-body does
	// not hold a connection and its buffer for ever.
	BodyReadTimeout time.Duration
	// MaxBodyMemory bounds the request-body bytes held at once
	// (DefaultMaxBodyMemory); a body that would pass it is refused with a
	// 429 (body.go).
	MaxBodyMemory int64
	// OpsToken, when set, is required as "Authorization: Bearer TOKEN" by
	// GET /v1/status and /metrics (config.Operations); /healthz stays open.
	OpsToken string
	// Options returns the X-Amzn-Bedrock-* request headers (beyond Accept
	// and Service-Tier) and the service tiers a model's requests may send
	// for a key (config.Serve.OptionsFor); nil lets every option through.
	Options func(model, key string) (headers, tiers []string)
	// OpsClosed refuses /v1/status and /metrics when OpsToken is empty:
	// serve sets it when it listens on an address other than loopback.
	OpsClosed bool
	// Dashboard, when set, serves the page at GET / and its files under
	// /dashboard/ (open: they hold no data), and its data at
	// /v1/dashboard, guarded like /v1/status.
	Dashboard http.Handler
	// Shadow forwards every request untouched and records what enforce
	// mode would have done (shadow.go; config policy.enforcement: shadow).
	Shadow bool
	// UsageShare pools the usage counts of replicas on Redis, so that the
	// top consumers and forecasts are the whole account's (nil: this
	// process's own; forecast.go, ShareUsage).
	UsageShare UsageShare
}

// Gateway is the http.Handler for `headroom serve`.
type Gateway struct {
	log         *slog.Logger
	m           *metrics.Metrics
	metricsH    http.Handler
	opsToken    []byte
	opsClosed   bool // Options.OpsClosed
	dashboard   http.Handler
	options     func(model, key string) (headers, tiers []string)
	keys        Authenticator
	upstreams   map[string]*Upstream
	ordered     []*Upstream
	route       func(model, key string) []string
	routing     func(model, key string) RouteOptions
	breakerOpts FailoverOptions
	wrr         wrr
	sessions    sessions
	caps        func(model string) (maxTokens, thinkingBudget int)
	output      *admission.OutputPolicy
	profile     bedrock.Profile
	burndown    bedrock.Burndown
	maxWait     time.Duration
	maxBody     int64
	bodyRead    time.Duration // Options.BodyReadTimeout
	// bodyMem holds the bytes of request bodies in memory, at most
	// maxBodyMem (Options.MaxBodyMemory).
	bodyMem    *semaphore.Weighted
	maxBodyMem int64
	// settleDelay holds refunds back; see Options.SettleDelay.
	settleDelay time.Duration
	// now is the wall clock: admission.Controller.Admit reads it too, and
	// the two must agree.
	now       func() time.Time
	estimator *estimator
	ids       idSource
	// usage counts settled tokens by key and bucket, for the top
	// consumers and the forecasts (forecast.go).
	usage *forecast.Tracker
	// pool is Options.UsageShare; pooled the last view of every
	// replica's counts (nil until ShareUsage built one).
	pool   UsageShare
	pooled atomic.Pointer[pooledUsage]
	// shadow is Options.Shadow; record is what it judged.
	shadow bool
	record shadowRecord
}

// New checks o and builds a Gateway.
func New(o Options) (*Gateway, error) {
	if o.Logger == nil || o.Metrics == nil || o.Keys == nil || o.Route == nil {
		return nil, fmt.Errorf("gateway: Logger, Metrics, Keys and Route are required")
	}
	if len(o.Upstreams) == 0 {
		return nil, fmt.Errorf("gateway: at least one upstream is required")
	}
	g := &Gateway{
		log: o.Logger, m: o.Metrics, keys: o.Keys, route: o.Route, routing: o.Routing, breakerOpts: o.Failover.withDefaults(), caps: o.Caps,
		profile: o.Profile, burndown: o.Burndown, maxWait: o.MaxWait, maxBody: o.MaxBody, now: time.Now,
		upstreams: map[string]*Upstream{}, ordered: o.Upstreams, estimator: newEstimator(),
	}
	if o.OpsToken != "" {
		g.opsToken = []byte(o.OpsToken)
	}
	g.opsClosed, g.options, g.dashboard = o.OpsClosed, o.Options, o.Dashboard
	g.shadow, g.record.since = o.Shadow, g.now()
	if g.maxWait <= 0 {
		g.maxWait = DefaultMaxWait
	}
	switch {
	case o.SettleDelay == 0:
		g.settleDelay = DefaultSettleDelay
	case o.SettleDelay > 0:
		g.settleDelay = o.SettleDelay
	}
	if g.maxBody <= 0 {
		g.maxBody = DefaultMaxBody
	}
	if g.bodyRead = o.BodyReadTimeout; g.bodyRead <= 0 {
		g.bodyRead = DefaultBodyReadTimeout
	}
	if g.maxBodyMem = o.MaxBodyMemory; g.maxBodyMem <= 0 {
		g.maxBodyMem = DefaultMaxBodyMemory
	}
	g.bodyMem = semaphore.NewWeighted(g.maxBodyMem)
	if g.caps == nil {
		g.caps = func(string) (int, int) { return 0, 0 }
	}
	if g.output = o.Output; g.output == nil {
		g.output = admission.NewOutputPolicy(admission.OutputSettings{Mode: admission.ModeFixed, Caps: g.caps})
	}
	if len(g.burndown) == 0 {
		g.burndown = bedrock.DefaultBurndown()
	}
	gath := o.Gatherer
	if gath == nil {
		gath = prometheus.NewRegistry()
	}
	g.metricsH = promhttp.HandlerFor(gath, promhttp.HandlerOpts{})
	for _, u := range o.Upstreams {
		if err := u.check(); err != nil {
			return nil, err
		}
		if g.upstreams[u.Name] != nil {
			return nil, fmt.Errorf("gateway: upstream %q is listed twice", u.Name)
		}
		g.upstreams[u.Name] = u
		g.m.UpstreamOut.WithLabelValues(u.Name).Set(0)
	}
	g.usage = newTracker(o.Upstreams, g.now())
	if g.pool = o.UsageShare; g.pool != nil {
		g.usage.Share()
	}
	g.ids.init()
	return g, nil
}

// ServeHTTP routes a request. Every response, error or not, carries
// x-amzn-RequestId: the upstream's when the answer came from upstream,
// else the gateway's own.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := g.ids.next()
	w.Header().Set(bedrock.HeaderRequestID, rid)
	switch {
	case r.URL.Path == "/healthz":
		unreadBody(w, r, false)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
		return
	case r.URL.Path == DoctorPath:
		unreadBody(w, r, false)
		if err := g.serveDoctor(w, r); err != nil {
			g.log.Info("doctor endpoint refused", "request_id", rid, "error", err.Error())
			bedrock.WriteError(w, err)
		}
		return
	case r.URL.Path == "/metrics" || r.URL.Path == "/v1/status" || r.URL.Path == "/v1/dashboard" && g.dashboard != nil:
		unreadBody(w, r, false)
		if err := g.checkOpsToken(r); err != nil {
			g.log.Info("operations endpoint refused", "request_id", rid, "path", r.URL.Path)
			bedrock.WriteError(w, err)
			return
		}
		switch r.URL.Path {
		case "/metrics":
			g.metricsH.ServeHTTP(w, r)
		case "/v1/status":
			g.serveStatus(w, r)
		default:
			g.dashboard.ServeHTTP(w, r)
		}
		return
	case g.dashboard != nil && (r.URL.Path == "/" || r.URL.Path == "/index.html" || strings.HasPrefix(r.URL.Path, "/dashboard/")):
		unreadBody(w, r, false)
		g.dashboard.ServeHTTP(w, r)
		return
	}
	rw := &responseWriter{ResponseWriter: w}
	c := &call{rid: rid, start: g.now(), op: bedrock.Operation(0), tier: bedrock.TierLabel(r.Header.Get(bedrock.HeaderServiceTier)), door: bedrockDoor{}}
	g.guardBody(r, c)
	defer g.finish(rw, r, c)
	if rawModel, op, ok := bedrock.ParsePath(r.URL.EscapedPath()); ok {
		c.op = op
		if r.Method != http.MethodPost {
			c.err = bedrock.Errorf(bedrock.ValidationException, "%s requires POST", op)
			return
		}
		c.err = g.handle(rw, r, c.door, rawModel, c)
		return
	}
	if messagesPath(r.URL.Path) {
		c.door = messagesDoor{}
		op, ok := bedrock.ParseMessagesPath(r.URL.Path)
		switch {
		case !ok:
			c.err = bedrock.Errorf(bedrock.ResourceNotFoundException, "Headroom serves POST /v1/messages and /v1/messages/count_tokens here, not %s %s", r.Method, r.URL.Path)
		case r.Method != http.MethodPost:
			c.op = op
			c.err = &anthropicStatus{bedrock.Errorf(bedrock.ValidationException, "%s %s: use POST", r.Method, r.URL.Path), http.StatusMethodNotAllowed}
		default:
			c.op = op
			c.err = g.handle(rw, r, c.door, "", c)
		}
		return
	}
	if r.URL.Path == "/inference-profiles" || len(r.URL.Path) > len("/inference-profiles/") && r.URL.Path[:len("/inference-profiles/")] == "/inference-profiles/" {
		c.err = g.control(rw, r, c)
		return
	}
	c.err = bedrock.Errorf(bedrock.ResourceNotFoundException, "Unknown operation %s %s", r.Method, r.URL.Path)
}

// messagesPath reports whether a path belongs to the Anthropic API's front
// door (/v1/... and /anthropic/...), whose clients read Anthropic errors.
func messagesPath(p string) bool {
	return strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/anthropic/")
}

// finish renders the request's error if nothing was written yet, counts it
// and logs one line. A panic in a handler is logged and, if the client has
// received nothing, answered with an InternalServerException; the ticket's
// own deferred guard has already ended its reservation.
func (g *Gateway) finish(rw *responseWriter, r *http.Request, c *call) {
	if p := recover(); p != nil {
		if p == http.ErrAbortHandler {
			panic(p)
		}
		g.log.Error("handler panic", "request_id", c.rid, "panic", fmt.Sprint(p))
		c.err = fmt.Errorf("panic: %v", p)
		c.outcome = metrics.OutcomeInternal
	}
	defer c.body.release() // after the answer: the buffer is in use until then
	unreadBody(rw, r, c.body.eof)
	if c.outcome == "" && r.Context().Err() != nil {
		c.outcome = metrics.OutcomeCanceled // the client left; nobody reads an answer
	}
	if c.err != nil && !rw.wrote {
		be := bedrock.AsError(c.err)
		c.door.writeError(rw, c.err)
		if c.outcome == "" {
			c.outcome = outcomeOf(be)
		}
	}
	if c.outcome == "" {
		c.outcome = metrics.OutcomeOK
		if rw.status >= 400 {
			c.outcome = metrics.OutcomeUpstreamError
		}
	}
	g.m.Requests.WithLabelValues(c.op.String(), c.outcome).Inc()
	if c.outcome == metrics.OutcomeThrottledGateway || c.outcome == metrics.OutcomeThrottledUp {
		g.countThrottle(c)
	}
	g.m.ServiceTiers.WithLabelValues(c.op.String(), c.tier).Inc()
	g.logRequest(r, rw, c)
	if c.abort {
		// Cut the client's connection, as the upstream cut ours, so that a
		// stream broken at a frame boundary does not look complete.
		panic(http.ErrAbortHandler)
	}
}

// countThrottle counts a 429 the client received by source and kind.
func (g *Gateway) countThrottle(c *call) {
	source, kind := metrics.SourceGateway, c.throttle
	if c.outcome == metrics.OutcomeThrottledUp {
		source = metrics.SourceUpstream
	}
	if kind == "" {
		kind = metrics.KindOther
	}
	g.m.Throttles.WithLabelValues(source, kind).Inc()
}

func outcomeOf(e *bedrock.Error) string {
	switch e.Name {
	case bedrock.ThrottlingException:
		if e.Header.Get(HeaderThrottle) == "upstream" {
			return metrics.OutcomeThrottledUp
		}
		return metrics.OutcomeThrottledGateway
	case bedrock.InternalServerException:
		return metrics.OutcomeInternal
	case bedrock.ServiceUnavailableException, bedrock.ModelTimeoutException:
		return metrics.OutcomeUpstreamError
	}
	return metrics.OutcomeClientError
}

func (g *Gateway) logRequest(r *http.Request, rw *responseWriter, c *call) {
	level := slog.LevelInfo
	if c.outcome == metrics.OutcomeInternal {
		level = slog.LevelError
	}
	if !g.log.Enabled(r.Context(), level) {
		return
	}
	var buf [23]slog.Attr // on the stack: the line costs no allocation of its own
	attrs := append(buf[:0],
		slog.String("request_id", c.rid),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("op", c.op.String()),
		slog.Int("status", rw.status),
		slog.String("outcome", c.outcome),
		slog.Float64("duration_ms", ms(g.now().Sub(c.start))),
	)
	if c.key != "" {
		attrs = append(attrs, slog.String("key", c.key))
	}
	if c.model != "" {
		attrs = append(attrs, slog.String("model", c.model))
	}
	if c.upstream != "" {
		attrs = append(attrs, slog.String("upstream", c.upstream), slog.String("upstream_request_id", c.upstreamRID))
	}
	if c.route != "" {
		attrs = append(attrs, slog.String("route", c.route))
	}
	if c.upstreamModel != "" {
		attrs = append(attrs, slog.String("upstream_model", c.upstreamModel))
	}
	if c.reserved > 0 || c.settled > 0 {
		attrs = append(attrs, slog.Int64("reserved", c.reserved), slog.Int64("settled", c.settled),
			slog.Float64("queued_ms", ms(c.queued)))
	}
	if c.clamp != "" {
		attrs = append(attrs, slog.String("max_tokens", c.clamp))
	}
	if c.shadow != nil {
		attrs = append(attrs, slog.String("shadow", c.shadow.String()))
	}
	if c.tier != bedrock.TierNone {
		attrs = append(attrs, slog.String("service_tier", c.tier))
	}
	if used := rw.Header().Get(bedrock.HeaderServiceTier); used != "" {
		attrs = append(attrs, slog.String("service_tier_used", bedrock.TierLabel(used)))
	}
	if c.lastToolUseID != "" {
		attrs = append(attrs, slog.String("last_tool_use_id", c.lastToolUseID))
	}
	if c.attempts > 1 {
		attrs = append(attrs, slog.Int("attempts", c.attempts))
	}
	if c.err != nil {
		attrs = append(attrs, slog.String("error", c.err.Error()))
	}
	// The record is built here rather than by LogAttrs, which would also
	// capture the caller's program counter for a source the handler does
	// not print.
	rec := slog.NewRecord(g.now(), level, "request", 0)
	rec.AddAttrs(attrs...)
	_ = g.log.Handler().Handle(r.Context(), rec)
}

// call is what one request accumulates for its log line and metrics.
type call struct {
	rid, key, model, upstream, upstreamRID string
	// route is why upstream served it (Reason*); upstreamModel the model ID
	// it was sent with, when the route rewrote the client's (model).
	route, upstreamModel string
	op                   bedrock.Operation
	door                 door
	stream               bool
	lastToolUseID        string // result.lastToolUseID
	start                time.Time
	queued               time.Duration
	reserved, settled    int64
	clamp                string
	// throttle is the kind of the 429 the client gets, if it gets one
	// (metrics.Throttles).
	throttle string
	// tier is the bounded label of the service tier the client asked for
	// (bedrock.TierLabel of X-Amzn-Bedrock-Service-Tier).
	tier     string
	attempts int
	outcome  string
	err      error
	abort    bool // end by aborting the connection
	body     bodyGuard
	shadow   *shadowCall // what enforce mode would have done (shadow mode only)
}

// responseWriter remembers whether anything reached the client (after which
// no retry and no error rendering is possible) and the status sent.
type responseWriter struct {
	http.ResponseWriter
	wrote  bool
	status int
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote, w.status = true, code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.wrote, w.status = true, http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// idSource makes request IDs shaped like Bedrock's UUIDs: a random
// per-process prefix and a counter, unique without a syscall per request.
type idSource struct {
	prefix string
	n      atomic.Uint64
}

func (s *idSource) init() {
	var b [10]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	s.prefix = h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-"
}

func (s *idSource) next() string {
	n := s.n.Add(1)
	var buf [12]byte
	v := strconv.AppendUint(buf[:0], n&(1<<48-1), 16)
	const zeros = "000000000000"
	return s.prefix + zeros[:12-len(v)] + string(v)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
