package gateway

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/upstream"
)

// Authenticator finds the developer key for a secret (keys.Registry).
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (keys.Key, error)
}

// secretOf extracts the Headroom key a client presents. Two forms work, so
// that every Bedrock client can be pointed at the gateway unchanged:
//
//   - "Authorization: Bearer <key>": Claude Code and the AWS SDKs with
//     AWS_BEARER_TOKEN_BEDROCK=<key>.
//   - "x-api-key: <key>": the Anthropic SDKs with ANTHROPIC_API_KEY=<key>.
//   - SigV4, "Authorization: AWS4-HMAC-SHA256 Credential=<key>/...": an SDK
//     configured with AWS_ACCESS_KEY_ID=<key> and any secret access key.
//     The gateway cannot check the signature (it stores only a hash of the
//     key, never a signing secret), so the access key ID is treated as the
//     bearer secret it is: the key travels in the header either way, and
//     TLS (serve --tls-cert) protects it on the wire.
func secretOf(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if s, ok := cutPrefixFold(auth, "Bearer "); ok {
		return strings.TrimSpace(s)
	}
	if auth == "" {
		return strings.TrimSpace(r.Header.Get("X-Api-Key"))
	}
	if s, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 "); ok {
		i := strings.Index(s, "Credential=")
		if i < 0 {
			return ""
		}
		cred := s[i+len("Credential="):]
		if j := strings.IndexByte(cred, '/'); j >= 0 {
			return cred[:j]
		}
	}
	return ""
}

// checkOpsToken guards /v1/status and /metrics: they show key names,
// budgets, usage and bucket state (never secrets). With Options.OpsToken
// set they require it; without, they are open only on a gateway listening
// on loopback (Options.OpsClosed is false).
func (g *Gateway) checkOpsToken(r *http.Request) error {
	if g.opsToken == nil {
		if g.opsClosed {
			return bedrock.Errorf(bedrock.AccessDeniedException,
				"%s is open only when the gateway listens on a loopback address; to reach it from elsewhere, set operations.token_env and send Authorization: Bearer <token>", r.URL.Path)
		}
		return nil
	}
	got, _ := cutPrefixFold(r.Header.Get("Authorization"), "Bearer ")
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), g.opsToken) != 1 {
		return bedrock.Errorf(bedrock.AccessDeniedException,
			"%s needs the gateway's operations token: Authorization: Bearer <the value of operations.token_env>", r.URL.Path)
	}
	return nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// authenticate returns the request's key, or an AccessDeniedException
// (which a Messages path renders as 401 authentication_error, as the
// Anthropic API answers a bad x-api-key).
func (g *Gateway) authenticate(r *http.Request) (keys.Key, error) {
	secret := secretOf(r)
	if secret == "" {
		return keys.Key{}, unauthenticated("Missing Headroom key: send it as AWS_BEARER_TOKEN_BEDROCK (Authorization: Bearer), as x-api-key (ANTHROPIC_API_KEY), or as the SigV4 access key ID")
	}
	k, err := g.keys.Authenticate(r.Context(), secret)
	switch {
	case errors.Is(err, keys.ErrRevoked):
		return keys.Key{}, unauthenticated("This Headroom key has been revoked")
	case errors.Is(err, keys.ErrUnknown):
		return keys.Key{}, unauthenticated("The Headroom key is not valid")
	case err != nil:
		// The store failed: not the client's fault, and worth a retry.
		return keys.Key{}, &internalError{bedrock.Errorf(bedrock.ServiceUnavailableException, "%s", bedrock.MsgServiceUnavailable), err}
	}
	return k, nil
}

func unauthenticated(msg string) error {
	return &anthropicStatus{bedrock.Errorf(bedrock.AccessDeniedException, "%s", msg), http.StatusUnauthorized}
}

// upstreamUnavailable maps a call that got no answer at all. A transport
// failure is a ServiceUnavailableException, which clients retry. A failure
// of the gateway's own setup (its AWS credentials, its CA bundle, its
// endpoint: upstream.ClassifyError calls them Fatal) is answered at once
// with an InternalServerException and "x-should-retry: false", because:
//   - a 403 AccessDeniedException, what Bedrock answers for bad
//     credentials, would blame the client's Headroom key, and Claude Code in
//     Bedrock mode retries every 403 (it takes it for its own stale AWS
//     credentials) up to 10 times with backoff: minutes of waiting;
//   - a 502 or 503, or a bare 500, is retried by every client;
//   - the Anthropic SDKs inside Claude Code honour x-should-retry for any
//     status but 401 and 403. Measured with Claude Code 2.x: a 500 with
//     the header fails in under a second, a 403 or a bare 500 still
//     retries after 150 s. The AWS SDKs retry a 500 twice at most, and
//     each retry now fails in milliseconds.
//
// The message names the upstream and the operator's fix (the error's Hint,
// which holds no secret); the SDK's detail goes to the log only.
func upstreamUnavailable(err error) error {
	var ce *upstream.CredentialsError
	var ee *upstream.EndpointError
	var public *bedrock.Error
	switch {
	case errors.As(err, &ce):
		public = bedrock.Errorf(bedrock.InternalServerException,
			"Headroom could not get AWS credentials for its upstream %q (the gateway's own credentials, not your Headroom key): %s; details are in the gateway log",
			ce.Upstream, ce.Hint)
	case errors.As(err, &ee):
		public = bedrock.Errorf(bedrock.InternalServerException,
			"Headroom cannot use its upstream %q at %s: %s; details are in the gateway log", ee.Upstream, ee.Host, ee.Hint)
	default:
		return &internalError{bedrock.Errorf(bedrock.ServiceUnavailableException, "%s", bedrock.MsgServiceUnavailable), err}
	}
	public.SetHeader(HeaderShouldRetry, "false")
	return &internalError{public, err}
}

// internalError is an error the client sees as public while the log gets
// the cause.
type internalError struct {
	public *bedrock.Error
	cause  error
}

func (e *internalError) Error() string { return e.public.Name + ": " + e.cause.Error() }
func (e *internalError) Unwrap() error { return e.public }
