package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/keys"
)

// TestGatewayThrottles: when a request cannot be admitted before its
// deadline the gateway answers Bedrock's 429 itself, with what Bedrock
// never sends: Retry-After from the ledger, who throttled, and for a spent
// daily budget x-should-retry: false.
func TestGatewayThrottles(t *testing.T) {
	t.Parallel()
	// One reservation (7 + 4,096 × 5 = 20,487) fits the minute bucket, two do not.
	h := newHarness(t, harnessOpts{
		buckets: testBuckets(30_000, 100_000_000),
		keys:    []keys.Key{{Name: "alice", Weight: 1}, {Name: "bob", Weight: 1, DailyTokens: 100}},
		// The first request holds its reservation while the second one
		// comes: 2 s leaves a stalled CI machine plenty of room.
		emu: func(c *config.Emulator) {
			c.Generation.TimeToFirstToken = config.Duration{Duration: 2 * time.Second}
		},
	})
	invoke := "/model/" + sonnet + "/invoke"
	done := make(chan int)
	go func() {
		resp, _ := h.post(h.gwURL, h.secret["alice"], invoke, fmt.Sprintf(smallMsg, 4096), nil)
		done <- resp.StatusCode
	}()
	waitFor(t, "the first request to hold its reservation", func() bool { return h.reserved() > 0 })

	resp, body := h.post(h.gwURL, h.secret["alice"], invoke, fmt.Sprintf(smallMsg, 4096), map[string]string{HeaderMaxWait: "0"})
	if resp.StatusCode != 429 || resp.Header.Get("X-Amzn-ErrorType") != bedrock.ThrottlingException {
		t.Fatalf("second request: status %d %s, want a ThrottlingException", resp.StatusCode, body)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After = %q, want whole seconds within the minute window", resp.Header.Get("Retry-After"))
	}
	if got := resp.Header.Get(HeaderThrottle); got != "gateway" {
		t.Errorf("%s = %q, want gateway", HeaderThrottle, got)
	}
	if resp.Header.Get(HeaderShouldRetry) != "" {
		t.Error("a per-minute throttle must not tell the client to give up")
	}
	if !strings.Contains(string(body), "sonnet-tpm") {
		t.Errorf("the message does not name the bucket: %s", body)
	}
	if code := <-done; code != 200 {
		t.Errorf("first request: %d", code)
	}

	// Bob's daily budget (100 tokens) is below one reservation: it can never fit.
	resp, body = h.post(h.gwURL, h.secret["bob"], invoke, fmt.Sprintf(smallMsg, 4096), nil)
	if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-ErrorType") != bedrock.ValidationException || !strings.Contains(string(body), "max_tokens") {
		t.Errorf("over the daily budget: status %d %s, want a ValidationException saying what to change", resp.StatusCode, body)
	}
	if n := h.throttle.Load(); n != 0 {
		t.Errorf("the emulator throttled %d requests", n)
	}
	h.wantThrottles(map[string]float64{"gateway/tpm": 1})
}

// wantThrottles checks headroom_throttles_total, by "source/kind".
func (h *harness) wantThrottles(want map[string]float64) {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "headroom_throttles_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[l["source"]+"/"+l["kind"]] = m.GetCounter().GetValue()
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		h.t.Errorf("headroom_throttles_total by source/kind (-want +got):\n%s", diff)
	}
}

// TestDailyBudgetSpent: once a key has spent its daily budget, its next
// request gets a 429 that tells Claude Code not to retry.
func TestDailyBudgetSpent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{keys: []keys.Key{{Name: "carol", Weight: 1, DailyTokens: 25_000}}, settleDelay: -1})
	invoke := "/model/" + sonnet + "/invoke"
	// The first call reserves 20,487 and is charged 7 + 4,000 × 5 = 20,007,
	// so the second reservation no longer fits the budget.
	for i := range 2 {
		resp, body := h.post(h.gwURL, h.secret["carol"], invoke, fmt.Sprintf(smallMsg, 4096),
			map[string]string{"X-Headroom-Emulator-Output-Tokens": "4000"})
		if i == 0 && resp.StatusCode != 200 {
			t.Fatalf("first call: %d %s", resp.StatusCode, body)
		}
		if i == 1 {
			if resp.StatusCode != 429 || resp.Header.Get(HeaderShouldRetry) != "false" || resp.Header.Get(HeaderThrottle) != "gateway" {
				t.Errorf("after the budget is spent: status %d, x-should-retry %q, throttle %q; body %s",
					resp.StatusCode, resp.Header.Get(HeaderShouldRetry), resp.Header.Get(HeaderThrottle), body)
			}
		}
	}
	h.wantThrottles(map[string]float64{"gateway/budget": 1})
}

// TestUpstreamThrottleRetriedThenPassedOn: when the mirror is off (the real
// quota is smaller than configured), Bedrock's 429 before the first byte is
// retried within the deadline, lowers the bucket's effective capacity, and
// reaches the client, marked as Bedrock's, only when the deadline is gone.
func TestUpstreamThrottleRetriedThenPassedOn(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{
		buckets: testBuckets(1_000_000, 100_000_000),
		emu: func(c *config.Emulator) {
			c.Regions[0].Buckets = testBuckets(10_000, 100_000_000) // the account is smaller than the mirror says
		},
	})
	start := time.Now()
	resp, body := h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke", fmt.Sprintf(smallMsg, 4096),
		map[string]string{HeaderMaxWait: "1"})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get(HeaderThrottle) != "upstream" {
		t.Fatalf("status %d, %s %q: %s; want Bedrock's 429 passed on", resp.StatusCode, HeaderThrottle, resp.Header.Get(HeaderThrottle), body)
	}
	if !strings.Contains(string(body), bedrock.MsgTooManyTokens) {
		t.Errorf("body %s is not Bedrock's own message", body)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("took %v with a 1 s deadline", el)
	}
	if n := h.throttle.Load(); n < 2 {
		t.Errorf("upstream saw %d throttles, want retries (at least 2)", n)
	}
	for _, b := range h.ledger() {
		if b.KindName == "tpm" && b.Effective >= b.Limit {
			t.Errorf("bucket %s effective capacity %d not lowered below %d", b.Name, b.Effective, b.Limit)
		}
		if b.KindName == "tpd" && b.Effective != b.Limit {
			t.Errorf("a per-minute throttle lowered the daily bucket %s", b.Name)
		}
	}
	waitFor(t, "the ledger to be empty", func() bool { return h.reserved() == 0 })
	h.wantThrottles(map[string]float64{"upstream/tpm": 1})
}
