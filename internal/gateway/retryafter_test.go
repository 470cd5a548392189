package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/emulator"
)

// TestRetryAfterIsHonoured: a request the gateway refuses carries
// Retry-After N; the same request sent N seconds later is admitted without
// queueing (no x-headroom-queued-ms, or under 100 ms of scheduling noise;
// it would have to wait 1.46 s had it come at once), and the emulator
// throttles nothing.
//
// It runs on the wall clock: the gateway reads time.Now and its upstream
// client needs a real connection, so testing/synctest cannot drive it; the
// controller's own fake-clock test is admission.TestRetryAfterProperty. The
// numbers keep N at one or two seconds: the minute bucket holds 40,000
// tokens and refills 666.7 a second; the first request costs its whole
// reservation, 20,487 (7 + 4,096 × 5, the seed profile's floor), so the
// second, which reserves as much, is 974 tokens short: 1.46 s of refill.
func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	const tpm = 40_000
	h := newHarness(t, harnessOpts{buckets: testBuckets(tpm, 100_000_000)})
	invoke := "/model/" + sonnet + "/invoke"
	body := fmt.Sprintf(smallMsg, 4096)
	full := map[string]string{emulator.HeaderOutputTokens: "4096"}
	noWait := map[string]string{emulator.HeaderOutputTokens: "4096", HeaderMaxWait: "0"}

	if resp, b := h.post(h.gwURL, h.secret["alice"], invoke, body, full); resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %d %s", resp.StatusCode, b)
	}
	resp, b := h.post(h.gwURL, h.secret["alice"], invoke, body, noWait)
	refusedAt := time.Now()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("X-Amzn-ErrorType") != bedrock.ThrottlingException ||
		resp.Header.Get(HeaderThrottle) != "gateway" {
		t.Fatalf("second request: status %d, %s %q: %s; want the gateway's 429", resp.StatusCode,
			HeaderThrottle, resp.Header.Get(HeaderThrottle), b)
	}
	if v := resp.Header.Get(HeaderShouldRetry); v != "" {
		t.Errorf("a per-minute refusal says %s: %q", HeaderShouldRetry, v)
	}
	n, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || n < 1 || n > 2 {
		t.Fatalf("Retry-After = %q, want 1 or 2 (the bucket is 974 tokens short at 666.7 a second)", resp.Header.Get("Retry-After"))
	}

	<-time.After(time.Until(refusedAt.Add(time.Duration(n) * time.Second)))
	resp, b = h.post(h.gwURL, h.secret["alice"], invoke, body, full)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("retried after Retry-After %d s: status %d %s", n, resp.StatusCode, b)
	}
	if q := resp.Header.Get(HeaderQueued); q != "" {
		if ms, _ := strconv.Atoi(q); ms >= 100 {
			t.Errorf("retried after Retry-After %d s, it still queued %s ms", n, q)
		}
	}
	if got := h.throttle.Load(); got != 0 {
		t.Errorf("the emulator throttled %d requests", got)
	}
}

// TestMaxWaitZeroAdmitsWhatFits: x-headroom-max-wait: 0 means "do not
// queue", not "refuse": a request that fits the ledger now is admitted.
func TestMaxWaitZeroAdmitsWhatFits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	resp, b := h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke", fmt.Sprintf(smallMsg, 100),
		map[string]string{HeaderMaxWait: "0"})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("max-wait 0 on an empty ledger: status %d %s, want 200", resp.StatusCode, b)
	}
}
