package config

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Serve is the file `headroom serve --config FILE` reads. Every field has a
// default (DefaultServe) except Upstreams, so the smallest useful file names
// one upstream and its buckets.
type Serve struct {
	// Listen is the gateway's HOST:PORT. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// TLS serves HTTPS from certificate files when both are set; neither set
	// means plain HTTP.
	TLS TLS `yaml:"tls"`
	// DataDir holds the embedded store (keys and the day's usage). Empty
	// means the cli picks a per-user default; `--data-dir` overrides both.
	DataDir string `yaml:"data_dir"`
	// Redis, when its URL is set, keeps keys and the day's usage in a Redis
	// that several replicas share, instead of SQLite in DataDir. `serve
	// --redis URL` overrides it.
	Redis Redis `yaml:"redis"`
	// Accounting chooses the accounting profile (seed or aws) and burndown
	// table used to mirror every upstream's quota.
	Accounting Accounting `yaml:"accounting"`
	// Windows says how minute and day buckets refill. Default
	// DefaultWindows(); it must match the account (or the emulator's file).
	Windows Windows `yaml:"windows"`
	// Upstreams are the Bedrock endpoints requests are sent to. At least one.
	Upstreams []Upstream `yaml:"upstreams"`
	// Routes decide which upstreams may serve a request; the first route
	// that matches wins. Empty: every request goes to the first upstream
	// (LoadServe fills in that route).
	Routes []Route `yaml:"routes"`
	// Failover says when an upstream that keeps failing is taken out of
	// its routes, and for how long.
	Failover Failover `yaml:"failover"`
	// Policy caps max_tokens and the thinking budget before admission.
	Policy Policy `yaml:"policy"`
	// Fairness sets how a daily bucket is shared between keys.
	Fairness Fairness `yaml:"fairness"`
	// Queue sets how long a request may wait for capacity.
	Queue Queue `yaml:"queue"`
	// KeysRefresh is how often the gateway reloads developer keys from the
	// store, so that keys created or revoked by `headroom keys` in another
	// process take effect while it runs. Default 2s.
	KeysRefresh Duration `yaml:"keys_refresh"`
	// Operations protects the gateway's own endpoints.
	Operations Operations `yaml:"operations"`
	// Limits bound connections and request-body memory.
	Limits Limits `yaml:"limits"`
}

// envNameRE is what an environment variable name may be.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Operations protects GET /v1/status and /metrics, which show key names,
// usage and bucket state, never secrets. /healthz is always open.
type Operations struct {
	// TokenEnv names an environment variable holding a token that those
	// endpoints then require as "Authorization: Bearer TOKEN" (Prometheus:
	// `authorization: {credentials_file: ...}` in the scrape config). Empty:
	// both are open when Listen is a loopback address, refused otherwise.
	TokenEnv string `yaml:"token_env"`
}

// Redis is the Redis that replicas of the gateway share.
type Redis struct {
	// URL is redis://[user:password@]HOST:PORT[/DB], rediss:// for TLS, or
	// unix:///PATH for a socket. Empty: no Redis, the embedded SQLite store.
	URL string `yaml:"url"`
	// WhenDown is what a replica does while the ledger's Redis does not
	// answer: refuse (the default) answers new requests 503; local_share
	// admits them against 1/N of every bucket, each key's remaining budget
	// included, and publishes what it used when Redis answers again
	// (README, "Replicas on Redis").
	WhenDown string `yaml:"when_down"`
	// Replicas is the least N that local_share divides by: a replica
	// divides by the larger of it and the replicas it last saw alive in
	// Redis. 0: the replicas seen alone.
	Replicas int `yaml:"replicas"`
}

// What Redis.WhenDown may be.
const (
	WhenDownRefuse     = "refuse"
	WhenDownLocalShare = "local_share"
)

// LocalShare reports whether the replicas carry on, on a local share, while
// Redis is down.
func (r Redis) LocalShare() bool { return r.WhenDown == WhenDownLocalShare }

