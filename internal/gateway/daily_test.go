package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/keys"
)

// status reads GET /v1/status; the harness has one upstream.
func (h *harness) status() Status {
	h.t.Helper()
	resp, err := http.Get(h.gwURL + "/v1/status")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st.Upstreams) != 1 {
		h.t.Fatalf("GET /v1/status: %v (%d upstreams)", err, len(st.Upstreams))
	}
	return st
}

// dailyUse is one key's use of the daily bucket in a status: the key lists
// the buckets it used; in the others, its share is its weight times the
// bucket's protected_per_weight.
func dailyUse(t *testing.T, st Status, key string) admission.KeyShare {
	t.Helper()
	for _, k := range st.Keys {
		if k.Name != key {
			continue
		}
		for _, p := range k.Protected {
			if p.Bucket == "sonnet-tpd" {
				return p.KeyShare
			}
		}
		for _, b := range st.Upstreams[0].Buckets {
			if b.Name == "sonnet-tpd" && b.ProtectedPerWeight > 0 {
				return admission.KeyShare{Bucket: b.Name, Share: int64(k.Weight * float64(b.ProtectedPerWeight))}
			}
		}
	}
	t.Fatalf("status has no sonnet-tpd share for key %s: %+v", key, st.Keys)
	return admission.KeyShare{}
}

// TestDailyProtectionHoldsAgainstHeavyKey: a daily bucket of 400,000 tokens
// and four keys of weight 1, so each key's protected remainder is 0.5 ×
// 400,000 / 4 = 50,000 and the heavy key may use at most 400,000 - 3 ×
// 50,000 = 250,000. Every request reserves and costs 20,487 (max_tokens
// 4,096, all of it written). The heavy key's ten clients send until each is
// refused; the refusal must be a gateway 429 with x-should-retry: false,
// and the heavy key must stop within one request of its limit, never above.
// Then every light key must still be served its protected share, to within
// one request (the reservation is the unit): at least two requests each.
// x-headroom-max-wait: 2 bounds how long a heavy request that queued while
// the key's own requests were in flight waits for its refusal.
func TestDailyProtectionHoldsAgainstHeavyKey(t *testing.T) {
	const (
		tpd     = 400_000
		request = 20_487 // 7 input + 4,096 × 5
	)
	ks := []keys.Key{{Name: "heavy", Weight: 1}, {Name: "light1", Weight: 1}, {Name: "light2", Weight: 1}, {Name: "light3", Weight: 1}}
	h := newHarness(t, harnessOpts{buckets: testBuckets(10_000_000, tpd), keys: ks, emu: fairEmulator})
	body := fmt.Sprintf(smallMsg, 4096)
	invoke := "/model/" + sonnet + "/invoke"
	hdr := map[string]string{emulator.HeaderOutputTokens: "4096", HeaderMaxWait: "2"}

	share := dailyUse(t, h.status(), "heavy").Share
	if share != tpd/2/4 {
		t.Fatalf("protected share = %d, want %d", share, tpd/2/4)
	}
	heavyMax := int64(tpd) - 3*share

	var (
		mu      sync.Mutex
		served  int
		refused []*http.Response
		waited  []time.Duration
		wg      sync.WaitGroup
	)
	for range 10 {
		wg.Go(func() {
			for {
				start := time.Now()
				resp, b := h.post(h.gwURL, h.secret["heavy"], invoke, body, hdr)
				mu.Lock()
				if resp.StatusCode != http.StatusOK {
					refused = append(refused, resp)
					waited = append(waited, time.Since(start))
					mu.Unlock()
					if resp.StatusCode != http.StatusTooManyRequests {
						t.Errorf("heavy: status %d: %s", resp.StatusCode, b)
					}
					return
				}
				served++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, resp := range refused {
		if resp.Header.Get(HeaderShouldRetry) != "false" || resp.Header.Get(HeaderThrottle) != "gateway" {
			t.Errorf("heavy refused with %s %q, %s %q; want gateway and false", HeaderThrottle, resp.Header.Get(HeaderThrottle),
				HeaderShouldRetry, resp.Header.Get(HeaderShouldRetry))
		}
	}
	st := h.status()
	used := dailyUse(t, st, "heavy").Used
	t.Logf("heavy: %d served, used %d of at most %d; refusals after %v", served, used, heavyMax, waited)
	if used > heavyMax {
		t.Errorf("heavy used %d of the daily bucket, more than the %d that leaves the others their protected share", used, heavyMax)
	}
	if used <= heavyMax-request {
		t.Errorf("heavy stopped at %d, more than one request short of %d: not drained", used, heavyMax)
	}
	for _, k := range ks[1:] {
		if u := dailyUse(t, st, k.Name).Used; u != 0 {
			t.Errorf("%s used %d before sending anything", k.Name, u)
		}
	}

	for _, k := range ks[1:] {
		n := 0
		for {
			resp, b := h.post(h.gwURL, h.secret[k.Name], invoke, body, hdr)
			if resp.StatusCode != http.StatusOK {
				if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get(HeaderShouldRetry) != "false" {
					t.Errorf("%s after %d requests: status %d, %s %q: %s", k.Name, n, resp.StatusCode,
						HeaderShouldRetry, resp.Header.Get(HeaderShouldRetry), b)
				}
				break
			}
			n++
		}
		u := dailyUse(t, h.status(), k.Name)
		t.Logf("%s: %d served, used %d of its protected %d", k.Name, n, u.Used, u.Share)
		if u.Used <= u.Share-request {
			t.Errorf("%s was served %d of its protected %d: more than one request short", k.Name, u.Used, u.Share)
		}
	}

	st = h.status()
	if got := dailyUse(t, st, "heavy").Used; got != used {
		t.Errorf("heavy's use moved from %d to %d while it sent nothing", used, got)
	}
	resp, _ := h.post(h.gwURL, h.secret["heavy"], invoke, body, map[string]string{HeaderMaxWait: "0"})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get(HeaderShouldRetry) != "false" {
		t.Errorf("heavy at the end: status %d, %s %q; want 429 and false", resp.StatusCode, HeaderShouldRetry, resp.Header.Get(HeaderShouldRetry))
	}
	if n := h.throttle.Load(); n != 0 {
		t.Errorf("the emulator throttled %d requests", n)
	}
}
