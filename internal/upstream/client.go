package upstream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// AuthMode says how a Client authenticates to its upstream.
type AuthMode string

const (
	// AuthDefault uses the SDK's default credential chain (environment,
	// shared config and credentials files including SSO, container and
	// instance roles) and signs with SigV4.
	AuthDefault AuthMode = "default"
	// AuthProfile is AuthDefault with a named shared-config profile.
	AuthProfile AuthMode = "profile"
	// AuthAPIKey sends a Bedrock API key as "Authorization: Bearer".
	AuthAPIKey AuthMode = "api-key"
	// AuthNone sends no credentials (for `headroom emulate`).
	AuthNone AuthMode = "none"
)

// Service is the Bedrock endpoint an upstream is: its host, its paths, how
// it is signed and which quotas it draws on (BEDROCK.md section 6: the two
// endpoints keep separate ledgers).
type Service string

const (
	// ServiceRuntime is bedrock-runtime.{region}.amazonaws.com: InvokeModel,
	// Converse, CountTokens and the Messages API under /anthropic.
	ServiceRuntime Service = "bedrock-runtime"
	// ServiceMantle is bedrock-mantle.{region}.api.aws: the Messages API
	// only (/anthropic/v1/messages).
	ServiceMantle Service = "bedrock-mantle"
)

// SigningName is the SigV4 service name of Bedrock Runtime: "bedrock", not
// "bedrock-runtime" (BEDROCK.md section 3).
const SigningName = "bedrock"

// MantleSigningName is the SigV4 service name of bedrock-mantle. No AWS
// page states it; OpenAI's official Go SDK signs Mantle requests with it
// (github.com/openai/openai-go, bedrock/auth.go: bedrockService =
// "bedrock-mantle"), as does OpenAI's Codex CLI (BEDROCK_MANTLE_SERVICE_NAME).
const MantleSigningName = "bedrock-mantle"

// MantleVersion is the anthropic-version header Mantle's Messages API
// wants; bedrock-runtime wants RuntimeVersion in the body instead
// (BEDROCK.md section 6).
const (
	MantleVersion  = "2023-06-01"
	RuntimeVersion = "bedrock-2023-05-31"
)

// DefaultResponseHeaderTimeout bounds the wait for an answer's headers. A
// non-streaming InvokeModel answers only when generation is done, and AWS
// advises SDK read timeouts of up to 60 minutes for long Claude generations,
// so this is generous; the request's context is the real bound.
const DefaultResponseHeaderTimeout = 60 * time.Minute

// Options configure one upstream. The cli package fills them from the
// configuration file; nothing here reads the environment itself except the
// SDK's own config loader (AWS_REGION, AWS_PROFILE, AWS_CA_BUNDLE, ...).
type Options struct {
	Name   string
	Region string
	// Service is ServiceRuntime (the default when empty) or ServiceMantle.
	Service Service
	// Endpoint is the base URL; empty means
	// https://bedrock-runtime.{Region}.amazonaws.com, or
	// https://bedrock-mantle.{Region}.api.aws for ServiceMantle.
	Endpoint string
	// ControlEndpoint is the control-plane base URL for GET
	// /inference-profiles; empty means https://bedrock.{Region}.amazonaws.com,
	// or Endpoint when Endpoint is set (the emulator serves both).
	ControlEndpoint string
	Auth            AuthMode
	// Profile is the shared-config profile for AuthProfile.
	Profile string
	// APIKey is the Bedrock API key for AuthAPIKey (the cli reads it from
	// the environment variable the configuration names).
	APIKey string
	// ResponseHeaderTimeout; zero means DefaultResponseHeaderTimeout.
	ResponseHeaderTimeout time.Duration
	// MaxIdleConnsPerHost keeps connections to the upstream warm; zero
	// means 256, enough for a gateway's steady concurrency.
	MaxIdleConnsPerHost int
	// Now is the clock used for SigV4 timestamps; nil means time.Now.
	Now func() time.Time
}

