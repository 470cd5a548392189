package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/upstream/upstreamtest"
)

func TestClassifyError(t *testing.T) {
	creds := &CredentialsError{Upstream: "u", Err: errors.New("no EC2 IMDS role found")}
	unknownCA := &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"credentials", creds, Fatal},
		{"wrapped credentials", fmt.Errorf("gateway: %w", creds), Fatal},
		{"endpoint", &EndpointError{Upstream: "u", Err: unknownCA}, Fatal},
		{"tls unknown authority", unknownCA, Fatal},
		{"tls unknown authority in url.Error", &url.Error{Op: "Post", URL: "https://x", Err: unknownCA}, Fatal},
		{"x509 unknown authority", fmt.Errorf("x: %w", x509.UnknownAuthorityError{}), Fatal},
		{"x509 expired", x509.CertificateInvalidError{Reason: x509.Expired}, Fatal},
		{"x509 hostname", fmt.Errorf("x: %w", x509.HostnameError{Host: "bedrock"}), Fatal},
		{"no such host", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}, Fatal},
		{"resolver timeout", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "i/o timeout", Name: "x", IsTimeout: true}}, Retryable},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, Retryable},
		{"connection reset", fmt.Errorf("upstream: %w", syscall.ECONNRESET), Retryable},
		{"unexpected EOF", io.ErrUnexpectedEOF, Retryable},
		{"context canceled", fmt.Errorf("x: %w", context.Canceled), Fatal},
		{"deadline exceeded", context.DeadlineExceeded, Fatal},
	}
	for _, tt := range tests {
		if got := ClassifyError(tt.err); got != tt.want {
			t.Errorf("%s: ClassifyError(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// noCredentials isolates the SDK's credential chain from this machine
// (upstreamtest.NoCredentials).
func noCredentials(t *testing.T, config, credentials string) {
	t.Helper()
	upstreamtest.NoCredentials(t, config, credentials)
}

// stsDenies is an STS endpoint that refuses every AssumeRole as real STS
// does, and counts the calls.
func stsDenies(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>`+
			`<Code>AccessDenied</Code><Message>not authorized to perform: sts:AssumeRole</Message></Error><RequestId>r</RequestId></ErrorResponse>`)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestCredentialsFailFast: when the credential chain cannot produce
// credentials, Do fails at once with a *CredentialsError (Fatal, with a
// hint for the operator) and sends nothing upstream.
func TestCredentialsFailFast(t *testing.T) {
	const sso = "[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Dev\nregion = us-east-1\n" +
		"[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n"
	const role = "[profile ci]\nrole_arn = arn:aws:iam::111122223333:role/ci\nsource_profile = base\n"
	const base = "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = secret\n"
	tests := []struct {
		name          string
		config, creds string
		auth          AuthMode
		profile       string
		sts           bool // AWS_ENDPOINT_URL_STS points at a server that denies AssumeRole
		wantHint      string
		wantSTSCalls  int64
	}{
		{name: "default chain, nothing configured", auth: AuthDefault,
			wantHint: credentialsHint(aws.Config{})},
		{name: "SSO profile never logged in", config: sso, auth: AuthProfile, profile: "dev",
			wantHint: "run `aws sso login --profile dev` on the gateway host"},
		{name: "assume role denied", config: role, creds: base, auth: AuthProfile, profile: "ci", sts: true,
			wantHint: "check that profile \"ci\" can assume its role: `aws sts get-caller-identity --profile ci`", wantSTSCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noCredentials(t, tt.config, tt.creds)
			var stsCalls *atomic.Int64
			if tt.sts {
				var sts *httptest.Server
				sts, stsCalls = stsDenies(t)
				t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
			}
			var sent atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sent.Add(1) }))
			t.Cleanup(srv.Close)
			c, err := New(context.Background(), Options{Name: "u", Region: "us-east-1", Endpoint: srv.URL, Auth: tt.auth, Profile: tt.profile})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			_, err = c.Do(ctx, Call{Op: bedrock.OpInvoke, ModelID: "m", Body: []byte("{}")})
			elapsed := time.Since(start)
			t.Logf("Do: %v", err)
			var ce *CredentialsError
			if !errors.As(err, &ce) {
				t.Fatalf("Do: %v, want a *CredentialsError", err)
			}
			if got := ClassifyError(err); got != Fatal {
				t.Errorf("ClassifyError = %v, want fatal", got)
			}
			if diff := cmp.Diff(tt.wantHint, ce.Hint); diff != "" {
				t.Errorf("hint (-want +got):\n%s", diff)
			}
			if ce.Upstream != "u" || ce.Err == nil {
				t.Errorf("CredentialsError{Upstream: %q, Err: %v}, want upstream u and the SDK's error", ce.Upstream, ce.Err)
			}
			if n := sent.Load(); n != 0 {
				t.Errorf("%d requests reached the upstream, want 0", n)
			}
			if stsCalls != nil && stsCalls.Load() != tt.wantSTSCalls {
				t.Errorf("%d AssumeRole calls, want %d (no retry of a denial)", stsCalls.Load(), tt.wantSTSCalls)
			}
			if elapsed > 2*time.Second {
				t.Errorf("Do took %v, want a fast failure", elapsed)
			}
		})
	}
}

// TestProfileMissing: a profile that exists in no file fails at New, at
// startup, not on the first call.
func TestProfileMissing(t *testing.T) {
	noCredentials(t, "[profile other]\nregion = us-east-1\n", "")
	_, err := New(context.Background(), Options{Name: "u", Region: "us-east-1", Auth: AuthProfile, Profile: "nope"})
	var pe awsconfig.SharedConfigProfileNotExistError
	if !errors.As(err, &pe) || pe.Profile != "nope" {
		t.Fatalf("New: %v, want a SharedConfigProfileNotExistError for profile nope", err)
	}
}

// TestUntrustedCertificate: an endpoint whose certificate the CA bundle
// does not trust fails with a Fatal *EndpointError. AWS_CA_BUNDLE stays
// whatever this machine sets; the test server's certificate is in no
// bundle.
func TestUntrustedCertificate(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake the client aborts
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c, err := New(context.Background(), Options{Name: "u", Region: "us-east-1", Endpoint: srv.URL, Auth: AuthNone})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Do(context.Background(), Call{Op: bedrock.OpInvoke, ModelID: "m", Body: []byte("{}")})
	var ee *EndpointError
	if !errors.As(err, &ee) {
		t.Fatalf("Do: %v, want an *EndpointError", err)
	}
	got := []string{ee.Upstream, ee.Host, ee.Hint, ClassifyError(err).String()}
	want := []string{"u", srv.Listener.Addr().String(), hintTLS, "fatal"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestCheckCredentials: the start-up check finds what Do would find, and
// says nothing for modes that use no AWS credentials.
func TestCheckCredentials(t *testing.T) {
	const static = "[default]\naws_access_key_id = AKIDSTATIC\naws_secret_access_key = secret\n"
	tests := []struct {
		name     string
		creds    string
		auth     AuthMode
		wantFail bool
	}{
		{name: "default chain, nothing configured", auth: AuthDefault, wantFail: true},
		{name: "default chain, static keys", creds: static, auth: AuthDefault},
		{name: "no AWS credentials used", auth: AuthNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noCredentials(t, "", tt.creds)
			c, err := New(context.Background(), Options{Name: "u", Region: "us-east-1", Endpoint: "http://127.0.0.1:1", Auth: tt.auth})
			if err != nil {
				t.Fatal(err)
			}
			err = c.CheckCredentials(context.Background())
			var ce *CredentialsError
			if got := errors.As(err, &ce); got != tt.wantFail {
				t.Fatalf("CheckCredentials = %v, want a *CredentialsError: %v", err, tt.wantFail)
			}
			if tt.wantFail && (ce.Upstream != "u" || ce.Hint == "") {
				t.Errorf("CredentialsError{Upstream: %q, Hint: %q}, want upstream u and a hint", ce.Upstream, ce.Hint)
			}
		})
	}
}
