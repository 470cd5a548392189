package gateway

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/metrics"
)

const haiku = "us.anthropic.claude-haiku-4-5-20251001-v1:0"

// twoUpstreamGateway is a gateway with two upstreams, each its own
// emulator (its own AWS quota): Sonnet 4 goes to "sonnet", Haiku 4.5 to
// "haiku". Their controllers share bs, as `headroom serve` builds them. It
// returns the gateway's URL and the first upstream's harness (the keys'
// secrets).
func twoUpstreamGateway(t *testing.T, ks []keys.Key, bs *admission.Budgets) (string, *harness) {
	t.Helper()
	haikuScope := bedrock.Scope{Models: []string{"claude-haiku-4-5"}, Inference: bedrock.InferenceCrossRegion}
	a := newHarness(t, harnessOpts{name: "sonnet", keys: ks, budgets: bs, emu: fairEmulator})
	b := newHarness(t, harnessOpts{name: "haiku", keys: ks, budgets: bs, emu: fairEmulator, buckets: []config.Bucket{
		{Name: "haiku-tpm", Kind: config.KindTPM, Limit: 10_000_000, Scope: haikuScope},
		{Name: "haiku-tpd", Kind: config.KindTPD, Limit: 100_000_000, Scope: haikuScope},
	}})
	reg := prometheus.NewRegistry()
	profile, burndown, _ := config.Accounting{}.ProfileAndBurndown()
	gw, err := New(Options{
		Logger: slog.New(slog.DiscardHandler), Metrics: metrics.New(reg), Gatherer: reg, Keys: a.registry,
		Upstreams: []*Upstream{a.up, b.up}, Route: func(model, _ string) []string {
			if strings.Contains(model, "haiku") {
				return []string{"haiku"}
			}
			return []string{"sonnet"}
		},
		Caps: config.DefaultServe().Policy.Caps, Profile: profile, Burndown: burndown,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(gw)
	t.Cleanup(s.Close)
	return s.URL, a
}

// usedToday reads GET /v1/status: key's UsedToday, and its use of each
// upstream's daily buckets.
func usedToday(t *testing.T, url, key string) (int64, map[string]int64) {
	t.Helper()
	resp, err := http.Get(url + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, k := range st.Keys {
		if k.Name == key {
			for _, p := range k.Protected {
				out[p.Upstream] += p.Used
			}
			return k.UsedToday, out
		}
	}
	return 0, out
}

// TestKeyBudgetAcrossUpstreams: a key with a daily budget of 50,000 tokens
// sends requests of 20,487 (max_tokens 4,096, all written) to Sonnet on one
// upstream and Haiku on another. Two are served, one on each; the third,
// whichever upstream it goes to, is refused by the gateway with
// x-should-retry: false (the budget is the key's, not each upstream's),
// and both upstreams report the key's 40,974 tokens. Another key is still
// served.
func TestKeyBudgetAcrossUpstreams(t *testing.T) {
	const request = 20_487 // 7 input + 4,096 × 5
	ks := []keys.Key{{Name: "dev", Weight: 1, DailyTokens: 50_000}, {Name: "other", Weight: 1}}
	url, h := twoUpstreamGateway(t, ks, admission.NewBudgets())
	body := fmt.Sprintf(smallMsg, 4096)
	hdr := map[string]string{emulator.HeaderOutputTokens: "4096"}

	type outcome struct {
		Status      int
		Throttle    string
		ShouldRetry string
	}
	var got []outcome
	for _, send := range []struct{ key, model string }{
		{"dev", sonnet}, {"dev", haiku}, {"dev", sonnet}, {"dev", haiku}, {"other", haiku},
	} {
		resp, b := h.post(url, h.secret[send.key], "/model/"+send.model+"/invoke", body, hdr)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("%s to %s: status %d: %s", send.key, send.model, resp.StatusCode, b)
		}
		got = append(got, outcome{resp.StatusCode, resp.Header.Get(HeaderThrottle), resp.Header.Get(HeaderShouldRetry)})
	}
	refused := outcome{http.StatusTooManyRequests, "gateway", "false"}
	want := []outcome{{Status: http.StatusOK}, {Status: http.StatusOK}, refused, refused, {Status: http.StatusOK}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	// The budget is counted once (not once per upstream), and each
	// upstream's daily bucket has the request it served.
	used, daily := usedToday(t, url, "dev")
	if used != 2*request {
		t.Errorf("dev's used_today in /v1/status: %d, want %d", used, 2*request)
	}
	if diff := cmp.Diff(map[string]int64{"sonnet": request, "haiku": request}, daily); diff != "" {
		t.Errorf("dev's daily bucket use by upstream in /v1/status (-want +got):\n%s", diff)
	}
}