// Client sends calls to one upstream. It is safe for concurrent use.
type Client struct {
	name, region string
	service      Service
	signingName  string
	runtime      *url.URL
	control      *url.URL
	auth         AuthMode
	apiKey       string
	creds        aws.CredentialsProvider
	credsHint    string // CredentialsError.Hint
	credsFailed  atomic.Pointer[credentialsFailure]
	signer       *v4.Signer
	http         aws.HTTPClient
	// rt is http's transport, called directly: the http.Client around it
	// only adds per-request work (header copies for redirects, which
	// Bedrock does not send) to the gateway's hot path.
	rt http.RoundTripper
	// runtimeRT carries the runtime operations: an h1Transport over rt's
	// settings, or rt itself when a proxy stands between (see h1Transport).
	runtimeRT http.RoundTripper
	now       func() time.Time
	paths     pathCache
}

// New builds a Client. Credentials are resolved lazily, on the first call,
// so New succeeds without network access; the HTTP client is the SDK's
// buildable client, so AWS_CA_BUNDLE and proxy settings apply.
func New(ctx context.Context, o Options) (*Client, error) {
	if o.Region == "" {
		return nil, fmt.Errorf("upstream %q: region is required", o.Name)
	}
	c := &Client{name: o.Name, region: o.Region, service: o.Service, auth: o.Auth, apiKey: o.APIKey, now: o.Now}
	if c.auth == "" {
		c.auth = AuthDefault
	}
	runtime := o.Endpoint
	switch c.service {
	case "", ServiceRuntime:
		c.service, c.signingName = ServiceRuntime, SigningName
		if runtime == "" {
			runtime = "https://bedrock-runtime." + o.Region + ".amazonaws.com"
		}
	case ServiceMantle:
		c.signingName = MantleSigningName
		if runtime == "" {
			runtime = "https://bedrock-mantle." + o.Region + ".api.aws"
		}
	default:
		return nil, fmt.Errorf("upstream %q: unknown service %q (bedrock-runtime or bedrock-mantle)", o.Name, o.Service)
	}
	if c.now == nil {
		c.now = time.Now
	}
	var err error
	if c.runtime, err = parseBase(runtime); err != nil {
		return nil, fmt.Errorf("upstream %q: endpoint: %w", o.Name, err)
	}
	control := o.ControlEndpoint
	switch {
	case control != "":
	case o.Endpoint != "":
		control = o.Endpoint
	default:
		control = "https://bedrock." + o.Region + ".amazonaws.com"
	}
	if c.control, err = parseBase(control); err != nil {
		return nil, fmt.Errorf("upstream %q: control endpoint: %w", o.Name, err)
	}

	headerTimeout := o.ResponseHeaderTimeout
	if headerTimeout <= 0 {
		headerTimeout = DefaultResponseHeaderTimeout
	}
	idle := o.MaxIdleConnsPerHost
	if idle <= 0 {
		idle = 256
	}
	// The buildable client, never a plain *http.Client: the config loader
	// can only add AWS_CA_BUNDLE's roots to this type (BEDROCK.md section 3).
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.ResponseHeaderTimeout = headerTimeout
		tr.MaxIdleConns = max(tr.MaxIdleConns, idle)
		tr.MaxIdleConnsPerHost = idle
		tr.MaxConnsPerHost = 0
		// Answers pass through byte for byte: asking for gzip would only
		// add a header and a decompressing reader.
		tr.DisableCompression = true
	})
	switch c.auth {
	case AuthDefault, AuthProfile:
		if c.auth == AuthProfile && o.Profile == "" {
			return nil, fmt.Errorf("upstream %q: auth mode profile needs a profile name", o.Name)
		}
		loadOpts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(o.Region), awsconfig.WithHTTPClient(hc)}
		if c.auth == AuthProfile {
			loadOpts = append(loadOpts, awsconfig.WithSharedConfigProfile(o.Profile))
		}
		cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: load AWS config: %w", o.Name, err)
		}
		if cfg.Credentials == nil {
			return nil, fmt.Errorf("upstream %q: no AWS credential provider", o.Name)
		}
		c.http, c.creds, c.signer = cfg.HTTPClient, cfg.Credentials, v4.NewSigner()
		c.credsHint = credentialsHint(cfg)
	case AuthAPIKey, AuthNone:
		if c.auth == AuthAPIKey && o.APIKey == "" {
			return nil, fmt.Errorf("upstream %q: auth mode api-key needs a key", o.Name)
		}
		// No AWS credentials are used, so the shared config (and a stray
		// AWS_PROFILE) is not loaded; AWS_CA_BUNDLE still applies.
		if hc, err = withEnvCABundle(hc); err != nil {
			return nil, fmt.Errorf("upstream %q: %w", o.Name, err)
		}
		c.http = hc
	default:
		return nil, fmt.Errorf("upstream %q: unknown auth mode %q", o.Name, c.auth)
	}
	c.rt = roundTripper(c.http)
	c.runtimeRT = c.rt
	if tr, ok := c.rt.(*http.Transport); ok {
		if h1 := newH1Transport(tr, c.runtime); h1 != nil {
			c.runtimeRT = h1
		}
	}
	return c, nil
}