// Validate reports what is wrong with the URL in the configuration's terms
// (field is its name in the file or on the command line); it does not
// connect. The password, if any, never appears in the message.
func (r Redis) Validate(field string) error {
	if r.URL == "" {
		return nil
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return fmt.Errorf("%s: not a URL (want redis://HOST:PORT, rediss://HOST:PORT or unix:///PATH)", field)
	}
	switch {
	case u.Scheme == "":
		// Without a scheme a password is not recognised as one: say nothing of the URL.
		return fmt.Errorf("%s: the URL has no scheme (want redis://HOST:PORT, rediss://HOST:PORT or unix:///PATH)", field)
	case u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix":
		return fmt.Errorf("%s: scheme %q is not redis, rediss or unix (want redis://HOST:PORT)", field, u.Scheme)
	case u.Scheme == "unix" && u.Path == "":
		return fmt.Errorf("%s: %q names no socket path (unix:///PATH)", field, u.Redacted())
	case u.Scheme != "unix" && u.Hostname() == "":
		return fmt.Errorf("%s: %q names no host (redis://HOST:PORT)", field, u.Redacted())
	}
	if u.Scheme != "unix" {
		if db := strings.Trim(u.Path, "/"); db != "" {
			if n, err := strconv.Atoi(db); err != nil || n < 0 {
				return fmt.Errorf("%s: %q: the path must be a database number, like /0", field, u.Redacted())
			}
		}
	}
	return nil
}

// TLS names a certificate and its private key, PEM files. Both or neither.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether the gateway serves HTTPS.
func (t TLS) Enabled() bool { return t.CertFile != "" && t.KeyFile != "" }

// Upstream is one Bedrock Runtime endpoint: one account in one region, with
// that account's quota buckets mirrored by the gateway's ledger.
type Upstream struct {
	// Name identifies the upstream in routes, metrics, logs and /v1/status.
	Name string `yaml:"name"`
	// Region is the AWS region, used for signing and the default endpoint.
	// Required.
	Region string `yaml:"region"`
	// Account is the AWS account ID, informational (status, doctor). Optional.
	Account string `yaml:"account"`
	// Service is the Bedrock endpoint: bedrock-runtime (the default; it
	// serves InvokeModel, Converse and the Messages API) or bedrock-mantle
	// (the Messages API only, with quotas of its own).
	Service string `yaml:"service"`
	// Endpoint overrides the default https://bedrock-runtime.REGION.amazonaws.com
	// (https://bedrock-mantle.REGION.api.aws for bedrock-mantle), for
	// example to point at `headroom emulate`. An http(s) URL; optional.
	Endpoint string `yaml:"endpoint"`
	// Auth says how requests to this upstream are authenticated. The client's
	// own Authorization header is never forwarded.
	Auth UpstreamAuth `yaml:"auth"`
	// Buckets are the account's quotas for this region, mirrored by the
	// ledger. Empty means nothing is mirrored for this upstream.
	Buckets []Bucket `yaml:"buckets"`
	// MaxInFlight caps concurrent requests to this upstream; 0 means no cap.
	MaxInFlight int `yaml:"max_in_flight"`
	// InferenceProfiles maps application inference profiles (the full ARN
	// or the profile ID) to the model identifier they run, for example
	// us.anthropic.claude-sonnet-4-20250514-v1:0 for a profile copied from
	// that cross-region profile. A profile not listed is looked up once
	// through the control plane (GetInferenceProfile).
	InferenceProfiles map[string]string `yaml:"inference_profiles"`
	// Unmatched says what happens to a model that no bucket matches when
	// the upstream has buckets: refuse (default; the message names the
	// model) or unlimited (sent without mirroring any quota).
	Unmatched string `yaml:"unmatched"`
	// ModelPrefix rewrites the geography prefix of the model ID a request
	// goes to this upstream with: us, eu, apac, jp, au, ca, us-gov or
	// global (a cross-region inference profile there), or none (the
	// in-region foundation model). Empty keeps the client's ID. An ARN is
	// never rewritten by it.
	ModelPrefix string `yaml:"model_prefix"`
	// ModelIDs rewrites the model ID for this upstream: each entry maps a
	// substring of the foundation model ID (as routes' models match) to
	// the model ID or inference profile ARN to send instead; the first
	// matching entry (in sorted order of the substrings) wins over
	// ModelPrefix. The client's model ID stays in the logs.
	ModelIDs map[string]string `yaml:"model_ids"`
}

// ModelPrefixes are the values Upstream.ModelPrefix accepts besides "".
var ModelPrefixes = []string{"us", "eu", "apac", "jp", "au", "ca", "us-gov", "global", "none"}

