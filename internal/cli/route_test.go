package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/claudecodetest"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/doctor"
	"github.com/headroomhq/headroom/internal/emulator"
)

// regionsServe starts an emulator with two regions, us-east-1 with a
// minute bucket of eastTPM and us-west-2 with 100M, served through wrap,
// and `headroom serve` routing over east then west (both configured with
// 100M: the mirror does not know east's quota), plus extra top-level
// YAML. It returns serve's URL and a key.
func regionsServe(t *testing.T, eastTPM int64, wrap func(emu http.Handler) http.HandlerFunc, extra string) (base, key string) {
	t.Helper()
	ec := config.DefaultEmulator()
	ec.Regions = []config.EmulatorRegion{
		{Name: "us-east-1", Buckets: []config.Bucket{{Name: "tpm", Kind: config.KindTPM, Limit: eastTPM}}},
		{Name: "us-west-2", Buckets: []config.Bucket{{Name: "tpm", Kind: config.KindTPM, Limit: 100_000_000}}},
	}
	ec.DefaultRegion = "us-east-1"
	emu, err := emulator.New(ec, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	es := httptest.NewServer(wrap(emu))
	t.Cleanup(es.Close)
	args, data := serveYAML(t, fmt.Sprintf(`listen: 127.0.0.1:0
upstreams:
  - {name: east, region: us-east-1, endpoint: %[1]s/region/us-east-1, auth: {mode: none}, buckets: [{name: tpm, kind: tpm, limit: 100000000}]}
  - {name: west, region: us-west-2, endpoint: %[1]s/region/us-west-2, auth: {mode: none}, buckets: [{name: tpm, kind: tpm, limit: 100000000}]}
routes:
  - {upstreams: [east, west]}
`, es.URL)+extra)
	key = newKey(t, "dev", "--data-dir", data)
	return startInProcess(t, args).url(t), key
}

// twoRegionServe is regionsServe with east's quota too small for any
// Claude Code call (so east throttles every one, unseen by the mirror),
// and serve's breaker taking an upstream out at the first failure (Claude
// Code makes one to three calls). It also returns the count of 429s east
// answered.
func twoRegionServe(t *testing.T) (base, key string, east429 *atomic.Int64) {
	t.Helper()
	east429 = &atomic.Int64{}
	base, key = regionsServe(t, 1000, func(emu http.Handler) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			emu.ServeHTTP(rec, r)
			if rec.Code == http.StatusTooManyRequests && strings.HasPrefix(r.URL.Path, "/region/us-east-1/") {
				east429.Add(1)
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		}
	}, "failover: {trip_after: 1}\n")
	return base, key, east429
}

// TestClaudeCodeThroughThrottledRegion is issue 11 §3's routing check with
// the real Claude Code: region one throttles every call, and `claude -p`
// (its own retries off, so one 429 reaching it would fail the run)
// completes through serve, which moved the calls to region two before the
// first byte and took region one out of the route.
func TestClaudeCodeThroughThrottledRegion(t *testing.T) {
	claude := claudecodetest.Binary(t)
	t.Parallel()
	base, key, east429 := twoRegionServe(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	res, ok := claudecodetest.Run(ctx, t, claude, base, key, "Say hello.", "CLAUDE_CODE_MAX_RETRIES=0")
	if !ok || res.IsError {
		t.Fatalf("claude -p did not complete: ok %v, is_error %v, err %v\nstdout %.2000s\nstderr %.2000s", ok, res.IsError, res.Err, res.Stdout, res.Stderr)
	}
	if east429.Load() == 0 {
		t.Fatal("east never throttled: this run does not test failover")
	}
	metrics := get(t, base+"/metrics")
	if !strings.Contains(metrics, `headroom_routed_requests_total{reason="failover",upstream="west"}`) {
		t.Errorf("/metrics counts no failover to west:\n%s", grepLines(metrics, "headroom_routed"))
	}
	if !strings.Contains(metrics, `headroom_upstream_out{upstream="east"} 1`) {
		t.Errorf("/metrics does not show east out:\n%s", grepLines(metrics, "headroom_upstream_out"))
	}
	var st struct {
		Upstreams []struct {
			Name    string `json:"name"`
			Routing struct {
				State  string           `json:"state"`
				Cause  string           `json:"cause"`
				Served map[string]int64 `json:"served"`
			} `json:"routing"`
		} `json:"upstreams"`
	}
	if err := json.Unmarshal([]byte(get(t, base+"/v1/status")), &st); err != nil {
		t.Fatal(err)
	}
	for _, u := range st.Upstreams {
		if u.Name == "east" && (u.Routing.State != "out" || u.Routing.Cause != "throttled") {
			t.Errorf("east's routing status %+v, want out (throttled)", u.Routing)
		}
		if u.Name == "west" && u.Routing.Served["failover"] == 0 {
			t.Errorf("west's routing status %+v, want requests served by failover", u.Routing)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestDoctorKnowsRoutes: `doctor --probe` through a gateway whose route
// spans two regions says so (no advice about Claude Code's own region,
// which the gateway's upstreams override), and reports the upstream the
// circuit breaker took out, with its cause.
func TestDoctorKnowsRoutes(t *testing.T) {
	noAWSCredentials(t)
	base, key, east429 := twoRegionServe(t)
	for range 3 { // east throttles the first and is out: the others go to west
		req, _ := http.NewRequest(http.MethodPost, base+"/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke",
			strings.NewReader(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request through serve: %d %s", resp.StatusCode, b)
		}
	}
	if east429.Load() != 1 {
		t.Fatalf("east throttled %d requests, want 1 (then out of the route)", east429.Load())
	}
	project := claudeProject(t, map[string]string{
		doctor.EnvUseBedrock: "1", doctor.EnvRegion: "eu-central-1", doctor.EnvBaseURL: base, doctor.EnvBearer: key,
	})
	_, r, raw := doctorJSON(t, project, "--probe")
	if !r.Probe.ThroughGateway() {
		t.Fatalf("the probe did not go through the gateway:\n%s", raw)
	}
	if f, ok := findingOf(r, doctor.FindRoute); !ok || f.Severity != doctor.OK || !strings.Contains(f.Title, "over 2 upstreams (us-east-1, us-west-2)") {
		t.Errorf("route finding %+v, want OK over both regions", f)
	}
	if f, ok := findingOf(r, doctor.FindUpstreamOut); !ok || f.Severity != doctor.Warning || !strings.Contains(f.Title, "east") || !strings.Contains(f.Why, "throttled") {
		t.Errorf("upstream-out finding %+v, want a warning naming east and its cause", f)
	}
	if f, ok := findingOf(r, doctor.FindRegion); ok {
		t.Errorf("a region finding through a gateway, whose upstreams choose the region: %+v", f)
	}
	if doing := strings.Join(r.Verdict.Gateway, "\n"); !strings.Contains(doing, "or to west when it has no room now or fails before the first byte") {
		t.Errorf("the verdict does not say how Headroom routes:\n%s", doing)
	}
}
