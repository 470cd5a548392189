package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/upstream"
)

// opus47 is Claude Code's default model in Mantle mode.
const opus47 = "anthropic.claude-opus-4-7"

// tightMantleBuckets are a new account's tight Mantle quotas for Opus 4.7: an
// input bucket that holds four requests of max_tokens 4,000 at once, and an
// output bucket of 6,000 a minute (100 a second).
func tightMantleBuckets() []config.Bucket {
	scope := bedrock.Scope{Models: []string{"claude-opus-4-7"}}
	return []config.Bucket{
		{Name: "opus-input", Kind: config.KindInputTPM, Limit: 20_000, Scope: scope},
		{Name: "opus-output", Kind: config.KindOutputTPM, Limit: 6_000, Scope: scope},
	}
}

// mantleHarness is a gateway with a bedrock-mantle upstream in front of the
// emulator's Mantle endpoint, both with tightMantleBuckets.
func mantleHarness(t *testing.T) *harness {
	return newHarness(t, harnessOpts{
		buckets: tightMantleBuckets(), service: upstream.ServiceMantle, endpointPath: "/mantle",
		keys: []keys.Key{{Name: "alice", Weight: 1}, {Name: "bob", Weight: 1}},
		emu: func(c *config.Emulator) {
			c.Regions[0].Buckets, c.Regions[0].Mantle = nil, tightMantleBuckets()
			c.Generation.TokensPerSecond = 3000 // a 300-token answer streams for 0.1 s
		},
	})
}

// mantleCall is one Claude Code-like streaming Messages call.
const mantleCall = `{"model":%q,"max_tokens":4000,"messages":[{"role":"user","content":"write the function"}],"stream":true}`

// loadResult is what a burst of calls got.
type loadResult struct {
	status map[int]int // by status code
	queued int         // answers the gateway queued (x-headroom-queued)
	bad    []string
}

// burst sends n streaming Messages calls at once to base+path, key by key
// in turn, each asking the emulator for a 300-token answer.
func burst(t *testing.T, base, path string, secrets []string, n int) loadResult {
	t.Helper()
	res := loadResult{status: map[int]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(fmt.Sprintf(mantleCall, opus47)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("anthropic-version", "2023-06-01")
			req.Header.Set("x-api-key", secrets[i%len(secrets)])
			req.Header.Set("X-Headroom-Emulator-Output-Tokens", "300")
			resp, err := http.DefaultClient.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.bad = append(res.bad, err.Error())
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			res.status[resp.StatusCode]++
			if resp.Header.Get(HeaderQueued) != "" {
				res.queued++
			}
			if resp.StatusCode == 200 && !strings.Contains(string(body), "event: message_stop") {
				res.bad = append(res.bad, "a stream without message_stop")
			}
		})
	}
	wg.Wait()
	return res
}

// TestMantleMirrorUnderLoad is the Mantle ledger's outcome check over HTTP:
// sixteen Claude Code-like streams at once, from two keys, through a gateway
// whose upstream is bedrock-mantle with tight quotas all complete, and the
// emulator playing Mantle throttles none of them (the mirror holds them back
// while the input bucket is full and while the output bucket is in debt);
// the same burst straight at the emulator is throttled.
func TestMantleMirrorUnderLoad(t *testing.T) {
	t.Parallel()
	h := mantleHarness(t)
	secrets := []string{h.secret["alice"], h.secret["bob"]}

	gw := burst(t, h.gwURL, "/v1/messages?beta=true", secrets, 16)
	if gw.status[200] != 16 || len(gw.bad) > 0 {
		t.Fatalf("through the gateway: statuses %v, problems %v; want 16 complete streams", gw.status, gw.bad)
	}
	if n := h.throttle.Load(); n != 0 {
		t.Errorf("through the gateway the emulator throttled %d calls, want 0", n)
	}
	if gw.queued == 0 {
		t.Error("the gateway queued nothing: the burst did not test the mirror")
	}
	waitFor(t, "settlement", func() bool { return h.reserved() == 0 })
	st := h.emuState().Regions[0].Mantle
	t.Logf("through the gateway: %d of 16 queued; emulator's Mantle buckets after: %+v", gw.queued, st)

	direct := burst(t, h.emuURL, "/v1/messages?beta=true", []string{"any"}, 16)
	if direct.status[429] == 0 || h.throttle.Load() == 0 {
		t.Fatalf("straight at the emulator: statuses %v; want some 429s", direct.status)
	}
	t.Logf("straight at the emulator: statuses %v", direct.status)
}

