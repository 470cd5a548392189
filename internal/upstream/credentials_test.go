package upstream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// flakyChain is a credential provider that fails while broken is set, and
// counts how often it is asked.
type flakyChain struct {
	broken atomic.Bool
	calls  atomic.Int64
}

func (p *flakyChain) Retrieve(ctx context.Context) (aws.Credentials, error) {
	p.calls.Add(1)
	if err := ctx.Err(); err != nil {
		return aws.Credentials{}, err
	}
	if p.broken.Load() {
		return aws.Credentials{}, errors.New("no credentials here")
	}
	return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret", Source: "test"}, nil
}

// TestCredentialFailureRemembered: while the chain is failing, it is asked
// at most once per credentialsRetryAfter and the requests in between fail at
// once with the same error; a request's own cancellation is not taken for
// the chain's failure; once the chain works again, so do requests.
func TestCredentialFailureRemembered(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent.Add(1)
		_, _ = w.Write([]byte("{}"))
	}))
	t.Cleanup(srv.Close)
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	c, err := New(context.Background(), Options{Name: "u", Region: "us-east-1", Endpoint: srv.URL, Auth: AuthNone,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	chain := &flakyChain{}
	chain.broken.Store(true)
	c.auth, c.creds, c.signer, c.credsHint = AuthDefault, chain, v4.NewSigner(), "log in"
	do := func() error {
		resp, err := c.Do(context.Background(), Call{Op: bedrock.OpInvoke, ModelID: "m", Body: []byte("{}")})
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	// A cancelled request fails without leaving a remembered failure.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Do(cancelled, Call{Op: bedrock.OpInvoke, ModelID: "m", Body: []byte("{}")}); err == nil {
		t.Fatal("Do with a cancelled context succeeded")
	}
	steps := []struct {
		advance   time.Duration
		broken    bool
		wantCalls int64 // chain lookups so far
		wantErr   bool
	}{
		{0, true, 2, true},                                       // asks the chain: fails
		{time.Second, true, 2, true},                             // remembered: not asked
		{credentialsRetryAfter - time.Second - 1, true, 2, true}, // still remembered
		{1, true, 3, true},                                       // retry time reached: asked again
		{time.Second, false, 3, true},                            // fixed, but the failure still stands
		{credentialsRetryAfter, false, 4, false},                 // asked again: works
		{time.Second, false, 5, false},                           // success is not remembered by us (the SDK caches)
	}
	for i, st := range steps {
		now = now.Add(st.advance)
		chain.broken.Store(st.broken)
		err := do()
		var ce *CredentialsError
		if got := errors.As(err, &ce); got != st.wantErr {
			t.Fatalf("step %d: Do = %v, want a *CredentialsError: %v", i, err, st.wantErr)
		}
		if got := chain.calls.Load(); got != st.wantCalls {
			t.Errorf("step %d: %d chain lookups, want %d", i, got, st.wantCalls)
		}
	}
	if got := sent.Load(); got != 2 {
		t.Errorf("%d requests reached the upstream, want 2 (the two with credentials)", got)
	}
}
