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

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/upstream"
)

// syncBuffer is a log destination several handlers may write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServiceTier: X-Amzn-Bedrock-Service-Tier reaches the upstream on
// InvokeModel, Converse and their streams; the tier the upstream reports
// comes back to the client; the request log names both, and the metric
// counts requests by tier, with any unknown value as "other".
func TestServiceTier(t *testing.T) {
	t.Parallel()
	ec := config.DefaultEmulator()
	ec.Regions = []config.EmulatorRegion{{Name: region, Buckets: testBuckets(1_000_000, 100_000_000)}}
	ec.DefaultRegion = region
	emu, err := emulator.New(ec, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string][]string{} // path -> tier headers the upstream got
	var logs syncBuffer
	h := newHarness(t, harnessOpts{
		log: slog.New(slog.NewTextHandler(&logs, nil)),
		upstream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[r.URL.Path] = append(seen[r.URL.Path], r.Header.Values(bedrock.HeaderServiceTier)...)
			mu.Unlock()
			emu.ServeHTTP(w, r)
		}),
	})
	invoke := fmt.Sprintf(smallMsg, 100)
	converse := `{"messages":[{"role":"user","content":[{"text":"hello"}]}],"inferenceConfig":{"maxTokens":100}}`
	calls := []struct{ op, body string }{
		{"invoke", invoke}, {"invoke-with-response-stream", invoke}, {"converse", converse}, {"converse-stream", converse},
	}
	for _, c := range calls {
		resp, body := h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/"+c.op, c.body, map[string]string{bedrock.HeaderServiceTier: "Priority"})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", c.op, resp.StatusCode, body)
		}
		if got := resp.Header.Get(bedrock.HeaderServiceTier); got != "priority" {
			t.Errorf("%s: the client was told tier %q, want the upstream's priority", c.op, got)
		}
		path := "/model/" + sonnet + "/" + c.op
		mu.Lock()
		got := seen[path]
		mu.Unlock()
		if len(got) != 1 || got[0] != "Priority" {
			t.Errorf("%s: the upstream got tier headers %q, want [Priority]", c.op, got)
		}
	}
	for _, tier := range []string{"gold-" + strings.Repeat("x", 1000), ""} {
		hdr := map[string]string{}
		if tier != "" {
			hdr[bedrock.HeaderServiceTier] = tier
		}
		if resp, body := h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke", invoke, hdr); resp.StatusCode != http.StatusOK {
			t.Fatalf("tier %.10q: %d %s", tier, resp.StatusCode, body)
		}
	}

	counts := tierCounts(t, h)
	if want := map[string]float64{"priority": 4, "other": 1, "none": 1}; fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("requests by tier %v, want %v", counts, want)
	}
	waitFor(t, "six request lines", func() bool { return strings.Count(logs.String(), "msg=request") == 6 })
	out := logs.String()
	if n := strings.Count(out, "service_tier=priority service_tier_used=priority"); n != 4 {
		t.Errorf("%d request lines name the priority tier asked and used, want 4:\n%s", n, out)
	}
	if strings.Contains(out, "gold-") || !strings.Contains(out, "service_tier=other") {
		t.Errorf("an unknown tier must be logged as other, not as sent:\n%s", out)
	}
}

// tierCounts sums headroom_service_tier_requests_total by tier.
func tierCounts(t *testing.T, h *harness) map[string]float64 {
	t.Helper()
	counts := map[string]float64{}
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "headroom_service_tier_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tier" {
					counts[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return counts
}

// TestServiceTierMessages: on the Messages front doors too, to a runtime or
// a Mantle upstream, streaming or not, the tier header reaches the
// upstream, and the request is logged and counted with its tier.
func TestServiceTierMessages(t *testing.T) {
	t.Parallel()
	for _, svc := range []upstream.Service{upstream.ServiceRuntime, upstream.ServiceMantle} {
		t.Run(string(svc), func(t *testing.T) {
			t.Parallel()
			var logs syncBuffer
			h, fake := serviceHarness(t, svc, harnessOpts{log: slog.New(slog.NewTextHandler(&logs, nil))})
			for _, stream := range []bool{false, true} {
				hdr := map[string]string{"anthropic-version": "2023-06-01", bedrock.HeaderServiceTier: "flex"}
				resp, body := h.post(h.gwURL, h.secret["alice"], "/v1/messages", fmt.Sprintf(mantleBody, sonnet, stream), hdr)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("stream=%v: %d %s", stream, resp.StatusCode, body)
				}
				if got := fake.last().header.Values(bedrock.HeaderServiceTier); len(got) != 1 || got[0] != "flex" {
					t.Errorf("stream=%v: the upstream got tier headers %q, want [flex]", stream, got)
				}
			}
			if got := tierCounts(t, h); got["flex"] != 2 {
				t.Errorf("requests by tier %v, want flex 2", got)
			}
			waitFor(t, "two request lines", func() bool { return strings.Count(logs.String(), "msg=request") == 2 })
			if n := strings.Count(logs.String(), "service_tier=flex"); n != 2 {
				t.Errorf("%d request lines name the flex tier, want 2:\n%s", n, logs.String())
			}
		})
	}
}
