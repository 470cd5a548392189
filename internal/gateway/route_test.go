package gateway

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
)

// TestRouteFirstRegionDrained: another client of the account drained
// east's per-minute quota, which the gateway's mirror cannot see. Every
// request still completes, none gets a 429: the ones east throttles move to
// west before the first byte, and after three throttles in a row east is
// out of the route and requests go straight to west.
func TestRouteFirstRegionDrained(t *testing.T) {
	t.Parallel()
	h := newRouteHarness(t, routeOpts{emu: map[string][]config.Bucket{"us-east-1": testBuckets(30_000, 100_000_000)}})
	// Drain east directly at the emulator, as another client would.
	req, _ := http.NewRequest(http.MethodPost, h.emuURL+"/region/us-east-1/model/"+sonnet+"/invoke", strings.NewReader(fmt.Sprintf(smallMsg, 4096)))
	req.Header.Set(emulator.HeaderOutputTokens, "4096") // 4,096 x 5 of 30,000: too little left for another
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("draining east: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	drained := h.calls("us-east-1")

	const n = 10
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		if i == 4 {
			wg.Wait() // the first four one at a time: east's breaker trips on the third
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := h.post(sonnet, 100, nil)
			codes[i] = resp.StatusCode
			if resp.StatusCode != http.StatusOK {
				t.Errorf("request %d: %d %s", i, resp.StatusCode, body)
			}
		}()
		if i < 4 {
			wg.Wait()
		}
	}
	wg.Wait()
	if got := h.calls("us-east-1") - drained; got != 3 {
		t.Errorf("east got %d calls, want 3 (then its breaker takes it out)", got)
	}
	if h.th429.Load() == 0 {
		t.Fatal("east never throttled: the test drained nothing")
	}
	if got := h.routed("west", ReasonFailover); got != 3 {
		t.Errorf("west served %v requests by failover, want 3", got)
	}
	if got := h.routed("west", ReasonPreferredOut); got != n-3 {
		t.Errorf("west served %v requests with east out, want %d", got, n-3)
	}
	st := h.status()
	if st["east"].State != BreakerOut || st["east"].Cause != causeThrottled {
		t.Errorf("east's routing status %+v, want out after throttles", st["east"])
	}
	if st["west"].Served[ReasonFailover] != 3 {
		t.Errorf("west's status served %v", st["west"].Served)
	}
	if got := testutil.ToFloat64(h.gw.m.UpstreamOut.WithLabelValues("east")); got != 1 {
		t.Errorf("headroom_upstream_out{upstream=east} = %v, want 1", got)
	}
	waitFor(t, "the ledgers to be empty", func() bool { return h.reserved() == 0 })
}

// TestRouteOverflowNotQueued: east's mirror is exact and full with a
// request in flight; the next request goes to west at once rather than
// waiting for east, and no upstream throttles.
func TestRouteOverflowNotQueued(t *testing.T) {
	t.Parallel()
	// A request reserves at least 4,096 x 5 (the seed's floor and Sonnet 4's
	// burndown): east admits one at a time.
	small := map[string][]config.Bucket{"us-east-1": testBuckets(30_000, 100_000_000)}
	h := newRouteHarness(t, routeOpts{emu: small, mirror: small, gen: func(g *config.Generation) {
		g.TimeToFirstToken = config.Duration{Duration: 400 * time.Millisecond}
	}})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, body := h.post(sonnet, 250, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
		}()
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	if got := h.th429.Load(); got != 0 {
		t.Errorf("%d upstream 429s, want none (the mirror is exact)", got)
	}
	if e, w := h.routed("east", ReasonPreferred), h.routed("west", ReasonOverflow); e != 1 || w != 1 {
		t.Errorf("east preferred %v, west overflow %v; want 1 and 1 (west had room while east was full)", e, w)
	}
}

// TestFailoverBeforeFirstByte: an upstream that fails before answering
// (503, a dropped connection) hands the request to the next; a credential
// error is passed on, not retried elsewhere; a stream already started is
// never retried.
func TestFailoverBeforeFirstByte(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		fault      string
		stream     bool
		status     int
		westCalls  int64
		failedOver bool
	}{
		{fault: "503", status: 200, westCalls: 1, failedOver: true},
		{fault: "reset", status: 200, westCalls: 1, failedOver: true},
		{fault: "429", stream: true, status: 200, westCalls: 1, failedOver: true},
		{fault: "403", status: 403, westCalls: 0},
		{fault: "cut", stream: true, status: 200, westCalls: 0},
	} {
		t.Run(tt.fault, func(t *testing.T) {
			h := newRouteHarness(t, routeOpts{fault: func(region string, n int64) string {
				if region == "us-east-1" {
					return tt.fault
				}
				return ""
			}})
			path := "/model/" + sonnet + "/invoke"
			if tt.stream {
				path = "/model/" + sonnet + "/invoke-with-response-stream"
			}
			resp, body := h.postPath(path, 100, map[string]string{emulator.HeaderOutputTokens: "200"})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if got := h.calls("us-east-1"); got != 1 {
				t.Errorf("east got %d calls, want 1 (no retry on the failing upstream while another has room)", got)
			}
			if got := h.calls("us-west-2"); got != tt.westCalls {
				t.Errorf("west got %d calls, want %d", got, tt.westCalls)
			}
			if got := h.routed("west", ReasonFailover) == 1; got != tt.failedOver {
				t.Errorf("failover to west counted: %v, want %v", got, tt.failedOver)
			}
			if tt.fault == "cut" && !bytes.Contains(body, []byte("throttlingException")) {
				t.Errorf("the cut stream does not end with the upstream's exception: %q", body)
			}
			if tt.fault == "403" && !bytes.Contains(body, []byte("security token")) {
				t.Errorf("the credential error was not passed on: %s", body)
			}
			waitFor(t, "the ledgers to be empty", func() bool { return h.reserved() == 0 })
		})
	}
}

