package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/claudecodetest"
	"github.com/headroomhq/headroom/internal/upstream"
	"github.com/headroomhq/headroom/internal/upstream/upstreamtest"
)

// brokenUpstream is a harness whose upstream client cannot work: its AWS
// credentials are missing, or its endpoint's certificate is untrusted. sent
// counts the requests that reached an upstream.
func brokenUpstream(t *testing.T, kind string) (h *harness, sent *atomic.Int64) {
	t.Helper()
	sent = new(atomic.Int64)
	h = newHarness(t, harnessOpts{upstream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	})})
	o := upstream.Options{Name: "emu", Region: region, Endpoint: h.emuURL}
	switch kind {
	case "credentials":
		upstreamtest.NoCredentials(t, "", "")
		o.Auth = upstream.AuthDefault
	case "certificate":
		// A TLS server whose certificate no CA bundle holds.
		ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sent.Add(1) }))
		ts.Config.ErrorLog = log.New(io.Discard, "", 0)
		ts.StartTLS()
		t.Cleanup(ts.Close)
		o.Endpoint, o.Auth = ts.URL, upstream.AuthNone
	}
	c, err := upstream.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	h.up.Client = c // before any request: no race
	// Claude Code calls models the test buckets do not mirror; this test
	// is about the upstream's setup, not the mirror.
	h.up.AllowUnmatched = true
	return h, sent
}

// TestUpstreamSetupFailsFast: when the gateway's own upstream setup is
// broken (no AWS credentials, an untrusted certificate), a client gets an
// InternalServerException marked not to retry within well under a second,
// instead of the gateway retrying until the client's 60 s deadline; the
// message names the upstream and the fix but not the SDK's detail; nothing
// reaches the upstream, nothing is retried, and the ledger is as before.
func TestUpstreamSetupFailsFast(t *testing.T) {
	for _, kind := range []string{"credentials", "certificate"} {
		t.Run(kind, func(t *testing.T) {
			h, sent := brokenUpstream(t, kind)
			// The error the gateway sees, for what must not leak.
			_, cause := h.up.Client.Do(context.Background(), upstream.Call{Op: bedrock.OpInvoke, ModelID: sonnet, Body: []byte("{}")})
			var hint string
			var ce *upstream.CredentialsError
			var ee *upstream.EndpointError
			switch {
			case errors.As(cause, &ce):
				hint, cause = ce.Hint, ce.Err
			case errors.As(cause, &ee):
				hint, cause = ee.Hint, ee.Err
			default:
				t.Fatalf("Do: %v, want a *CredentialsError or *EndpointError", cause)
			}
			before := h.ledger()

			// A 10 s client timeout: were the gateway to retry until the
			// deadline, the test fails in 10 s rather than hanging for 60.
			client := &http.Client{Timeout: 10 * time.Second}
			req, err := http.NewRequest(http.MethodPost, h.gwURL+"/model/"+sonnet+"/invoke", strings.NewReader(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+h.secret["alice"])
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			elapsed := time.Since(start)

			var msg struct{ Message string }
			_ = json.Unmarshal(body, &msg)
			got := []string{resp.Status, resp.Header.Get(bedrock.HeaderErrorType), resp.Header.Get(HeaderShouldRetry)}
			want := []string{"500 Internal Server Error", bedrock.InternalServerException, "false"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s\nbody %s", diff, body)
			}
			if !strings.Contains(msg.Message, `"emu"`) || !strings.Contains(msg.Message, hint) {
				t.Errorf("message %q does not name the upstream and the hint %q", msg.Message, hint)
			}
			if strings.Contains(msg.Message, cause.Error()) {
				t.Errorf("message %q carries the SDK's detail", msg.Message)
			}
			if elapsed > time.Second {
				t.Errorf("answered after %v, want well under a second", elapsed)
			}
			if n := sent.Load(); n != 0 {
				t.Errorf("%d requests reached the upstream, want 0", n)
			}
			if n := counterSum(t, h, "headroom_upstream_retries_total"); n != 0 {
				t.Errorf("%v upstream retries, want 0", n)
			}
			if diff := cmp.Diff(before, h.ledger()); diff != "" {
				t.Errorf("ledger changed (-before +after):\n%s", diff)
			}
		})
	}
}

// counterSum adds up every series of a counter.
func counterSum(t *testing.T, h *harness, name string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// TestClaudeCodeStopsOnMissingCredentials: Claude Code with its default
// retries, pointed at a gateway without AWS credentials, sends its
// conversation call once and shows the gateway's message, instead of
// retrying for minutes (as it does on a 403 or a bare 500).
func TestClaudeCodeStopsOnMissingCredentials(t *testing.T) {
	claude := claudecodetest.Binary(t)
	h, _ := brokenUpstream(t, "credentials")
	var streams atomic.Int64
	gs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/invoke-with-response-stream") {
			streams.Add(1)
		}
		h.gw.ServeHTTP(w, r)
	}))
	t.Cleanup(gs.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	res, ok := claudecodetest.Run(ctx, t, claude, gs.URL, h.secret["alice"], "Say hello.")
	elapsed := time.Since(start)
	if !ok {
		t.Fatalf("no JSON result from Claude Code after %v:\n%s\n%s", elapsed, res.Stdout, res.Stderr)
	}
	status := 0
	if res.APIErrorStatus != nil {
		status = *res.APIErrorStatus
	}
	if !res.IsError || status != http.StatusInternalServerError || !strings.Contains(res.Result, "could not get AWS credentials") {
		t.Errorf("Claude Code: is_error %v, api_error_status %d, result %q; want the gateway's 500", res.IsError, status, res.Result)
	}
	if n := streams.Load(); n != 1 {
		t.Errorf("Claude Code sent %d streaming calls, want 1 (no retry)", n)
	}
	t.Logf("Claude Code gave up after %v", elapsed)
}
