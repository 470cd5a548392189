package dashboard

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/gateway"
	"github.com/headroomhq/headroom/internal/metrics"
	"github.com/headroomhq/headroom/internal/quota"
)

func TestRingSince(t *testing.T) {
	r := newRing(3)
	for i := range 5 {
		r.add(int64(i), []int64{int64(i)})
	}
	seqs := func(ps []point) (out []int64) {
		for _, p := range ps {
			out = append(out, p.seq)
		}
		return out
	}
	for _, tt := range []struct {
		since int64
		want  []int64
		whole bool
	}{
		{since: 0, want: []int64{3, 4, 5}, whole: false}, // older than the ring: all it holds
		{since: 2, want: []int64{3, 4, 5}, whole: true},
		{since: 4, want: []int64{5}, whole: true},
		{since: 5, want: nil, whole: true},
		{since: 9, want: []int64{3, 4, 5}, whole: false}, // from a ring that restarted
	} {
		ps, whole := r.since(tt.since)
		if diff := cmp.Diff(tt.want, seqs(ps)); diff != "" || whole != tt.whole {
			t.Errorf("since(%d): whole %v, want %v; seqs (-want +got):\n%s", tt.since, whole, tt.whole, diff)
		}
	}
}

func TestQuantile(t *testing.T) {
	bounds := []float64{0.1, 1, 10, math.Inf(1)}
	for _, tt := range []struct {
		name      string
		then, now []uint64
		want      float64
		ok        bool
	}{
		{name: "no samples", now: []uint64{0, 0, 0, 0}, ok: false},
		{name: "all fast", now: []uint64{100, 100, 100, 100}, want: 0.095, ok: true},
		// 90 under 0.1 s, 10 between 1 and 10 s: the 95th is half-way into (1, 10].
		{name: "slow tail", now: []uint64{90, 90, 100, 100}, want: 5.5, ok: true},
		{name: "beyond the last bound", now: []uint64{0, 0, 0, 10}, want: 10, ok: true},
		// Only what happened since then counts: the 90 fast ones are old.
		{name: "window", then: []uint64{90, 90, 90, 90}, now: []uint64{90, 90, 100, 100}, want: 9.55, ok: true},
	} {
		got, ok := quantile(0.95, bounds, tt.then, tt.now)
		if ok != tt.ok || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: quantile = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

// fakeStatus is a gateway with one upstream and one TPM bucket whose use
// the test sets.
type fakeStatus struct{ used int64 }

func (f *fakeStatus) status(now time.Time) gateway.Status {
	b := admission.BucketStatus{BucketState: quota.BucketState{Name: "tpm", KindName: "tpm", Limit: 1000, Effective: 800, Used: f.used}, Queued: 2}
	return gateway.Status{Time: now.UTC().Format(time.RFC3339), Day: now.UTC().Format(time.DateOnly),
		Upstreams: []gateway.UpstreamStatus{{Name: "emu", Queued: 2, Buckets: []gateway.BucketStatus{{BucketStatus: b}}}},
		Keys:      []gateway.KeyStatus{{Name: "alice", Weight: 1, UsedToday: f.used}}}
}

// TestViewSeriesAndCounters: the data the page polls carries every sample
// once (a poll after seq gets only the newer ones), a minute's points
// folded into the day ring, the throttles by source and kind, and each
// key's p95 queue wait.
func TestViewSeriesAndCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.Throttles.WithLabelValues("gateway", "budget").Inc()
	m.Throttles.WithLabelValues("upstream", "tpm").Add(2)
	for range 19 {
		m.KeyQueueWait.WithLabelValues("alice").Observe(0.005)
	}
	m.KeyQueueWait.WithLabelValues("alice").Observe(4)
	m.Clamps.WithLabelValues("alice", "max_tokens").Inc()
	f := &fakeStatus{}
	d := New(Options{Status: f.status, Gatherer: reg})
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := range 40 { // 80 s: one whole minute and part of the next
		f.used = int64(10 * i)
		d.Sample(t0.Add(time.Duration(i) * Step))
	}
	v := d.view(t0.Add(80*time.Second), 0, 0)
	if len(v.Hour.T) != 40 || !v.Hour.Reset || v.Hour.Seq != 40 {
		t.Fatalf("hour: %d points, reset %v, seq %d; want 40, true, 40", len(v.Hour.T), v.Hour.Reset, v.Hour.Seq)
	}
	if got := v.Hour.V[39]; !cmp.Equal(got, []int64{1000, 800, 390, 0, 2}) {
		t.Errorf("last point %v, want limit, effective, used, reserved, queued = 1000 800 390 0 2", got)
	}
	// The day ring has the first minute, folded: its most used.
	if len(v.Day.V) != 1 || v.Day.V[0][fUsed] != 290 {
		t.Errorf("day: %v, want one minute with used 290 (its largest)", v.Day.V)
	}
	next := d.view(t0.Add(80*time.Second), 38, 1)
	if len(next.Hour.T) != 2 || next.Hour.Reset || len(next.Day.T) != 0 {
		t.Errorf("after seq 38: %d hour points (reset %v), %d day points; want 2, false, 0", len(next.Hour.T), next.Hour.Reset, len(next.Day.T))
	}
	want := map[string]float64{"gateway/budget": 1, "upstream/tpm": 2}
	if diff := cmp.Diff(want, v.Throttles); diff != "" {
		t.Errorf("throttles (-want +got):\n%s", diff)
	}
	a := v.Keys["alice"]
	// 19 of 20 waits are under 10 ms: the 95th is at the top of (0.001, 0.01].
	if a.P95Wait == nil || math.Abs(*a.P95Wait-0.01) > 1e-9 || a.Clamps != 1 {
		t.Errorf("alice: p95 %v, clamps %v; want 0.01 and 1", a.P95Wait, a.Clamps)
	}
}

// TestServeHTTP: the page and its files come from the binary, the data is
// JSON, and nothing but GET is served.
func TestServeHTTP(t *testing.T) {
	f := &fakeStatus{used: 5}
	d := New(Options{Status: f.status})
	d.Sample(time.Now())
	for _, tt := range []struct {
		method, path, ctype string
		status              int
		has                 string
	}{
		{"GET", "/", "text/html; charset=utf-8", 200, `<script src="/dashboard/app.js">`},
		{"GET", "/dashboard/app.js", "text/javascript; charset=utf-8", 200, "function poll"},
		{"GET", "/dashboard/app.css", "text/css; charset=utf-8", 200, "--c-used"},
		{"GET", "/v1/dashboard", "application/json", 200, `"bucket":"tpm"`},
		{"GET", "/dashboard/nothing", "", 404, ""},
		{"POST", "/v1/dashboard", "", 405, ""},
	} {
		w := httptest.NewRecorder()
		d.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
		if w.Code != tt.status || tt.ctype != "" && w.Header().Get("Content-Type") != tt.ctype || !strings.Contains(w.Body.String(), tt.has) {
			t.Errorf("%s %s: %d %q, want %d %q containing %q", tt.method, tt.path, w.Code, w.Header().Get("Content-Type"), tt.status, tt.ctype, tt.has)
		}
		if tt.path == "/v1/dashboard" && w.Code == http.StatusOK {
			var v View
			if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || len(v.Status.Keys) != 1 {
				t.Errorf("data: %v, %d keys", err, len(v.Status.Keys))
			}
		}
	}
}
