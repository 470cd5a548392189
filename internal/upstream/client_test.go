package upstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// isolateAWS points the SDK's config loader at empty files and static
// credentials, so tests never read the developer's ~/.aws.
func isolateAWS(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

type seen struct {
	method, rawPath, query, auth, body string
	header                             http.Header
}

func recordServer(t *testing.T, status int, errType string) (*httptest.Server, chan seen) {
	t.Helper()
	ch := make(chan seen, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), string(b), r.Header.Clone()}
		if errType != "" {
			w.Header().Set("X-Amzn-ErrorType", errType)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func TestDoPathAndBearer(t *testing.T) {
	isolateAWS(t)
	srv, ch := recordServer(t, 200, "")
	c, err := New(context.Background(), Options{Name: "u", Region: "us-east-1", Endpoint: srv.URL, Auth: AuthAPIKey, APIKey: "brk-key"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		model    string
		op       bedrock.Operation
		wantPath string
	}{
		{"us.anthropic.claude-sonnet-4-20250514-v1:0", bedrock.OpInvoke, "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke"},
		{"anthropic.claude-haiku-4-5", bedrock.OpConverseStream, "/model/anthropic.claude-haiku-4-5/converse-stream"},
		{"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0", bedrock.OpInvokeStream,
			"/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream"},
		{"m", bedrock.OpCountTokens, "/model/m/count-tokens"},
	}
	for _, tt := range tests {
		h := http.Header{"Authorization": {"Bearer client-secret"}, "X-Amzn-Bedrock-Trace": {"ENABLED"}, "X-Headroom-Max-Wait": {"3"}}
		resp, err := c.Do(context.Background(), Call{Op: tt.op, ModelID: tt.model, Body: []byte(`{"max_tokens":1}`), Header: h})
		if err != nil {
			t.Fatal(err)
		}
		Drain(resp)
		got := <-ch
		if got.rawPath != tt.wantPath {
			t.Errorf("path = %q, want %q", got.rawPath, tt.wantPath)
		}
		if got.auth != "Bearer brk-key" {
			t.Errorf("Authorization = %q, want the upstream's own key", got.auth)
		}
		if got.header.Get("X-Amzn-Bedrock-Trace") != "ENABLED" || got.header.Get("X-Headroom-Max-Wait") != "" {
			t.Errorf("forwarded headers wrong: %v", got.header)
		}
		if got.body != `{"max_tokens":1}` {
			t.Errorf("body = %q", got.body)
		}
	}
}

func TestSigV4SignsWhatIsSent(t *testing.T) {
	isolateAWS(t)
	srv, ch := recordServer(t, 200, "")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c, err := New(context.Background(), Options{Name: "u", Region: "eu-west-1", Endpoint: srv.URL, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"anthropic_version":"bedrock-2023-05-31","max_tokens":10}`
	resp, err := c.Do(context.Background(), Call{Op: bedrock.OpInvoke, ModelID: "eu.anthropic.claude-sonnet-4-20250514-v1:0", Body: []byte(body),
		Header: http.Header{"Authorization": {"Bearer hr_client"}}})
	if err != nil {
		t.Fatal(err)
	}
	Drain(resp)
	got := <-ch
	wantPrefix := "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260301/eu-west-1/bedrock/aws4_request"
	if !strings.HasPrefix(got.auth, wantPrefix) {
		t.Fatalf("Authorization = %q, want prefix %q", got.auth, wantPrefix)
	}
	// Re-sign the request exactly as it arrived: the signature matches only
	// if the escaped path, headers and payload hash on the wire are what the
	// client signed.
	u := srv.URL + got.rawPath
	req, _ := http.NewRequest(got.method, u, strings.NewReader(got.body))
	for k, vs := range got.header {
		if k != "Authorization" && k != "Accept-Encoding" && k != "User-Agent" && k != "Content-Length" {
			req.Header[k] = vs
		}
	}
	sum := sha256hex([]byte(got.body))
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}, req, sum, "bedrock", "eu-west-1", now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(req.Header.Get("Authorization"), got.auth); diff != "" {
		t.Errorf("signature mismatch (-resigned +received):\n%s", diff)
	}
}

func TestControlPassThrough(t *testing.T) {
	isolateAWS(t)
	srv, ch := recordServer(t, 200, "")
	c, err := New(context.Background(), Options{Name: "u", Region: "us-west-2", Endpoint: srv.URL, Auth: AuthNone})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Control(context.Background(), "/inference-profiles", "type=SYSTEM_DEFINED")
	if err != nil {
		t.Fatal(err)
	}
	Drain(resp)
	got := <-ch
	if got.method != "GET" || got.rawPath != "/inference-profiles" || got.query != "type=SYSTEM_DEFINED" || got.auth != "" {
		t.Errorf("got %+v", got)
	}
}

// TestCABundle proves the client honours AWS_CA_BUNDLE: a TLS server with a
// self-signed certificate is reachable only through the bundle.
func TestCABundle(t *testing.T) {
	isolateAWS(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "{}") }))
	defer srv.Close()
	t.Setenv("AWS_CA_BUNDLE", writeCABundle(t, srv))
	// Both the SDK loader's path (SigV4) and the plain one (no AWS auth).
	for _, mode := range []AuthMode{AuthDefault, AuthNone} {
		c, err := New(context.Background(), Options{Name: "u", Region: "us-east-1", Endpoint: srv.URL, Auth: mode})
		if err != nil {
			t.Fatalf("%s: New with AWS_CA_BUNDLE: %v", mode, err)
		}
		resp, err := c.Do(context.Background(), Call{Op: bedrock.OpInvoke, ModelID: "m", Body: []byte("{}")})
		if err != nil {
			t.Fatalf("%s: call through the bundle's CA: %v", mode, err)
		}
		Drain(resp)
	}

	t.Setenv("AWS_CA_BUNDLE", "")
	c, err := New(context.Background(), Options{Name: "u", Region: "us-east-1", Endpoint: srv.URL, Auth: AuthNone})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := c.Do(context.Background(), Call{Op: bedrock.OpInvoke, ModelID: "m", Body: []byte("{}")}); err == nil {
		Drain(resp)
		t.Fatal("self-signed server trusted without the bundle")
	}
}

// writeCABundle writes srv's certificate to a PEM file for AWS_CA_BUNDLE
// and returns its path.
func writeCABundle(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(bundle, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return bundle
}

func TestNewErrors(t *testing.T) {
	isolateAWS(t)
	tests := []Options{
		{Name: "no-region"},
		{Name: "bad-endpoint", Region: "us-east-1", Endpoint: "ftp://x"},
		{Name: "no-key", Region: "us-east-1", Auth: AuthAPIKey},
		{Name: "no-profile", Region: "us-east-1", Auth: AuthProfile},
		{Name: "bad-mode", Region: "us-east-1", Auth: "magic"},
	}
	for _, o := range tests {
		if _, err := New(context.Background(), o); err == nil {
			t.Errorf("New(%s) succeeded, want an error", o.Name)
		}
	}
}

func TestDefaultEndpoints(t *testing.T) {
	isolateAWS(t)
	c, err := New(context.Background(), Options{Name: "u", Region: "ap-northeast-1"})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.runtime.String(), c.control.String()}
	want := []string{"https://bedrock-runtime.ap-northeast-1.amazonaws.com", "https://bedrock.ap-northeast-1.amazonaws.com"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Error(diff)
	}
	// Mantle's own host (BEDROCK.md section 6).
	m, err := New(context.Background(), Options{Name: "m", Region: "ap-northeast-1", Service: ServiceMantle})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.runtime.String(), "https://bedrock-mantle.ap-northeast-1.api.aws"; got != want {
		t.Errorf("Mantle endpoint %s, want %s", got, want)
	}
}

// TestMantleSigning: a Messages call to a Mantle upstream goes to
// /anthropic/v1/messages with the anthropic-version header, signed with
// SigV4 under Mantle's service name (the signature re-computed from what
// arrived matches only with "bedrock-mantle"), or with the upstream's
// Bedrock API key; the client's own credentials never go upstream.
func TestMantleSigning(t *testing.T) {
	isolateAWS(t)
	srv, ch := recordServer(t, 200, "")
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	body := `{"model":"anthropic.claude-opus-4-7","max_tokens":10,"messages":[]}`
	clientAuth := http.Header{"Authorization": {"Bearer hr_client"}, "X-Api-Key": {"hr_client"}}

	c, err := New(context.Background(), Options{Name: "m", Region: "us-west-2", Endpoint: srv.URL, Service: ServiceMantle, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(context.Background(), Call{Op: bedrock.OpMessages, Body: []byte(body), Header: clientAuth, Beta: true})
	if err != nil {
		t.Fatal(err)
	}
	Drain(resp)
	got := <-ch
	if got.rawPath != "/anthropic/v1/messages" || got.query != "beta=true" || got.header.Get("Anthropic-Version") != MantleVersion {
		t.Errorf("sent %s?%s with anthropic-version %q; want /anthropic/v1/messages?beta=true with %s", got.rawPath, got.query, got.header.Get("Anthropic-Version"), MantleVersion)
	}
	wantPrefix := "AWS4-HMAC-SHA256 Credential=AKIDTEST/20261201/us-west-2/bedrock-mantle/aws4_request"
	if !strings.HasPrefix(got.auth, wantPrefix) {
		t.Fatalf("Authorization = %q, want prefix %q", got.auth, wantPrefix)
	}
	if got.header.Get("X-Api-Key") != "" {
		t.Errorf("the client's x-api-key went upstream")
	}
	req, _ := http.NewRequest(got.method, srv.URL+got.rawPath+"?"+got.query, strings.NewReader(got.body))
	for k, vs := range got.header {
		if k != "Authorization" && k != "Accept-Encoding" && k != "User-Agent" && k != "Content-Length" {
			req.Header[k] = vs
		}
	}
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}, req, sha256hex([]byte(got.body)), "bedrock-mantle", "us-west-2", now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(req.Header.Get("Authorization"), got.auth); diff != "" {
		t.Errorf("signature mismatch (-resigned +received):\n%s", diff)
	}

	k, err := New(context.Background(), Options{Name: "mk", Region: "us-west-2", Endpoint: srv.URL, Service: ServiceMantle, Auth: AuthAPIKey, APIKey: "brk-mantle"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err = k.Do(context.Background(), Call{Op: bedrock.OpMessages, Body: []byte(body), Header: clientAuth})
	if err != nil {
		t.Fatal(err)
	}
	Drain(resp)
	got = <-ch
	if got.auth != "Bearer brk-mantle" || got.header.Get("X-Api-Key") != "" || got.rawPath != "/anthropic/v1/messages" {
		t.Errorf("API-key call: Authorization %q, x-api-key %q, path %s; want the upstream's own key only, at /anthropic/v1/messages", got.auth, got.header.Get("X-Api-Key"), got.rawPath)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		status  int
		errType string
		want    Class
	}{
		{200, "", Success},
		{429, "ThrottlingException", Throttled},
		{429, "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/", Throttled},
		{429, "ModelNotReadyException", Retryable},
		{503, "ServiceUnavailableException", Retryable},
		{500, "InternalServerException", Retryable},
		{500, "SomethingElse", Fatal},
		{400, "ValidationException", Fatal},
		{403, "AccessDeniedException", Fatal},
		{404, "ResourceNotFoundException", Fatal},
		{424, "ModelErrorException", Fatal},
		{408, "ModelTimeoutException", Fatal},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.errType != "" {
			h.Set("X-Amzn-ErrorType", tt.errType)
		}
		if got := Classify(tt.status, h); got != tt.want {
			t.Errorf("Classify(%d, %q) = %v, want %v", tt.status, tt.errType, got, tt.want)
		}
	}
	if got := ClassifyError(context.Canceled); got != Fatal {
		t.Errorf("ClassifyError(Canceled) = %v", got)
	}
	if got := ClassifyError(io.ErrUnexpectedEOF); got != Retryable {
		t.Errorf("ClassifyError(EOF) = %v", got)
	}
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestMissingCredentials(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	srv, _ := recordServer(t, 200, "")
	c, err := New(context.Background(), Options{Name: "u", Region: "us-east-1", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Do(context.Background(), Call{Op: bedrock.OpInvoke, ModelID: "m", Body: []byte("{}")})
	if ce := (*CredentialsError)(nil); !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *CredentialsError", err)
	}
}

// TestNoneIgnoresProfile: an upstream that uses no AWS credentials works
// whatever AWS_PROFILE says.
func TestNoneIgnoresProfile(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_PROFILE", "does-not-exist")
	if _, err := New(context.Background(), Options{Name: "u", Region: "us-east-1", Auth: AuthNone}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), Options{Name: "u", Region: "us-east-1"}); err == nil {
		t.Fatal("default auth with a missing profile succeeded")
	}
}