// Failover tunes the circuit breaker that takes a failing upstream out of
// its routes: after TripAfter failures in a row (503, timeout, connection
// error, or a throttle the mirror did not foresee) it is out for OutFor,
// then one request probes it; each failed probe doubles the time out, up
// to MaxOutFor. A daily-quota throttle takes it out at once.
type Failover struct {
	// TripAfter is the failures in a row that take an upstream out. Default 3.
	TripAfter int `yaml:"trip_after"`
	// OutFor is how long it stays out before the first probe. Default 10s.
	OutFor Duration `yaml:"out_for"`
	// MaxOutFor bounds the doubling. Default 5m.
	MaxOutFor Duration `yaml:"max_out_for"`
}

// Unmatched policies.
const (
	UnmatchedRefuse    = "refuse"
	UnmatchedUnlimited = "unlimited"
)

// Upstream services (Upstream.Service).
const (
	ServiceRuntime = "bedrock-runtime"
	ServiceMantle  = "bedrock-mantle"
)

// Upstream authentication modes.
const (
	AuthDefault = "default" // the aws-sdk-go-v2 default credential chain (env, profiles incl. SSO, container/instance roles)
	AuthProfile = "profile" // a named shared-config profile (Profile)
	AuthAPIKey  = "api-key" // a Bedrock API key read from the env var APIKeyEnv, sent as Bearer
	AuthNone    = "none"    // no authentication (the emulator accepts it)
)

// UpstreamAuth chooses how the gateway authenticates to an upstream.
type UpstreamAuth struct {
	// Mode is default, profile, api-key or none. Default "default".
	Mode string `yaml:"mode"`
	// Profile is the shared-config profile name; required with mode profile.
	Profile string `yaml:"profile"`
	// APIKeyEnv names the environment variable holding a Bedrock API key;
	// required with mode api-key. The file never holds the key itself.
	APIKeyEnv string `yaml:"api_key_env"`
}

// Route sends the requests it matches to its upstreams, in order of
// preference: a request goes to the first whose mirrored quota admits it
// now, waits for the first that frees when none does, and fails over to
// the next before the first byte when one answers 429, 503, a timeout or
// a connection error.
type Route struct {
	// Models are substrings of the foundation model ID (bedrock.Model.Base);
	// empty matches any model.
	Models []string `yaml:"models"`
	// Keys are developer key names; empty matches any key.
	Keys []string `yaml:"keys"`
	// Upstreams are upstream names, most preferred first; at least one.
	Upstreams []string `yaml:"upstreams"`
	// Weights spread the route's requests over its upstreams in proportion
	// (upstream name: positive weight) instead of always preferring the
	// first: each request's first choice is drawn by weight (smooth
	// weighted round robin), the others follow in listed order. Upstreams
	// without an entry get no first choices. Empty: preference order.
	Weights map[string]float64 `yaml:"weights"`
	// Affinity is session (default) or none: with session, a request
	// carrying Claude Code's session header (X-Claude-Code-Session-Id)
	// prefers the upstream that served the session last, when it has
	// room, since another region has none of its prompt cache.
	Affinity string `yaml:"affinity"`
	// ForwardHeaders are the X-Amzn-Bedrock-* request options (besides
	// X-Amzn-Bedrock-Accept and -Service-Tier, always passed) that the
	// route's requests may send upstream with the gateway's credentials,
	// for example X-Amzn-Bedrock-GuardrailIdentifier,
	// X-Amzn-Bedrock-GuardrailVersion, X-Amzn-Bedrock-Trace. Any other is
	// refused with a message naming it.
	ForwardHeaders []string `yaml:"forward_headers"`
	// ServiceTiers are the service tiers (reserved, priority, standard,
	// flex) the route's requests may ask for; empty allows every tier.
	ServiceTiers []string `yaml:"service_tiers"`
}

// Matches reports whether a request for model (its foundation ID,
// bedrock.Model.Base) made with key keyName is served by the route.
func (r Route) Matches(model, keyName string) bool {
	if len(r.Keys) > 0 && !slices.Contains(r.Keys, keyName) {
		return false
	}
	if len(r.Models) == 0 {
		return true
	}
	for _, m := range r.Models {
		if strings.Contains(model, m) {
			return true
		}
	}
	return false
}

