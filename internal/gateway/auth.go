package gateway

import (
	"context"
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

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// authenticate returns the request's key, or an AccessDeniedException.
func (g *Gateway) authenticate(r *http.Request) (keys.Key, error) {
	secret := secretOf(r)
	if secret == "" {
		return keys.Key{}, bedrock.Errorf(bedrock.AccessDeniedException,
			"Missing Headroom key: send it as AWS_BEARER_TOKEN_BEDROCK (Authorization: Bearer) or as the SigV4 access key ID")
	}
	k, err := g.keys.Authenticate(r.Context(), secret)
	switch {
	case errors.Is(err, keys.ErrRevoked):
		return keys.Key{}, bedrock.Errorf(bedrock.AccessDeniedException, "This Headroom key has been revoked")
	case errors.Is(err, keys.ErrUnknown):
		return keys.Key{}, bedrock.Errorf(bedrock.AccessDeniedException, "The Headroom key is not valid")
	case err != nil:
		// The store failed: not the client's fault, and worth a retry.
		return keys.Key{}, &internalError{bedrock.Errorf(bedrock.ServiceUnavailableException, "%s", bedrock.MsgServiceUnavailable), err}
	}
	return k, nil
}

// upstreamUnavailable maps a call that got no answer at all: a transport
// failure is a ServiceUnavailableException (retryable), unusable
// credentials are the operator's problem and an InternalServerException.
func upstreamUnavailable(err error) error {
	if upstream.IsCredentials(err) {
		return &internalError{bedrock.Errorf(bedrock.InternalServerException,
			"Headroom could not sign the request for Bedrock: the gateway's AWS credentials need attention"), err}
	}
	return &internalError{bedrock.Errorf(bedrock.ServiceUnavailableException, "%s", bedrock.MsgServiceUnavailable), err}
}

// internalError is an error the client sees as public while the log gets
// the cause.
type internalError struct {
	public *bedrock.Error
	cause  error
}

func (e *internalError) Error() string { return e.public.Name + ": " + e.cause.Error() }
func (e *internalError) Unwrap() error { return e.public }
