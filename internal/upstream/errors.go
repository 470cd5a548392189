package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

// CredentialsError means the upstream's AWS credentials could not be
// retrieved: none configured, an SSO session that expired or never logged
// in, a role that cannot be assumed. Do returns it before sending anything.
// It is the gateway operator's to fix, not the client's, and no retry helps
// until someone acts, so ClassifyError calls it Fatal.
type CredentialsError struct {
	Upstream string
	// Hint says what the operator can do, such as "run `aws sso login
	// --profile dev`". It names no secret and is safe to show a client.
	Hint string
	// Err is the SDK's error; it may name files, roles and accounts, so
	// it belongs in the log only.
	Err error
}

func (e *CredentialsError) Error() string {
	return fmt.Sprintf("upstream %q: could not get AWS credentials: %v; %s", e.Upstream, e.Err, e.Hint)
}

func (e *CredentialsError) Unwrap() error { return e.Err }

// EndpointError means the upstream's endpoint cannot be used as configured:
// its TLS certificate failed verification (a wrong AWS_CA_BUNDLE, an
// intercepting proxy, a host that is not Bedrock) or its host name does not
// exist. Like a CredentialsError it is the operator's to fix and Fatal.
type EndpointError struct {
	Upstream string
	// Host is the endpoint's host[:port], never its full URL (which could
	// carry user information).
	Host string
	// Hint says what the operator can check; safe to show a client.
	Hint string
	Err  error
}

func (e *EndpointError) Error() string {
	return fmt.Sprintf("upstream %q: endpoint %s: %v; %s", e.Upstream, e.Host, e.Err, e.Hint)
}

func (e *EndpointError) Unwrap() error { return e.Err }

// Hints for EndpointError.
const (
	hintTLS = "check the upstream endpoint and AWS_CA_BUNDLE (a bundle replaces the system roots)"
	hintDNS = "check the upstream endpoint and region"
)

// transportError wraps the error of a call that got no answer: the
// failures a retry cannot fix become an *EndpointError.
func (c *Client) transportError(host string, err error) error {
	switch {
	case badCertificate(err):
		return &EndpointError{Upstream: c.name, Host: host, Hint: hintTLS, Err: err}
	case unknownHost(err):
		return &EndpointError{Upstream: c.name, Host: host, Hint: hintDNS, Err: err}
	}
	return fmt.Errorf("upstream %q: %w", c.name, err)
}

// misconfigured reports whether err is a failure of the gateway's own setup
// (credentials, CA bundle, endpoint) that no retry can fix.
func misconfigured(err error) bool {
	var ce *CredentialsError
	var ee *EndpointError
	return errors.As(err, &ce) || errors.As(err, &ee) || badCertificate(err) || unknownHost(err)
}

// badCertificate reports whether err is a TLS certificate verification
// failure (crypto/tls wraps the x509 error in CertificateVerificationError
// since Go 1.20; the bare x509 types are checked too).
func badCertificate(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &he)
}

// unknownHost reports whether err is a DNS answer that the host does not
// exist (a mistyped endpoint or region). A resolver that timed out or
// failed is not: that may pass.
func unknownHost(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// credentialsHint says what an operator can do when the credential chain
// fails, from the shared-config profile the SDK loaded (AWS_PROFILE or
// Options.Profile).
func credentialsHint(cfg aws.Config) string {
	var sc awsconfig.SharedConfig
	for _, s := range cfg.ConfigSources {
		if v, ok := s.(awsconfig.SharedConfig); ok {
			sc = v
		}
	}
	p := sc.Profile
	switch {
	case p == "":
		return "configure AWS credentials for the gateway (AWS_PROFILE, `aws configure`, `aws sso login` or an instance role); `aws sts get-caller-identity` shows what the SDK finds"
	case sc.SSOSessionName != "" || sc.SSOStartURL != "" || sc.Source != nil && (sc.Source.SSOSessionName != "" || sc.Source.SSOStartURL != ""):
		return fmt.Sprintf("run `aws sso login --profile %s` on the gateway host", p)
	case sc.RoleARN != "":
		return fmt.Sprintf("check that profile %q can assume its role: `aws sts get-caller-identity --profile %s`", p, p)
	}
	return fmt.Sprintf("configure AWS credentials for profile %q (`aws configure --profile %s`, `aws sso login --profile %s` or an instance role); `aws sts get-caller-identity --profile %s` shows what the SDK finds", p, p, p, p)
}