// RouteFor returns the upstream names of the first route that matches, or
// nil when none does (the gateway then answers that the model is not served).
func (s *Serve) RouteFor(model, keyName string) []string {
	for _, r := range s.Routes {
		if r.Matches(model, keyName) {
			return r.Upstreams
		}
	}
	return nil
}

// Affinity values (Route.Affinity).
const (
	AffinitySession = "session"
	AffinityNone    = "none"
)

// RoutingFor returns the weights and affinity of the first route matching
// model and key (Route.Weights, Route.Affinity).
func (s *Serve) RoutingFor(model, keyName string) (weights map[string]float64, affinity bool) {
	for _, r := range s.Routes {
		if r.Matches(model, keyName) {
			return r.Weights, r.Affinity != AffinityNone
		}
	}
	return nil, true
}

// OptionsFor returns the X-Amzn-Bedrock-* headers and service tiers the
// first route matching model and key allows (Route.ForwardHeaders,
// Route.ServiceTiers).
func (s *Serve) OptionsFor(model, keyName string) (headers, tiers []string) {
	for _, r := range s.Routes {
		if r.Matches(model, keyName) {
			return r.ForwardHeaders, r.ServiceTiers
		}
	}
	return nil, nil
}

// Policy decides the max_tokens each request goes upstream with: the lever
// that matters most, since a request reserves its max_tokens (× the burndown
// rate in the seed's profile) at admission. Mode "learned" (the default)
// caps at a learned percentile of the output lengths, gives more when the
// quota has room and grows the cap for the call after a cut; mode "fixed"
// is one hard cap (max_tokens_cap), which cuts long answers and large file
// edits (README, "The max_tokens policy").
type Policy struct {
	// Enforcement is "enforce" (default): the gateway clamps, queues and
	// refuses; or "shadow": it forwards every request untouched and only
	// records what enforce would have done (README, "Shadow mode").
	Enforcement string `yaml:"enforcement"`
	// Mode is "learned" (default) or "fixed".
	Mode string `yaml:"mode"`
	// MaxTokensCap is the fixed mode's largest max_tokens forwarded; a
	// missing max_tokens gets it. Default 4096, at least 1.
	MaxTokensCap int `yaml:"max_tokens_cap"`
	// ThinkingBudgetCap is the fixed mode's largest thinking.budget_tokens
	// forwarded. Default 1024, at least 1024 (Bedrock's minimum). The
	// learned mode only keeps a budget below max_tokens.
	ThinkingBudgetCap int `yaml:"thinking_budget_cap"`
	// Models override the fixed caps for models whose foundation ID
	// contains Match; the first match wins.
	Models []ModelPolicy `yaml:"models"`

	// Percentile of each model's (and key's) output lengths, thinking
	// included, used as the cap. Default 0.95; in (0, 1].
	Percentile float64 `yaml:"percentile"`
	// Floor is the smallest learned cap, also under contention. Default
	// 4096, at least 1.
	Floor int `yaml:"floor"`
	// Priors are the output-length distributions models start from (first
	// match wins; match "" is every model). Default: Opus 5 family median
	// 1,500 / p99 12,288; every other model median 800 / p99 8,192.
	Priors []Prior `yaml:"priors"`
	// PriorWeight is how many answers a prior counts as. Default 50.
	PriorWeight float64 `yaml:"prior_weight"`
	// KeyMinSamples is how many answers a key needs before its own
	// distribution replaces its model's. Default 100.
	KeyMinSamples float64 `yaml:"key_min_samples"`
	// HalfLife is how fast old answers fade. Default 24h; 0s: never.
	HalfLife Duration `yaml:"half_life"`
	// MaxModels and MaxKeys bound the distributions kept (models; keys per
	// model); the least recently seen goes first. Default 64 and 1000.
	MaxModels int `yaml:"max_models"`
	MaxKeys   int `yaml:"max_keys"`
	// CensoredFactor: an answer the cap cut counts as this × the cap.
	// Default 2, at least 1.
	CensoredFactor float64 `yaml:"censored_factor"`
	// RoomFraction: with nobody waiting, a request keeps max_tokens up to
	// where its reservation is this fraction of the room left in its
	// buckets. Default 0 (off; see README, "The max_tokens policy"); at most 1.
	RoomFraction float64 `yaml:"room_fraction"`
	// FairShare tightens the cap toward the key's fair share under
	// contention (never below floor). Default true.
	FairShare bool `yaml:"fair_share"`
	// Escalation grows the cap of the call after a cut.
	Escalation Escalation `yaml:"escalation"`
}

