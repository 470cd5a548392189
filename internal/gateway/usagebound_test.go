package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// TestAbsurdUsageIsBounded: an upstream answer that reports absurd usage
// (1e18 output tokens, or input far beyond the request) is charged what
// the request could have used, so it cannot lock every key out for the
// day. It used to set both buckets' used to 5e18: the next request was
// refused as one that could never fit.
func TestAbsurdUsageIsBounded(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, in, out string
		field         string
	}{
		{"output 1e18", "7", "1000000000000000000", "output"},
		{"input 1e15", "999999999999999", "5", "input"},
	} {
		h := newHarness(t, harnessOpts{
			settleDelay: -1,
			upstream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set(bedrock.HeaderInputTokens, tt.in)
				w.Header().Set(bedrock.HeaderOutputTokens, tt.out)
				fmt.Fprint(w, `{"type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn"}`)
			}),
		})
		body := fmt.Sprintf(smallMsg, 100)
		for i := range 2 {
			resp, b := h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke", body, map[string]string{HeaderMaxWait: "1"})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: request %d: status %d: %s", tt.name, i, resp.StatusCode, b)
			}
		}
		// Two requests of at most (4 × body + 16,384) input and
		// (4,096 + 1% + 64) × 5 output each.
		bound := newUsageBound(len(body), 4096)
		most := 2 * (int64(bound.input) + int64(bound.output)*5)
		if used := tpdUsed(h); used <= 0 || used > most {
			t.Errorf("%s: tokens-per-day used %d, want at most %d", tt.name, used, most)
		}
		if got := testutil.ToFloat64(h.gw.m.UsageClamps.WithLabelValues("emu", tt.field)); got != 2 {
			t.Errorf("%s: usage clamps of %s counted %v, want 2", tt.name, tt.field, got)
		}
	}
}

func TestUsageBoundClamp(t *testing.T) {
	b := usageBound{input: 1000, output: 100}
	for _, tt := range []struct {
		u, want bedrock.Usage
		cut     string
	}{
		{bedrock.Usage{InputTokens: 10, OutputTokens: 100}, bedrock.Usage{InputTokens: 10, OutputTokens: 100}, ""},
		{bedrock.Usage{InputTokens: -5, OutputTokens: -1}, bedrock.Usage{}, ""},
		{bedrock.Usage{OutputTokens: 1 << 62}, bedrock.Usage{OutputTokens: 100}, "output"},
		{bedrock.Usage{InputTokens: 1 << 62, CacheReadInputTokens: 1 << 62, CacheWriteInputTokens: 1 << 62},
			bedrock.Usage{InputTokens: 333, CacheReadInputTokens: 333, CacheWriteInputTokens: 333}, "input"},
		{bedrock.Usage{InputTokens: 600, CacheReadInputTokens: 600}, bedrock.Usage{InputTokens: 500, CacheReadInputTokens: 500}, "input"},
	} {
		got, cut := b.clamp(tt.u)
		if got != tt.want || strings.Join(cut, ",") != tt.cut {
			t.Errorf("clamp(%+v) = %+v %v, want %+v %q", tt.u, got, cut, tt.want, tt.cut)
		}
	}
}