// DoneWithBody reports whether Do is done with its call's Body when it
// returns: the h1 transport writes the whole request before it reads the
// answer, on the caller's goroutine. Through a proxy, net/http's transport
// carries the call, and may go on writing the body from its own goroutine
// after the answer has come (an upstream that answers before it has read
// the request).
func (c *Client) DoneWithBody() bool {
	_, ok := c.runtimeRT.(*h1Transport)
	return ok
}

// roundTripper returns the transport of the SDK's buildable client, with
// every option the config loader applied (AWS_CA_BUNDLE included), to be
// called without the http.Client around it; nil for any other client.
func roundTripper(h aws.HTTPClient) http.RoundTripper {
	if bc, ok := h.(*awshttp.BuildableClient); ok {
		return bc.GetTransport()
	}
	return nil
}

// withEnvCABundle adds the certificates of AWS_CA_BUNDLE to hc's roots, as
// the SDK's config loader does for the other modes.
func withEnvCABundle(hc *awshttp.BuildableClient) (*awshttp.BuildableClient, error) {
	env, err := awsconfig.NewEnvConfig()
	if err != nil || env.CustomCABundle == "" {
		return hc, err
	}
	pemBytes, err := os.ReadFile(env.CustomCABundle)
	if err != nil {
		return nil, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
	}
	// Like the SDK's loader: the bundle replaces the system roots.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("AWS_CA_BUNDLE %s: no PEM certificates", env.CustomCABundle)
	}
	return hc.WithTransportOptions(func(tr *http.Transport) {
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{}
		}
		tr.TLSClientConfig.RootCAs = pool
	}), nil
}

func parseBase(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", s)
	}
	return u, nil
}

// Region is the upstream's region, which bucket scopes match against.
func (c *Client) Region() string { return c.region }

// Service is the endpoint the upstream is.
func (c *Client) Service() Service { return c.service }

// Call is one runtime operation to send.
type Call struct {
	Op bedrock.Operation
	// ModelID is the decoded model identifier (bedrock.Model.ID); the
	// Client escapes it the way the AWS SDKs do.
	ModelID string
	Body    []byte
	// Header holds the client headers worth forwarding (see ForwardHeader);
	// the Client adds Content-Type, Accept and its own authentication.
	Header http.Header
	// Beta asks a Messages call for the beta surface (?beta=true, which
	// Claude Code and the Anthropic SDKs' beta client add).
	Beta bool
}

