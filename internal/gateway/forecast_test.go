package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/forecast"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/metrics"
	"github.com/headroomhq/headroom/internal/quota"
)

func bucketUsage(t *testing.T, st Status, name string) BucketStatus {
	t.Helper()
	for _, b := range st.Upstreams[0].Buckets {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("no bucket %s in status %+v", name, st)
	return BucketStatus{}
}

// TestSpentDailyBucketNamesTopConsumers: requests through the gateway are
// counted by key; /v1/status names the top consumers of each bucket and
// forecasts the daily bucket and the budget; /metrics has the forecast
// gauges; and the 429 of the spent daily bucket names the top consumers,
// Bedrock-shaped on InvokeModel and Anthropic-shaped on /v1/messages.
func TestSpentDailyBucketNamesTopConsumers(t *testing.T) {
	t.Parallel()
	// Every call reserves 7 + 4,096 × 5 = 20,487 (the profile's max_tokens
	// floor) and costs 7 + 1,000 × 5 = 5,007. Protection is on (half the
	// day split between the keys), so alice stops short of the whole day.
	const tpd = 100_000
	ks := []keys.Key{{Name: "alice", Weight: 1}, {Name: "bob", Weight: 1}, {Name: "carol", Weight: 1, DailyTokens: 30_000}}
	h := newHarness(t, harnessOpts{buckets: testBuckets(10_000_000, tpd), keys: ks, settleDelay: -1})
	metrics.RegisterState(h.reg, h.gw.StateMetrics)
	invoke := "/model/" + sonnet + "/invoke"
	body := fmt.Sprintf(smallMsg, 1000)
	hdr := map[string]string{emulator.HeaderOutputTokens: "1000", HeaderMaxWait: "0"}
	call := func(key string) (*http.Response, []byte) {
		return h.post(h.gwURL, h.secret[key], invoke, body, hdr)
	}
	for _, k := range []string{"carol", "carol", "bob"} {
		if resp, b := call(k); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", k, resp.StatusCode, b)
		}
	}
	// carol's budget of 30,000 has 19,986 left, less than a reservation:
	// her third call is refused by the budget, which names no bucket's
	// consumers.
	resp, b := call("carol")
	if resp.StatusCode != http.StatusTooManyRequests || strings.Contains(string(b), "top consumers") {
		t.Errorf("carol over budget: %d %s; want a 429 without top consumers", resp.StatusCode, b)
	}
	served := 0
	for {
		resp, b = call("alice")
		if resp.StatusCode != http.StatusOK {
			break
		}
		served++
	}
	if served == 0 || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get(HeaderShouldRetry) != "false" {
		t.Fatalf("alice after %d calls: %d %v %s; want a daily 429", served, resp.StatusCode, resp.Header, b)
	}
	var be struct{ Message string }
	if err := json.Unmarshal(b, &be); err != nil {
		t.Fatal(err)
	}
	// alice has served*5,007 of the day, carol 10,014, bob 5,007.
	total := float64(served*5007 + 15021)
	want := fmt.Sprintf("top consumers today: alice %.0f%%, carol %.0f%%, bob %.0f%%",
		100*float64(served*5007)/total, 100*10014/total, 100*5007/total)
	if !strings.Contains(be.Message, want) {
		t.Errorf("Bedrock-shaped 429 message %q does not say %q", be.Message, want)
	}
	t.Logf("InvokeModel 429: %s", be.Message)

	msgs := fmt.Sprintf(`{"model":%q,"max_tokens":1000,"messages":[{"role":"user","content":"hello there"}]}`, sonnet)
	resp, b = h.post(h.gwURL, h.secret["alice"], "/v1/messages", msgs, hdr)
	var ae anthropicErr
	_ = json.Unmarshal(b, &ae)
	if resp.StatusCode != http.StatusTooManyRequests || ae.Error.Type != "rate_limit_error" || !strings.Contains(ae.Error.Message, want) {
		t.Errorf("Anthropic-shaped 429: %d %s; want a rate_limit_error saying %q", resp.StatusCode, b, want)
	}

	u := h.status()
	tpdU := bucketUsage(t, u, "sonnet-tpd")
	if len(tpdU.TopToday) != 3 || tpdU.TopToday[0].Key != "alice" || tpdU.TopToday[0].Tokens != int64(served*5007) {
		t.Errorf("sonnet-tpd top today: %+v", tpdU.TopToday)
	}
	if len(tpdU.Top5m) == 0 || tpdU.KindName != "tpd" || tpdU.Rates.Five <= 0 {
		t.Errorf("sonnet-tpd recent use: %+v", tpdU)
	}
	f := tpdU.Forecast
	if f == nil || f.Status == forecast.Never || f.Status == forecast.NotToday || f.Earliest == nil {
		t.Fatalf("sonnet-tpd forecast %+v: want it to run out today at this rate", f)
	}
	if tpm := bucketUsage(t, u, "sonnet-tpm"); tpm.Forecast != nil || len(tpm.TopToday) != 3 {
		t.Errorf("sonnet-tpm: %+v; want top consumers and no forecast", tpm)
	}
	for _, k := range u.Keys {
		f := k.BudgetForecast
		switch {
		case k.Name != "carol" && f != nil:
			t.Errorf("key %s without a budget has a budget forecast %+v", k.Name, f)
		case k.Name == "carol" && (f == nil || f.Status != forecast.RunsOut || f.Left != 30_000-10_014):
			t.Errorf("carol's budget forecast %+v; want 19,986 left, running out", f)
		}
	}

	mresp, err := http.Get(h.gwURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, re := range []string{
		`headroom_forecast_exhaustion_seconds\{bound="low",bucket="sonnet-tpd",upstream="emu"\} [0-9.e+]+\n`,
		`headroom_key_budget_exhaustion_seconds\{bound="high",key="carol"\} [0-9.e+]+\n`,
		`headroom_key_queued_requests\{key="alice"\} 0\n`,
		// Every served call wrote 1,000 tokens and read 7 (the emulator's
		// count of smallMsg's).
		fmt.Sprintf(`gen_ai_client_token_usage_sum\{gen_ai_operation_name="chat",gen_ai_provider_name="aws.bedrock",gen_ai_request_model="%s",gen_ai_system="aws.bedrock",gen_ai_token_type="output"\} %d\n`,
			regexp.QuoteMeta(sonnet), 1000*(served+3)),
		fmt.Sprintf(`gen_ai_client_token_usage_count\{gen_ai_operation_name="chat",gen_ai_provider_name="aws.bedrock",gen_ai_request_model="%s",gen_ai_system="aws.bedrock",gen_ai_token_type="input"\} %d\n`,
			regexp.QuoteMeta(sonnet), served+3),
	} {
		if !regexp.MustCompile(re).Match(page) {
			t.Errorf("/metrics lacks %s", re)
		}
	}
}

// BenchmarkSettleAccounting is what settlement adds to a request beyond
// the ledger, on the sonnet-tpm and sonnet-tpd buckets: "metrics" is the
// settled-token counters main had before the forecast; "metrics+usage"
// adds the usage tracker's Record and the OpenTelemetry token histogram,
// the forecast's whole cost on the request path. Run together so the two
// compare on the same machine state.
func BenchmarkSettleAccounting(b *testing.B) {
	h := newHarness(b, harnessOpts{keys: []keys.Key{{Name: "alice", Weight: 1}, {Name: "bob", Weight: 1}}})
	model, err := bedrock.ParseModel(sonnet)
	if err != nil {
		b.Fatal(err)
	}
	ch := &charge{g: h.gw, u: h.up, key: "alice", set: h.up.Ledger().All(), model: model}
	cost := quota.Tokens(5007)
	b.Run("metrics", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ch.count(cost)
		}
	})
	b.Run("metrics+usage", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ch.count(cost)
			ch.record(cost)
			ch.g.m.GenAI.ObserveTokens(metrics.GenAIOperationChat, ch.model.ID, 7, 1000)
		}
	})
}