// Prior is a model family's starting distribution of output lengths, a
// log-normal given by its median and 99th percentile (tokens).
type Prior struct {
	Match  string `yaml:"match"`
	Median int    `yaml:"median"`
	P99    int    `yaml:"p99"`
}

// Escalation sets how the call after a cut grows.
type Escalation struct {
	// Factor: the next call gets factor × the cap that cut, at most what
	// the client asked; 1 or less gives at once what it asked. Default 4.
	Factor float64 `yaml:"factor"`
	// TTL is how long cut tool calls and sessions are remembered. Default
	// 30m; positive.
	TTL Duration `yaml:"ttl"`
	// MaxCuts and MaxSessions bound what is remembered. Default 10000 each;
	// 0 turns that signal off.
	MaxCuts     int `yaml:"max_cuts"`
	MaxSessions int `yaml:"max_sessions"`
}

// Learned reports whether the policy is the learned one.
func (p Policy) Learned() bool { return p.Mode != PolicyFixed }

// Shadow reports whether the gateway only watches (policy.enforcement: shadow).
func (p Policy) Shadow() bool { return p.Enforcement == EnforcementShadow }

// Policy modes.
const (
	PolicyLearned = "learned"
	PolicyFixed   = "fixed"
)

// Enforcement modes (Policy.Enforcement).
const (
	EnforcementEnforce = "enforce"
	EnforcementShadow  = "shadow"
)

// DefaultPolicy is the learned policy with every default.
func DefaultPolicy() Policy {
	return Policy{
		Enforcement: EnforcementEnforce, Mode: PolicyLearned, MaxTokensCap: 4096, ThinkingBudgetCap: 1024,
		Percentile: 0.95, Floor: 4096,
		Priors: []Prior{
			{Match: "claude-opus-5", Median: 1500, P99: 12288},
			{Match: "", Median: 800, P99: 8192},
		},
		PriorWeight: 50, KeyMinSamples: 100, HalfLife: Duration{24 * time.Hour},
		MaxModels: 64, MaxKeys: 1000, CensoredFactor: 2, RoomFraction: 0, FairShare: true,
		Escalation: Escalation{Factor: 4, TTL: Duration{30 * time.Minute}, MaxCuts: 10000, MaxSessions: 10000},
	}
}

// ModelPolicy overrides the caps for some models. A zero cap inherits the
// Policy's.
type ModelPolicy struct {
	Match             string `yaml:"match"`
	MaxTokensCap      int    `yaml:"max_tokens_cap"`
	ThinkingBudgetCap int    `yaml:"thinking_budget_cap"`
}

// Caps returns the max_tokens and thinking budget caps for model (its
// foundation ID).
func (p Policy) Caps(model string) (maxTokens, thinkingBudget int) {
	maxTokens, thinkingBudget = p.MaxTokensCap, p.ThinkingBudgetCap
	for _, m := range p.Models {
		if !strings.Contains(model, m.Match) {
			continue
		}
		if m.MaxTokensCap > 0 {
			maxTokens = m.MaxTokensCap
		}
		if m.ThinkingBudgetCap > 0 {
			thinkingBudget = m.ThinkingBudgetCap
		}
		break
	}
	return maxTokens, thinkingBudget
}

// Fairness sets how capacity is shared between developer keys.
type Fairness struct {
	// ProtectedFraction is the part of each key's weighted share of a daily
	// bucket that no other key may consume. Default 0.5; 0 turns protection
	// off, 1 makes daily shares strict. Between 0 and 1.
	ProtectedFraction float64 `yaml:"protected_fraction"`
}