// Do sends c and returns the upstream's answer; the caller closes its body.
// A non-nil error means no answer arrived (classify it with ClassifyError).
func (c *Client) Do(ctx context.Context, call Call) (*http.Response, error) {
	var u *url.URL
	if call.Op.Anthropic() {
		// Both endpoints serve the Messages API at /anthropic/v1/messages;
		// the model is in the body.
		p := c.runtime.Path + "/anthropic/v1/messages"
		if call.Op == bedrock.OpCountMessageTokens {
			p += "/count_tokens"
		}
		u = &url.URL{Scheme: c.runtime.Scheme, Host: c.runtime.Host, Path: p}
		if call.Beta {
			u.RawQuery = "beta=true"
		}
	} else {
		p := c.paths.get(c.runtime, call.ModelID, call.Op)
		// The request is built field by field: http.NewRequest would parse
		// a URL string we have just built, and wrap the body twice.
		u = &url.URL{Scheme: c.runtime.Scheme, Host: c.runtime.Host, Path: p.path, RawPath: p.rawPath}
	}
	h := make(http.Header, len(call.Header)+4)
	for k, vs := range call.Header {
		if ForwardHeader(k) {
			h[k] = vs
		}
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = jsonType
	}
	if call.Op.Anthropic() && c.service == ServiceMantle {
		h["Anthropic-Version"] = mantleVersion
	}
	if _, ok := h["Accept"]; !ok {
		if call.Op.Streaming() {
			h["Accept"] = eventStreamType
		} else {
			h["Accept"] = jsonType
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "", nil)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: build request: %w", c.name, err)
	}
	req.URL, req.Host, req.Header = u, u.Host, h
	body := call.Body
	if len(body) > 0 {
		// NopCloser of a *bytes.Reader, as NewRequest makes it: http's
		// transport recognises the pair as in memory and sends headers and
		// a small body in one write, where any other reader costs a second
		// write system call per request.
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return c.send(ctx, c.runtimeRT, req, call.Body)
}

// Header values the client sets; slices of capacity 1, so that an append
// by anyone never writes into them.
var (
	jsonType        = []string{"application/json"}
	mantleVersion   = []string{MantleVersion}
	eventStreamType = []string{bedrock.ContentTypeEventStream}
)

// callPath is the path of one operation on one model, plain and escaped
// the way the AWS SDKs escape the modelId label.
type callPath struct{ path, rawPath string }

// pathCache remembers callPaths, since the same few models are called
// again and again; it holds at most maxPaths, as model IDs come from
// clients.
type pathCache struct {
	mu sync.RWMutex
	m  map[pathKey]callPath
}

type pathKey struct {
	model string
	op    bedrock.Operation
}

const maxPaths = 1024

func (pc *pathCache) get(base *url.URL, model string, op bedrock.Operation) callPath {
	k := pathKey{model, op}
	pc.mu.RLock()
	p, ok := pc.m[k]
	pc.mu.RUnlock()
	if ok {
		return p
	}
	a := action(op)
	p = callPath{path: base.Path + "/model/" + model + "/" + a, rawPath: base.EscapedPath() + "/model/" + escapeSegment(model) + "/" + a}
	pc.mu.Lock()
	if pc.m == nil {
		pc.m = make(map[pathKey]callPath)
	}
	if len(pc.m) < maxPaths {
		pc.m[k] = p
	}
	pc.mu.Unlock()
	return p
}

// Control forwards a control-plane GET (such as /inference-profiles) with
// the given path and raw query.
func (c *Client) Control(ctx context.Context, path, rawQuery string) (*http.Response, error) {
	u := *c.control
	u.Path = c.control.Path + path
	u.RawPath = ""
	u.RawQuery = rawQuery
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: build request: %w", c.name, err)
	}
	req.Header.Set("Accept", "application/json")
	return c.send(ctx, c.rt, req, nil)
}

// CheckCredentials asks the credential chain for credentials once, so that
// a gateway started without usable AWS credentials can say so at start-up
// rather than at its first request. It returns a *CredentialsError, or nil
// when they are fine or the upstream uses none (api-key, none). The SDK
// caches what it gets, so the first request does not pay again.
func (c *Client) CheckCredentials(ctx context.Context) error {
	if c.creds == nil {
		return nil
	}
	_, err := c.credentials(ctx)
	return err
}

