package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/keys"
)

// maxTokensTap records the max_tokens of every body that reaches the
// emulator.
type maxTokensTap struct {
	mu   sync.Mutex
	seen []int
	n    atomic.Int64
}

func (m *maxTokensTap) tap(r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	var v struct {
		MaxTokens int `json:"max_tokens"`
	}
	_ = json.Unmarshal(b, &v)
	m.n.Add(1)
	m.mu.Lock()
	m.seen = append(m.seen, v.MaxTokens)
	m.mu.Unlock()
}

// shadowStatus reads the shadow section of /v1/status.
func (h *harness) shadowStatus() (string, *ShadowStatus) {
	h.t.Helper()
	resp, err := http.Get(h.gwURL + "/v1/status")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Mode   string        `json:"mode"`
		Shadow *ShadowStatus `json:"shadow"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		h.t.Fatal(err)
	}
	return st.Mode, st.Shadow
}

// TestShadowForwardsUntouched: in shadow mode a burst that enforce mode
// would clamp, queue and retry reaches the emulator at once, each request
// once, with the client's max_tokens; the client sees the emulator's own
// 429s, never the gateway's; and the record says what enforce would have
// done. Enforce mode's clamp, queue or retries would each fail it.
func TestShadowForwardsUntouched(t *testing.T) {
	t.Parallel()
	var taps maxTokensTap
	var logs syncBuffer
	const burst = 4
	h := newHarness(t, harnessOpts{
		// One forwarded request (7 + 8,000 × 5 = 40,007) fits the minute
		// bucket; a second does not, at the emulator or in the mirror.
		buckets: testBuckets(50_000, 100_000_000),
		keys:    []keys.Key{{Name: "alice", Weight: 1}, {Name: "bob", Weight: 1, DailyTokens: 10_000}},
		shadow:  true,
		tap:     taps.tap,
		log:     slog.New(slog.NewTextHandler(&logs, nil)),
		emu: func(c *config.Emulator) {
			// The first holds its reservation while the others arrive.
			c.Generation.TimeToFirstToken = config.Duration{Duration: 500 * time.Millisecond}
		},
	})
	if mode, st := h.shadowStatus(); mode != "shadow" || st == nil {
		t.Fatalf("status mode %q, shadow %v: want the shadow section", mode, st)
	}
	invoke := "/model/" + sonnet + "/invoke"
	body := fmt.Sprintf(smallMsg, 8000) // over the 4,096 cap: enforce mode would clamp it
	start := time.Now()
	first := make(chan *http.Response, 1)
	go func() {
		resp, _ := h.post(h.gwURL, h.secret["alice"], invoke, body, nil)
		first <- resp
	}()
	waitFor(t, "the first request to reach the emulator", func() bool { return taps.n.Load() == 1 })
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	var resps []*http.Response
	for range burst - 1 {
		wg.Go(func() {
			resp, _ := h.post(h.gwURL, h.secret["alice"], invoke, body, nil)
			mu.Lock()
			codes[resp.StatusCode]++
			resps = append(resps, resp)
			mu.Unlock()
		})
	}
	wg.Wait()
	resps = append(resps, <-first)
	codes[resps[len(resps)-1].StatusCode]++
	elapsed := time.Since(start)

	if codes[200] != 1 || codes[429] != burst-1 {
		t.Errorf("codes %v, want 1 OK and %d of the emulator's 429s", codes, burst-1)
	}
	for _, resp := range resps {
		if got := resp.Header.Get(HeaderThrottle); resp.StatusCode == 429 && got != "upstream" {
			t.Errorf("a 429 marked %s=%q: shadow mode must never throttle itself", HeaderThrottle, got)
		}
		if v := resp.Header.Get(HeaderMaxTokens); v != "" {
			t.Errorf("%s: %q: shadow mode must not clamp", HeaderMaxTokens, v)
		}
		if v := resp.Header.Get(HeaderQueued); v != "" {
			t.Errorf("%s: %q: shadow mode must not queue", HeaderQueued, v)
		}
	}
	if n := taps.n.Load(); n != burst {
		t.Errorf("the emulator received %d requests, want %d: shadow mode neither retries nor holds back", n, burst)
	}
	taps.mu.Lock()
	for _, mt := range taps.seen {
		if mt != 8000 {
			t.Errorf("the emulator saw max_tokens %d, want the client's 8,000", mt)
		}
	}
	taps.mu.Unlock()
	// Enforce mode would have queued the three for most of a minute.
	if elapsed > 10*time.Second {
		t.Errorf("the burst took %v: something waited", elapsed)
	}

	// Bob's budget (10,000) is below one request even clamped: too large.
	resp, b := h.post(h.gwURL, h.secret["bob"], invoke, fmt.Sprintf(smallMsg, 6000), nil)
	if resp.StatusCode == 400 && strings.Contains(string(b), "Headroom") {
		t.Errorf("bob: the gateway refused in shadow mode: %s", b)
	}
	// A bad key is still refused: shadow is not open access.
	if resp, _ := h.post(h.gwURL, "hr_wrong", invoke, body, nil); resp.StatusCode != 403 {
		t.Errorf("a bad key: status %d, want 403", resp.StatusCode)
	}

	waitFor(t, "the mirror to give every reservation back", func() bool { return h.reserved() == 0 })
	_, st := h.shadowStatus()
	if st.Requests != burst+1 || st.WouldClamp != burst+1 || st.Upstream429 != burst-1 {
		t.Errorf("record: %+v, want %d judged and clamped, %d upstream 429s", st, burst+1, burst-1)
	}
	if st.Predicted != burst-1 || st.Missed != 0 {
		t.Errorf("record: predicted %d missed %d, want every 429 predicted", st.Predicted, st.Missed)
	}
	if st.WouldRefuse["budget"]+st.WouldRefuse["too_large"] != 1 {
		t.Errorf("would refuse %v: want bob's request refused", st.WouldRefuse)
	}
	if got := testutil.ToFloat64(h.gw.m.ShadowWouldClamp.WithLabelValues("alice")); got != burst {
		t.Errorf("headroom_shadow_would_clamp_total{key=alice} = %v, want %d", got, burst)
	}
	if got := testutil.ToFloat64(h.gw.m.ShadowPredicted.WithLabelValues("emu")); got != burst-1 {
		t.Errorf("headroom_shadow_upstream_429_predicted_total = %v, want %d", got, burst-1)
	}
	lines := strings.Count(logs.String(), "shadow=")
	if lines != burst+1 || !strings.Contains(logs.String(), `shadow="admit, clamp 8000->4096 (fixed)"`) {
		t.Errorf("%d log lines with the shadow field, want %d:\n%s", lines, burst+1, logs.String())
	}
}

// shadowShape is the load the shadow tests send (their tolerances were
// measured with it): max_tokens 300, 2,000 or 4,096, from clients that
// pause as Claude Code does.
var shadowShape = loadShape{maxTokens: []int{300, 2000, 4096}, pause: true}

// TestShadowPredictsThrottles is issue 12's check of shadow mode against
// the emulator: a bounded concurrent load that the emulator's tight
// minute bucket throttles is forwarded whole (the client sees the
// emulator's 429s, never the gateway's, and every body reaches it with
// the client's max_tokens), and the mirror running beside it predicts
// those throttles.
//
// Tolerance: at least 85% of the emulator's 429s predicted; at most 45%
// of the answers false alarms (served though the mirror would have held
// them back); and the mirror agrees with the emulator more often than the
// better constant guess ("always 429" or "never 429"), which neither
// bound alone rules out. The mirror does the emulator's own arithmetic on
// the same requests, so it is off only by timing: 16 clients start at
// once, and requests judged within one round trip of each other may reach
// the emulator in another order (each swap is a miss or a false alarm);
// a request the emulator will throttle holds its charge in the mirror
// until its 429 comes back, and one it served until the gateway has
// passed its last byte on (a request judged meanwhile may be a false
// alarm: the mirror errs on the side of enforce mode queueing). Measured
// in runs of 96 requests on 2 shared cores: 0-3 misses of 51-64
// throttles (95-100% predicted) alone and under -race; false alarms 4-10
// alone, 20-25 under -race, 34 under -race with the package's other tests
// running beside it (which this test no longer does).
func TestShadowPredictsThrottles(t *testing.T) {
	// Not parallel: it runs before the package's parallel tests, so that
	// their load does not stretch the round trips it measures.
	const clients, perClient = 16, 6
	var ks []keys.Key
	for i := range clients {
		ks = append(ks, keys.Key{Name: "dev" + fmt.Sprint(i), Weight: 1})
	}
	var taps maxTokensTap
	var logs syncBuffer
	h := newHarness(t, harnessOpts{
		buckets: testBuckets(100_000, 100_000_000), // about 4 reservations of 20,480 at once
		keys:    ks,
		shadow:  true,
		tap:     taps.tap,
		log:     slog.New(slog.NewTextHandler(&logs, nil)),
		// The emulator gives a reservation back with its last byte; the
		// default settle delay (for Bedrock, which settles later) would
		// be a margin of the mirror's own, each refund a false alarm.
		settleDelay: -1,
		emu: func(c *config.Emulator) {
			c.Generation.TokensPerSecond = 4000
			c.Generation.ChunkTokens = 4
		},
	})
	var secrets []string
	for _, k := range ks {
		secrets = append(secrets, h.secret[k.Name])
	}
	codes := runLoad(t, h.gwURL, secrets, perClient, shadowShape)
	throttled := h.throttle.Load()
	_, st := h.shadowStatus()
	js, _ := json.MarshalIndent(st, "", "  ")
	t.Logf("codes %v; emulator 429s %d; record %s", codes, throttled, js)

	// Everything forwarded, once, untouched; every 429 the emulator's.
	if n := taps.n.Load(); n != clients*perClient {
		t.Errorf("the emulator received %d requests, want %d", n, clients*perClient)
	}
	taps.mu.Lock()
	for i, mt := range taps.seen {
		if mt != 300 && mt != 2000 && mt != 4096 {
			t.Errorf("request %d reached the emulator with max_tokens %d, not the client's", i, mt)
		}
	}
	taps.mu.Unlock()
	if throttled < clients || int64(codes[429]) != throttled || codes[200]+codes[429] != clients*perClient {
		t.Fatalf("codes %v, emulator 429s %d: want every 429 the emulator's, and enough of them to test", codes, throttled)
	}
	if strings.Contains(logs.String(), "throttled_gateway") {
		t.Error("the gateway throttled a request in shadow mode")
	}

	// The record matches the emulator.
	if st.Upstream429 != throttled || st.Predicted+st.Missed != throttled || st.Answered != clients*perClient {
		t.Errorf("record: %d upstream 429s (%d predicted, %d missed) of %d answered; the emulator throttled %d of %d",
			st.Upstream429, st.Predicted, st.Missed, st.Answered, throttled, clients*perClient)
	}
	if p := st.Accuracy.Predicted429Share; p == nil || *p < 0.85 {
		t.Errorf("predicted %d of %d upstream 429s, want at least 85%%", st.Predicted, st.Upstream429)
	}
	if f := st.Accuracy.FalseAlarmShare; f == nil || *f > 0.45 {
		t.Errorf("%d false alarms of %d answers, want at most 45%%", st.FalseAlarms, st.Answered)
	}
	constant := max(st.Upstream429, st.Answered-st.Upstream429)
	if agree := st.Answered - st.Missed - st.FalseAlarms; agree <= constant {
		t.Errorf("the mirror agrees with the emulator on %d of %d answers, no better than a constant guess (%d)", agree, st.Answered, constant)
	}
	if st.WouldQueue == 0 || st.WouldQueueWaitMean <= 0 {
		t.Errorf("no would-be queue waits recorded: %+v", st)
	}
	// The metrics count what the record does.
	var queued float64
	for _, k := range ks {
		queued += testutil.ToFloat64(h.gw.m.ShadowWouldQueue.WithLabelValues(k.Name))
	}
	m := h.gw.m
	for _, c := range []struct {
		name string
		got  float64
		want int64
	}{
		{"requests", testutil.ToFloat64(m.ShadowRequests.WithLabelValues("emu")), st.Answered},
		{"predicted", testutil.ToFloat64(m.ShadowPredicted.WithLabelValues("emu")), st.Predicted},
		{"missed", testutil.ToFloat64(m.ShadowMissed.WithLabelValues("emu")), st.Missed},
		{"false alarms", testutil.ToFloat64(m.ShadowFalseAlarms.WithLabelValues("emu")), st.FalseAlarms},
		{"would queue", queued, st.WouldQueue},
	} {
		if c.got != float64(c.want) {
			t.Errorf("headroom_shadow metric of %s: %v, the record says %d", c.name, c.got, c.want)
		}
	}
	waitFor(t, "the mirror to give every reservation back", func() bool { return h.reserved() == 0 })
}