// Queue sets how requests wait instead of being throttled.
type Queue struct {
	// MaxWait is the longest a request waits for capacity before a 429 with
	// Retry-After. A client may ask for less with x-headroom-max-wait.
	// Default 60s; must be positive.
	MaxWait Duration `yaml:"max_wait"`
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("60s", "1m30s").
type Duration struct{ time.Duration }

// UnmarshalYAML reads a duration string; a bare number is refused because its
// unit would be a guess.
// Its errors are yaml.TypeErrors, which let decoding go on to the other
// fields, so that every problem of a file is found at once.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{"expected a duration like 60s or 1m30s, got a " + map[bool]string{true: "list", false: "mapping"}[n.Kind == yaml.SequenceNode]}}
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		if _, numErr := strconv.ParseFloat(n.Value, 64); numErr == nil {
			return &yaml.TypeError{Errors: []string{fmt.Sprintf("expected a duration with its unit like 60s or 1m30s, got the bare number %s", n.Value)}}
		}
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("expected a duration like 60s or 1m30s, got %q", n.Value)}}
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// DefaultServe is a Serve with every default filled in and no upstreams.
func DefaultServe() Serve {
	return Serve{
		Listen:      "127.0.0.1:8080",
		Redis:       Redis{WhenDown: WhenDownRefuse},
		Accounting:  Accounting{Profile: "seed"},
		Windows:     DefaultWindows(),
		Policy:      DefaultPolicy(),
		Fairness:    Fairness{ProtectedFraction: 0.5},
		Queue:       Queue{MaxWait: Duration{60 * time.Second}},
		KeysRefresh: Duration{2 * time.Second},
		Limits:      DefaultLimits(),
		Failover:    Failover{TripAfter: 3, OutFor: Duration{10 * time.Second}, MaxOutFor: Duration{5 * time.Minute}},
	}
}

// LoadServe reads a serve file, applies defaults and validates it. A
// validation failure is a Problems listing every problem.
func LoadServe(path string) (Serve, error) {
	data, err := readFile(path)
	if err != nil {
		return Serve{}, err
	}
	return ParseServe(data)
}

// ParseServe is LoadServe for a file already read.
func ParseServe(data []byte) (Serve, error) {
	// Decoding over the defaults keeps every field the file leaves out, and
	// lets a file set a default away explicitly (protected_fraction: 0).
	s := DefaultServe()
	err := decodeAndValidate(data, &s, func() error {
		s.ApplyDefaults()
		return s.Validate()
	})
	if err != nil {
		return Serve{}, err
	}
	return s, nil
}

// ApplyDefaults fills the defaults that live inside list elements and the
// default route. It is idempotent.
func (s *Serve) ApplyDefaults() {
	for i := range s.Upstreams {
		if s.Upstreams[i].Auth.Mode == "" {
			s.Upstreams[i].Auth.Mode = AuthDefault
		}
		if s.Upstreams[i].Service == "" {
			s.Upstreams[i].Service = ServiceRuntime
		}
	}
	if len(s.Routes) == 0 && len(s.Upstreams) > 0 && s.Upstreams[0].Name != "" {
		s.Routes = []Route{{Upstreams: []string{s.Upstreams[0].Name}}}
	}
	// `policy.mode: shadow` (or enforce), the spelling operators reach
	// for, sets the enforcement and keeps the default learned max_tokens
	// policy running beside it.
	if m := s.Policy.Mode; m == EnforcementShadow || m == EnforcementEnforce {
		s.Policy.Enforcement, s.Policy.Mode = m, PolicyLearned
	}
}

// Validate reports every problem at once as Problems, or nil.
func (s *Serve) Validate() error {
	var p Problems
	validateListen(s.Listen, &p)
	if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
		p.add("tls: cert_file and key_file must both be set, or neither")
	}
	s.Accounting.validate("accounting", &p)
	s.Windows.validate("windows", &p)
	names := s.validateUpstreams(&p)
	s.validateRoutes(names, &p)
	s.Policy.validate(&p)
	if f := s.Fairness.ProtectedFraction; !(f >= 0 && f <= 1) {
		p.add("fairness.protected_fraction: %v is not between 0 and 1", f)
	}
	if s.Queue.MaxWait.Duration <= 0 {
		p.add("queue.max_wait: %v must be positive", s.Queue.MaxWait.Duration)
	}
	if f := s.Failover; f.TripAfter < 1 || f.OutFor.Duration <= 0 || f.MaxOutFor.Duration < f.OutFor.Duration {
		p.add("failover: trip_after (%d) must be at least 1, out_for (%v) positive and max_out_for (%v) at least out_for", f.TripAfter, f.OutFor.Duration, f.MaxOutFor.Duration)
	}
	if s.KeysRefresh.Duration <= 0 {
		p.add("keys_refresh: %v must be positive", s.KeysRefresh.Duration)
	}
	if e := s.Operations.TokenEnv; e != "" && !envNameRE.MatchString(e) {
		p.add("operations.token_env: %q is not an environment variable name", e)
	}
	s.Limits.validate(&p)
	if err := s.Redis.Validate("redis.url"); err != nil {
		p.add("%s", err)
	}
	if w := s.Redis.WhenDown; w != WhenDownRefuse && w != WhenDownLocalShare {
		p.add("redis.when_down: %q is not refuse or local_share", w)
	}
	if n := s.Redis.Replicas; n < 0 || n > 1000 {
		p.add("redis.replicas: %d is not between 0 and 1000", n)
	}
	return p.err()
}