// credentialsRetryAfter is how long a failed credential lookup stands for
// the next ones: the requests in between fail at once with the same error
// instead of each asking the chain again, which on a host where instance
// metadata is reachable but has no role can take seconds per request.
const credentialsRetryAfter = 5 * time.Second

// credentialsFailure is the last failure of the credential chain.
type credentialsFailure struct {
	err   *CredentialsError
	until time.Time
}

// credentials returns the chain's credentials (the SDK caches them until
// they expire), or a *CredentialsError, possibly the one remembered.
func (c *Client) credentials(ctx context.Context) (aws.Credentials, error) {
	if f := c.credsFailed.Load(); f != nil && c.now().Before(f.until) {
		return aws.Credentials{}, f.err
	}
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		ce := &CredentialsError{Upstream: c.name, Hint: c.credsHint, Err: err}
		// A lookup cut short by its own request's end says nothing of the
		// chain: not remembered.
		if ctx.Err() == nil {
			c.credsFailed.Store(&credentialsFailure{err: ce, until: c.now().Add(credentialsRetryAfter)})
		}
		return aws.Credentials{}, ce
	}
	if c.credsFailed.Load() != nil {
		c.credsFailed.Store(nil)
	}
	return creds, nil
}

func (c *Client) send(ctx context.Context, rt http.RoundTripper, req *http.Request, body []byte) (*http.Response, error) {
	req.ContentLength = int64(len(body))
	if len(body) == 0 {
		req.Body = http.NoBody
	}
	switch c.auth {
	case AuthAPIKey:
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	case AuthDefault, AuthProfile:
		creds, err := c.credentials(ctx)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), c.signingName, c.region, c.now()); err != nil {
			return nil, fmt.Errorf("upstream %q: sign: %w", c.name, err)
		}
	}
	var resp *http.Response
	var err error
	if rt != nil {
		resp, err = rt.RoundTrip(req)
	} else {
		resp, err = c.http.Do(req)
	}
	if err != nil {
		return nil, c.transportError(req.URL.Host, err)
	}
	return resp, nil
}

func action(op bedrock.Operation) string {
	switch op {
	case bedrock.OpInvoke:
		return "invoke"
	case bedrock.OpInvokeStream:
		return "invoke-with-response-stream"
	case bedrock.OpConverse:
		return "converse"
	case bedrock.OpConverseStream:
		return "converse-stream"
	case bedrock.OpCountTokens:
		return "count-tokens"
	}
	return "invoke"
}

// escapeSegment percent-encodes everything but RFC 3986 unreserved
// characters, as the AWS SDKs do for the modelId label (':' becomes %3A,
// an ARN's '/' becomes %2F).
func escapeSegment(s string) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if 'A' <= ch && ch <= 'Z' || 'a' <= ch && ch <= 'z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_' || ch == '.' || ch == '~' {
			b.WriteByte(ch)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexd[ch>>4])
		b.WriteByte(hexd[ch&15])
	}
	return b.String()
}

// ForwardHeader reports whether a client request header may be passed to the
// upstream: Content-Type, Accept, Bedrock's own X-Amzn-Bedrock-* request
// options (accept type, guardrails, trace, performance and service tier) and
// anthropic-beta. Authorization, X-Amz-* signing headers, hop-by-hop and
// Headroom's own headers are not, except X-Headroom-Emulator-* (which
// steer `headroom emulate`'s answers in tests and demos; Bedrock ignores
// them).
func ForwardHeader(canonicalKey string) bool {
	switch canonicalKey {
	case "Content-Type", "Accept", "Anthropic-Beta":
		return true
	case bedrock.HeaderServiceTier: // on every path, whatever else the X-Amzn-Bedrock-* rule becomes
		return true
	}
	return strings.HasPrefix(canonicalKey, "X-Amzn-Bedrock-") || strings.HasPrefix(canonicalKey, "X-Headroom-Emulator-")
}

// Drain discards the rest of a response body and closes it, so the
// connection can be reused after a retry.
func Drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
}