// TestProvisioningBugRegionTakenOut: east's applied daily quota is 0 (the
// seed's provisioning bug) while the operator's configuration says
// otherwise. The first request east answers "Too many tokens per day" is
// served by west, east is taken out of the route at once and reported in
// /v1/status, /metrics and the log, and west serves the rest.
func TestProvisioningBugRegionTakenOut(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	h := newRouteHarness(t, routeOpts{
		emu: map[string][]config.Bucket{"us-east-1": testBuckets(1_000_000, 0)},
		log: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	for i := range 5 {
		if resp, body := h.post(sonnet, 100, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if got := h.calls("us-east-1"); got != 1 {
		t.Errorf("east got %d calls, want 1 (out after its daily throttle)", got)
	}
	st := h.status()["east"]
	if st.State != BreakerOut || st.Cause != causeDailyQuota || st.OutSince.IsZero() {
		t.Errorf("east's routing status %+v, want out for its daily quota", st)
	}
	if got := testutil.ToFloat64(h.gw.m.UpstreamOut.WithLabelValues("east")); got != 1 {
		t.Errorf("headroom_upstream_out{upstream=east} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.gw.m.UpstreamOut.WithLabelValues("west")); got != 0 {
		t.Errorf("headroom_upstream_out{upstream=west} = %v, want 0", got)
	}
	out := logs.String()
	if !strings.Contains(out, `msg="upstream taken out of its routes" upstream=east cause=daily_quota`) {
		t.Errorf("no log line takes east out:\n%s", out)
	}
	if !strings.Contains(out, "upstream=west") || !strings.Contains(out, "route=preferred_out") {
		t.Errorf("request lines do not say west served with east out:\n%s", out)
	}
}

// TestRouteWeightsAndAffinity: weights 1:3 give west three first choices
// in four; a session sticks to the upstream that served it last.
func TestRouteWeightsAndAffinity(t *testing.T) {
	t.Parallel()
	h := newRouteHarness(t, routeOpts{routing: func(string, string) RouteOptions {
		return RouteOptions{Weights: map[string]float64{"east": 1, "west": 3}, Affinity: true}
	}})
	for range 8 {
		if resp, body := h.post(sonnet, 100, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	if e, w := h.routed("east", ReasonWeighted), h.routed("west", ReasonWeighted); e != 2 || w != 6 {
		t.Errorf("weighted first choices east %v, west %v; want 2 and 6", e, w)
	}
	sess := map[string]string{HeaderSession: "4f1c2a"}
	h.post(sonnet, 100, sess)
	first := h.gw.sessions.get("4f1c2a")
	for range 4 {
		h.post(sonnet, 100, sess)
	}
	if got := h.routed(first, ReasonAffinity); got != 4 {
		t.Errorf("%s served %v requests of the session by affinity, want 4", first, got)
	}
}

// TestRouteModelRewrite: west is asked for the global profile of the
// model the client named with the us. prefix; the log keeps the client's.
func TestRouteModelRewrite(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	h := newRouteHarness(t, routeOpts{
		prefix: map[string]string{"west": "global"},
		fault: func(region string, _ int64) string {
			if region == "us-east-1" {
				return "503"
			}
			return ""
		},
		log: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if resp, body := h.post(sonnet, 100, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	h.mu.Lock()
	seen := h.seen["us-west-2"]
	h.mu.Unlock()
	want := "global." + strings.TrimPrefix(sonnet, "us.")
	if len(seen) != 1 || seen[0] != want {
		t.Errorf("west was asked for %v, want [%s]", seen, want)
	}
	if out := logs.String(); !strings.Contains(out, "model="+sonnet) || !strings.Contains(out, "upstream_model="+want) {
		t.Errorf("the request line does not keep the client's model and the one sent:\n%s", out)
	}
}

var _ = bedrock.MsgTooManyTokensPerDay