// validateUpstreams checks the upstreams and returns their names.
func (s *Serve) validateUpstreams(p *Problems) map[string]bool {
	names := map[string]bool{}
	if len(s.Upstreams) == 0 {
		p.add("upstreams: at least one upstream is required")
	}
	for i, u := range s.Upstreams {
		at := fmtIndex("upstreams", i, u.Name)
		if u.Name == "" {
			p.add("%s.name: required", at)
		} else if names[u.Name] {
			p.add("%s.name: %q is used twice", at, u.Name)
		}
		names[u.Name] = true
		if u.Region == "" {
			p.add("%s.region: required", at)
		}
		if u.Service != ServiceRuntime && u.Service != ServiceMantle {
			p.add("%s.service: %q is not bedrock-runtime or bedrock-mantle", at, u.Service)
		}
		if u.Endpoint != "" {
			if e, err := url.Parse(u.Endpoint); err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				p.add("%s.endpoint: %q is not an http:// or https:// URL", at, u.Endpoint)
			}
		}
		switch u.Auth.Mode {
		case AuthDefault, AuthNone:
		case AuthProfile:
			if u.Auth.Profile == "" {
				p.add("%s.auth.profile: required with mode profile", at)
			}
		case AuthAPIKey:
			if u.Auth.APIKeyEnv == "" {
				p.add("%s.auth.api_key_env: required with mode api-key (the name of the variable holding the key)", at)
			}
		default:
			p.add("%s.auth.mode: %q is not default, profile, api-key or none", at, u.Auth.Mode)
		}
		if u.MaxInFlight < 0 {
			p.add("%s.max_in_flight: %d is negative", at, u.MaxInFlight)
		}
		// The service decides which ledger the buckets mirror: Mantle's
		// kinds on bedrock-mantle, the runtime's on bedrock-runtime.
		kinds := RuntimeKinds
		if u.Service == ServiceMantle {
			kinds = MantleKinds
		}
		validateBuckets(at+".buckets", u.Buckets, kinds, p)
		validateUnmatched(at, u, p)
		if u.ModelPrefix != "" && !slices.Contains(ModelPrefixes, u.ModelPrefix) {
			p.add("%s.model_prefix: %q is not one of %s", at, u.ModelPrefix, strings.Join(ModelPrefixes, ", "))
		}
		for _, sub := range slices.Sorted(maps.Keys(u.ModelIDs)) {
			id := u.ModelIDs[sub]
			if sub == "" || id == "" || strings.ContainsAny(id, " ?#") {
				p.add("%s.model_ids: %q: %q needs a model substring and a model ID or inference profile ARN", at, sub, id)
			}
		}
	}
	return names
}