// TestMantleSetIsFirstOfEachKind: on a Mantle upstream a model draws from
// the first matching input-tpm and output-tpm buckets, as the emulator
// matches them; on the runtime every matching bucket.
func TestMantleSetIsFirstOfEachKind(t *testing.T) {
	t.Parallel()
	opus := bedrock.Scope{Models: []string{"claude-opus-4-7"}}
	buckets := []config.Bucket{
		{Name: "opus-in", Kind: config.KindInputTPM, Limit: 1000, Scope: opus},
		{Name: "any-in", Kind: config.KindInputTPM, Limit: 1000},
		{Name: "any-out", Kind: config.KindOutputTPM, Limit: 1000},
		{Name: "opus-out", Kind: config.KindOutputTPM, Limit: 1000, Scope: opus},
	}
	h := newHarness(t, harnessOpts{buckets: buckets, service: upstream.ServiceMantle, endpointPath: "/mantle",
		emu: func(c *config.Emulator) { c.Regions[0].Buckets, c.Regions[0].Mantle = nil, buckets }})
	for _, tt := range []struct {
		model string
		want  quota.Set
	}{
		{opus47, quota.Bit(0) | quota.Bit(2)},
		{"anthropic.claude-sonnet-4-6", quota.Bit(1) | quota.Bit(2)},
	} {
		m, err := bedrock.ParseModel(tt.model)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.up.set(m); got != tt.want {
			t.Errorf("%s draws from %b, want %b", tt.model, got, tt.want)
		}
	}
}

// TestMantleRetryAfterOnOutputDebt: a call that may not wait while the
// output bucket is in debt gets the gateway's own 429, Anthropic-shaped,
// naming the output bucket, with Retry-After when the debt has drained.
func TestMantleRetryAfterOnOutputDebt(t *testing.T) {
	t.Parallel()
	h := mantleHarness(t)
	key := h.secret["alice"]
	// Two answers of 3,200 output tokens: 400 over the limit of 6,000 a
	// minute, less what drained meanwhile, more what the gateway's
	// estimate of the output from the streamed bytes (eventstream.
	// BytesPerToken) counted beyond the final count (it never counts less).
	for range 2 {
		resp, body := h.post(h.gwURL, "", "/v1/messages", fmt.Sprintf(mantleCall, opus47),
			map[string]string{"x-api-key": key, "X-Headroom-Emulator-Output-Tokens": "3200", "anthropic-version": "2023-06-01"})
		if resp.StatusCode != 200 {
			t.Fatalf("filling the output bucket: %d %s", resp.StatusCode, body)
		}
	}
	waitFor(t, "settlement", func() bool { return h.reserved() == 0 })
	resp, body := h.post(h.gwURL, "", "/v1/messages", fmt.Sprintf(mantleCall, opus47),
		map[string]string{"x-api-key": key, HeaderMaxWait: "0", "anthropic-version": "2023-06-01"})
	if resp.StatusCode != 429 || resp.Header.Get(HeaderThrottle) != "gateway" {
		t.Fatalf("in output debt: %d %s %q, want the gateway's 429", resp.StatusCode, body, resp.Header.Get(HeaderThrottle))
	}
	if !strings.Contains(string(body), `"rate_limit_error"`) || !strings.Contains(string(body), "opus-output") {
		t.Errorf("body %s: want an Anthropic rate_limit_error naming the output bucket", body)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q, want the debt's drain in whole seconds, 1-60", resp.Header.Get("Retry-After"))
	}
	t.Logf("in output debt: Retry-After %d s; gateway's output bucket %+v, emulator's %+v", ra, h.ledger()[1], h.emuState().Regions[0].Mantle[1])
	if n := h.throttle.Load(); n != 0 {
		t.Errorf("the emulator throttled %d calls", n)
	}
}
