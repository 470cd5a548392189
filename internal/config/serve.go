package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
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
	// Accounting chooses the accounting profile (seed or aws) and burndown
	// table used to mirror every upstream's quota.
	Accounting Accounting `yaml:"accounting"`
	// Windows says how minute and day buckets refill. Default
	// DefaultWindows(); it must match the account (or the emulator's file).
	Windows Windows `yaml:"windows"`
	// Upstreams are the Bedrock endpoints requests are sent to. At least one.
	Upstreams []Upstream `yaml:"upstreams"`
	// Routes decide which upstream serves a request; the first route that
	// matches wins. Empty: every request goes to the first upstream (LoadServe
	// fills in that route).
	Routes []Route `yaml:"routes"`
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
}

// envNameRE is what an environment variable name may be.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Operations protects GET /v1/status and /metrics, which show key names,
// usage and bucket state, never secrets. /healthz is always open.
type Operations struct {
	// TokenEnv names an environment variable holding a token that those
	// endpoints then require as "Authorization: Bearer TOKEN" (Prometheus:
	// `authorization: {credentials_file: ...}` in the scrape config). Empty:
	// both are open, as usual on a private network.
	TokenEnv string `yaml:"token_env"`
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
	// Endpoint overrides the default https://bedrock-runtime.REGION.amazonaws.com,
	// for example to point at `headroom emulate`. An http(s) URL; optional.
	Endpoint string `yaml:"endpoint"`
	// Auth says how requests to this upstream are authenticated. The client's
	// own Authorization header is never forwarded.
	Auth UpstreamAuth `yaml:"auth"`
	// Buckets are the account's quotas for this region, mirrored by the
	// ledger. Empty means nothing is mirrored for this upstream.
	Buckets []Bucket `yaml:"buckets"`
	// MaxInFlight caps concurrent requests to this upstream; 0 means no cap.
	MaxInFlight int `yaml:"max_in_flight"`
}

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
// preference (automatic failover between them comes later).
type Route struct {
	// Models are substrings of the foundation model ID (bedrock.Model.Base);
	// empty matches any model.
	Models []string `yaml:"models"`
	// Keys are developer key names; empty matches any key.
	Keys []string `yaml:"keys"`
	// Upstreams are upstream names; at least one.
	Upstreams []string `yaml:"upstreams"`
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

// Policy caps what a request may reserve. Lower caps let more requests fit
// in the same quota (the seed's 4,096 gives about 8x more calls than Claude
// Code's 32,000) at the price of truncating long answers (stop_reason
// max_tokens) and large file edits.
type Policy struct {
	// MaxTokensCap is the largest max_tokens forwarded; a missing max_tokens
	// gets it. Default 4096, at least 1.
	MaxTokensCap int `yaml:"max_tokens_cap"`
	// ThinkingBudgetCap is the largest thinking.budget_tokens forwarded.
	// Default 1024, at least 1024 (Bedrock's minimum).
	ThinkingBudgetCap int `yaml:"thinking_budget_cap"`
	// Models override the caps for models whose foundation ID contains
	// Match; the first match wins.
	Models []ModelPolicy `yaml:"models"`
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
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be a string like 60s", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 60s or 1m30s", n.Line, n.Value)
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
		Accounting:  Accounting{Profile: "seed"},
		Windows:     DefaultWindows(),
		Policy:      Policy{MaxTokensCap: 4096, ThinkingBudgetCap: 1024},
		Fairness:    Fairness{ProtectedFraction: 0.5},
		Queue:       Queue{MaxWait: Duration{60 * time.Second}},
		KeysRefresh: Duration{2 * time.Second},
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
	if err := decodeYAML(data, &s); err != nil {
		return Serve{}, err
	}
	s.ApplyDefaults()
	if err := s.Validate(); err != nil {
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
	}
	if len(s.Routes) == 0 && len(s.Upstreams) > 0 && s.Upstreams[0].Name != "" {
		s.Routes = []Route{{Upstreams: []string{s.Upstreams[0].Name}}}
	}
}

// Validate reports every problem at once as Problems, or nil.
func (s *Serve) Validate() error {
	var p Problems
	if s.Listen == "" {
		p.add("listen: required (HOST:PORT)")
	} else if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		p.add("listen: %q is not HOST:PORT", s.Listen)
	}
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
	if s.KeysRefresh.Duration <= 0 {
		p.add("keys_refresh: %v must be positive", s.KeysRefresh.Duration)
	}
	if e := s.Operations.TokenEnv; e != "" && !envNameRE.MatchString(e) {
		p.add("operations.token_env: %q is not an environment variable name", e)
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
		validateBuckets(at+".buckets", u.Buckets, p)
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
	}
}

func (pol Policy) validate(p *Problems) {
	if pol.MaxTokensCap < 1 {
		p.add("policy.max_tokens_cap: %d must be at least 1", pol.MaxTokensCap)
	}
	if pol.ThinkingBudgetCap < 1024 {
		p.add("policy.thinking_budget_cap: %d must be at least 1024 (Bedrock's minimum budget)", pol.ThinkingBudgetCap)
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