func (s *Serve) validateRoutes(upstreams map[string]bool, p *Problems) {
	for i, r := range s.Routes {
		at := fmt.Sprintf("routes[%d]", i)
		if len(r.Upstreams) == 0 {
			p.add("%s.upstreams: at least one upstream is required", at)
		}
		for _, u := range r.Upstreams {
			if !upstreams[u] || u == "" {
				p.add("%s.upstreams: %q is not an upstream", at, u)
			}
		}
		for _, m := range r.Models {
			if m == "" {
				p.add("%s.models: an empty entry would match every model; leave the list empty instead", at)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(r.Weights)) {
			w := r.Weights[name]
			if !slices.Contains(r.Upstreams, name) {
				p.add("%s.weights: %q is not one of the route's upstreams", at, name)
			}
			if !(w > 0) || w > 1e6 {
				p.add("%s.weights.%s: %v must be a positive number (at most 1000000)", at, name, w)
			}
		}
		if r.Affinity != "" && r.Affinity != AffinitySession && r.Affinity != AffinityNone {
			p.add("%s.affinity: %q is not session or none", at, r.Affinity)
		}
		for j, u := range r.Upstreams {
			if slices.Contains(r.Upstreams[:j], u) {
				p.add("%s.upstreams: %q is listed twice", at, u)
			}
		}
		validateRouteOptions(at, r, p)
	}
}

func (pol Policy) validate(p *Problems) {
	if pol.MaxTokensCap < 1 {
		p.add("policy.max_tokens_cap: %d must be at least 1", pol.MaxTokensCap)
	}
	if pol.ThinkingBudgetCap < 1024 {
		p.add("policy.thinking_budget_cap: %d must be at least 1024 (Bedrock's minimum budget)", pol.ThinkingBudgetCap)
	}
	if pol.Mode != PolicyLearned && pol.Mode != PolicyFixed {
		p.add("policy.mode: %q is not learned, fixed or shadow (shadow: watch without enforcing, the same as policy.enforcement: shadow)", pol.Mode)
	}
	if pol.Enforcement != EnforcementEnforce && pol.Enforcement != EnforcementShadow {
		p.add("policy.enforcement: %q is not enforce or shadow", pol.Enforcement)
	}
	if !(pol.Percentile > 0 && pol.Percentile <= 1) {
		p.add("policy.percentile: %v is not in (0, 1]", pol.Percentile)
	}
	if pol.Floor < 1 {
		p.add("policy.floor: %d must be at least 1", pol.Floor)
	}
	for i, pr := range pol.Priors {
		at := fmtIndex("policy.priors", i, pr.Match)
		if pr.Median < 1 || pr.P99 <= pr.Median {
			p.add("%s: median %d and p99 %d must satisfy 1 <= median < p99", at, pr.Median, pr.P99)
		}
	}
	if pol.PriorWeight < 0 || pol.KeyMinSamples < 0 {
		p.add("policy.prior_weight and policy.key_min_samples must not be negative")
	}
	if pol.HalfLife.Duration < 0 {
		p.add("policy.half_life: %v must not be negative", pol.HalfLife.Duration)
	}
	if pol.MaxModels < 1 || pol.MaxKeys < 1 {
		p.add("policy.max_models (%d) and policy.max_keys (%d) must be at least 1", pol.MaxModels, pol.MaxKeys)
	}
	if pol.CensoredFactor < 1 {
		p.add("policy.censored_factor: %v must be at least 1", pol.CensoredFactor)
	}
	if !(pol.RoomFraction >= 0 && pol.RoomFraction <= 1) {
		p.add("policy.room_fraction: %v is not between 0 and 1", pol.RoomFraction)
	}
	if pol.Escalation.Factor < 0 {
		p.add("policy.escalation.factor: %v must not be negative", pol.Escalation.Factor)
	}
	if pol.Escalation.TTL.Duration <= 0 {
		p.add("policy.escalation.ttl: %v must be positive", pol.Escalation.TTL.Duration)
	}
	if pol.Escalation.MaxCuts < 0 || pol.Escalation.MaxSessions < 0 {
		p.add("policy.escalation.max_cuts and max_sessions must not be negative")
	}
	seen := map[string]bool{}
	for i, m := range pol.Models {
		at := fmtIndex("policy.models", i, m.Match)
		if m.Match == "" {
			p.add("%s.match: required", at)
		} else if seen[m.Match] {
			p.add("%s.match: %q is used twice", at, m.Match)
		}
		seen[m.Match] = true
		if m.MaxTokensCap < 0 {
			p.add("%s.max_tokens_cap: %d must be at least 1 (or 0 to inherit)", at, m.MaxTokensCap)
		}
		if m.ThinkingBudgetCap != 0 && m.ThinkingBudgetCap < 1024 {
			p.add("%s.thinking_budget_cap: %d must be at least 1024 (or 0 to inherit)", at, m.ThinkingBudgetCap)
		}
	}
}
