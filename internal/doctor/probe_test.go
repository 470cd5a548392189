package doctor

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
)

var probeTime = time.Date(2026, 10, 1, 9, 30, 0, 0, time.UTC)

// recorder keeps the x-amzn-RequestId of every runtime response the
// emulator sent, to compare with what the doctor reports.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	ids  map[string]int // request ID -> status
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &statusWriter{ResponseWriter: w, status: 200}
	rec.next.ServeHTTP(rw, r)
	if strings.Contains(r.URL.Path, "/model/") {
		rec.mu.Lock()
		rec.ids[w.Header().Get(bedrock.HeaderRequestID)] = rw.status
		rec.mu.Unlock()
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) { w.status = s; w.ResponseWriter.WriteHeader(s) }

// startEmulator runs the default emulator with a scenario behind an
// httptest server. wrap, when set, wraps the handler.
func startEmulator(t *testing.T, scenario string, wrap func(http.Handler) http.Handler) (*httptest.Server, *emulator.Server, *recorder) {
	t.Helper()
	cfg := config.DefaultEmulator()
	cfg.Scenario = scenario
	em, err := emulator.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return probeTime })
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{next: em, ids: map[string]int{}}
	var h http.Handler = rec
	if wrap != nil {
		h = wrap(rec)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, em, rec
}

func probeConfig(srv *httptest.Server, sized int) ProbeConfig {
	return ProbeConfig{
		AWS: aws.Config{
			Region:      "us-east-1",
			Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
			HTTPClient:  srv.Client(),
		},
		Endpoint:       srv.URL,
		Regions:        []string{"us-east-1", "us-west-2"},
		Model:          "us.anthropic.claude-sonnet-4-20250514-v1:0",
		SizedMaxTokens: sized,
		Now:            func() time.Time { return probeTime },
	}
}

// callSummary is a probe call without its request ID.
type callSummary struct {
	Region, Kind string
	OK           bool
	Message      string
}

func summarize(p *ProbeResult) []callSummary {
	var out []callSummary
	for _, rp := range p.Regions {
		for _, c := range rp.Calls {
			out = append(out, callSummary{rp.Region, c.Kind, c.OK, c.Message})
		}
	}
	return out
}

func TestProbeNormal(t *testing.T) {
	srv, _, rec := startEmulator(t, "", nil)
	home := "testdata/seed/home"
	s := ReadSettings(home, t.TempDir(), map[string]string{})
	p := Probe(context.Background(), probeConfig(srv, 4096))
	r := Analyze(s, Options{}, p)

	want := []callSummary{
		{"us-east-1", CallTiny, true, ""}, {"us-east-1", CallSized, true, ""},
		{"us-west-2", CallTiny, true, ""}, {"us-west-2", CallSized, true, ""},
	}
	if diff := cmp.Diff(want, summarize(p)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	for _, rp := range p.Regions {
		for _, c := range rp.Calls {
			if _, ok := rec.ids[c.RequestID]; !ok || c.Time != probeTime {
				t.Errorf("call %+v: request ID not one the emulator sent (%v) or wrong time", c, rec.ids)
			}
		}
	}
	// The applied quotas of the main model, read with the official client.
	var quotas []Quota
	for _, q := range p.Regions[0].Quotas {
		quotas = append(quotas, Quota{Code: q.Code, Kind: q.Kind, Applied: q.Applied, Default: q.Default})
	}
	n := func(v int64) *int64 { return &v }
	wantQuotas := []Quota{
		{Code: CodeSonnet4TPM, Kind: "tpm", Applied: n(200_000), Default: n(200_000)},
		{Code: CodeSonnet4TPD, Kind: "tpd", Applied: n(144_000_000), Default: n(144_000_000)},
	}
	if diff := cmp.Diff(wantQuotas, quotas); diff != "" {
		t.Errorf("quotas (-want +got):\n%s", diff)
	}
	if got, want := p.Account, config.DefaultEmulator().AccountID; got != want {
		t.Errorf("account = %s, want %s from the quota ARN", got, want)
	}
	if got, want := r.Models[0].Limits.Source, "service quotas (applied)"; got != want {
		t.Errorf("limits source = %s, want %s", got, want)
	}
	if got, want := r.Verdict.Name, VerdictHealthy; got != want {
		t.Errorf("verdict = %s (%s), want %s", got, r.Verdict.Summary, want)
	}
	if r.SupportCase != "" {
		t.Errorf("a healthy account got a support case:\n%s", r.SupportCase)
	}
}

func TestProbeProvisioningBug(t *testing.T) {
	srv, _, rec := startEmulator(t, config.ScenarioProvisioningBug, nil)
	s := ReadSettings("testdata/seed/home", t.TempDir(), map[string]string{})
	p := Probe(context.Background(), probeConfig(srv, 4096))
	r := Analyze(s, Options{}, p)

	want := []callSummary{
		{"us-east-1", CallTiny, false, bedrock.MsgTooManyTokensPerDay},
		{"us-west-2", CallTiny, false, bedrock.MsgTooManyTokensPerDay},
	}
	if diff := cmp.Diff(want, summarize(p)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if got, want := r.Verdict.Situation, SituationProvisioning; got != want {
		t.Fatalf("verdict = %+v, want situation 1", r.Verdict)
	}
	if got := severities(r.Findings)[FindAppliedQuota+"/"]; got != Critical {
		t.Errorf("applied-quota finding = %q, want critical", got)
	}
	assertSupportCase(t, r, rec)
	for _, want := range []string{"L-E3F10727", "L-59759B4A", "L-22F701C5", "us-east-1, us-west-2", "2026-10-01T09:30:00Z", "Account:   123456789012"} {
		if !strings.Contains(r.SupportCase, want) {
			t.Errorf("support case lacks %q:\n%s", want, r.SupportCase)
		}
	}
}

// assertSupportCase checks that the support case names exactly the request
// IDs of the calls the emulator refused.
func assertSupportCase(t *testing.T, r Report, rec *recorder) {
	t.Helper()
	var refused []string
	for id, status := range rec.ids {
		if status == http.StatusTooManyRequests {
			refused = append(refused, id)
		}
	}
	if len(refused) == 0 {
		t.Fatal("the emulator refused nothing")
	}
	for _, id := range refused {
		if !strings.Contains(r.SupportCase, id) {
			t.Errorf("support case lacks request ID %s:\n%s", id, r.SupportCase)
		}
	}
	var named []string
	for _, rp := range r.Probe.Regions {
		for _, c := range rp.Calls {
			if !c.OK {
				named = append(named, c.RequestID)
			}
		}
	}
	slices.Sort(named)
	slices.Sort(refused)
	if diff := cmp.Diff(refused, named); diff != "" {
		t.Errorf("request IDs of failed calls (-emulator +doctor):\n%s", diff)
	}
}

// TestProbeProvisioningWithoutQuotaAccess: when Service Quotas refuses
// (no permission), a tiny request refused "per day" everywhere still means
// Situation 1.
func TestProbeProvisioningWithoutQuotaAccess(t *testing.T) {
	deny := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "ServiceQuotasV20190624.") {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"__type":"AccessDeniedException","message":"not authorized to perform servicequotas:ListAWSDefaultServiceQuotas"}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	srv, _, rec := startEmulator(t, config.ScenarioProvisioningBug, deny)
	p := Probe(context.Background(), probeConfig(srv, 0))
	r := Analyze(envSettings(EnvUseBedrock, "1", EnvRegion, "us-east-1", EnvMaxOutput, "4096"), Options{}, p)
	if r.Verdict.Situation != SituationProvisioning {
		t.Fatalf("verdict = %+v, want situation 1", r.Verdict)
	}
	if !strings.Contains(p.Regions[0].QuotaError, "AccessDeniedException") {
		t.Errorf("quota error = %q, want AccessDeniedException", p.Regions[0].QuotaError)
	}
	if got := severities(r.Findings)[FindProbeError+"/"]; got != Info {
		t.Errorf("probe-error finding = %q, want info", got)
	}
	assertSupportCase(t, r, rec)
}

// TestProbeSaturated: another client holds every per-minute bucket, so even
// the tiny request is throttled per minute while the applied quotas are
// normal: reservations, Situation 2.
func TestProbeSaturated(t *testing.T) {
	srv, _, _ := startEmulator(t, config.ScenarioSaturated, nil)
	s := ReadSettings("testdata/seed/home", t.TempDir(), map[string]string{})
	p := Probe(context.Background(), probeConfig(srv, 4096))
	r := Analyze(s, Options{}, p)
	want := []callSummary{
		{"us-east-1", CallTiny, false, bedrock.MsgTooManyTokens},
		{"us-west-2", CallTiny, false, bedrock.MsgTooManyTokens},
	}
	if diff := cmp.Diff(want, summarize(p)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if r.Verdict.Situation != SituationReservations {
		t.Errorf("verdict = %+v, want situation 2", r.Verdict)
	}
	if r.SupportCase != "" {
		t.Error("Situation 2 got a support case")
	}
}

// TestProbeNearlySpent: most of the per-minute quota is held by in-flight
// reservations, so the tiny request passes and the request with Claude
// Code's default max_tokens (160,000 reserved) is throttled: Situation 2.
func TestProbeNearlySpent(t *testing.T) {
	srv, em, _ := startEmulator(t, "", nil)
	m, err := bedrock.ParseModel("us.anthropic.claude-sonnet-4-20250514-v1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, region := range []string{"us-east-1", "us-west-2"} {
		// Leave 200,000 − 150,000 = 50,000: room for 20,480, not 160,000.
		res, err := em.Account().Admit(probeTime, emulator.Call{ID: "teammate", Region: region, Model: m,
			Demand: bedrock.Demand{InputTokens: 150_000 - 4096*5, MaxTokens: 4096}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Settle(probeTime, bedrock.Usage{}) })
	}
	s := envSettings(EnvUseBedrock, "1", EnvRegion, "us-east-1", EnvModel, "us.anthropic.claude-sonnet-4-20250514-v1:0")
	cfg := probeConfig(srv, Analyze(s, Options{}, nil).Models[0].Output.MaxTokens)
	p := Probe(context.Background(), cfg)
	r := Analyze(s, Options{}, p)
	want := []callSummary{
		{"us-east-1", CallTiny, true, ""}, {"us-east-1", CallSized, false, bedrock.MsgTooManyTokens},
		{"us-west-2", CallTiny, true, ""}, {"us-west-2", CallSized, false, bedrock.MsgTooManyTokens},
	}
	if diff := cmp.Diff(want, summarize(p)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if r.Verdict.Situation != SituationReservations {
		t.Fatalf("verdict = %+v, want situation 2", r.Verdict)
	}
	if !slices.ContainsFunc(r.Verdict.Reasons, func(s string) bool { return strings.Contains(s, "max_tokens 32,000") }) {
		t.Errorf("reasons %q do not name the throttled max_tokens 32,000 request", r.Verdict.Reasons)
	}
}

// TestProbeUnreachable: nothing listens, so the verdict is inconclusive.
func TestProbeUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	cfg := probeConfig(srv, 0)
	cfg.Regions = []string{"us-east-1"}
	p := Probe(context.Background(), cfg)
	r := Analyze(envSettings(EnvUseBedrock, "1", EnvRegion, "us-east-1", EnvMaxOutput, "4096"), Options{}, p)
	if r.Verdict.Name != VerdictInconclusive {
		t.Errorf("verdict = %+v, want inconclusive", r.Verdict)
	}
	if !slices.ContainsFunc(r.Findings, func(f Finding) bool { return f.ID == FindProbeError && f.Severity == Warning }) {
		t.Errorf("findings %v lack a probe-error warning for the failed request", severities(r.Findings))
	}
}

func TestModelIn(t *testing.T) {
	tests := []struct{ id, region, want string }{
		{"us.anthropic.claude-sonnet-4-20250514-v1:0", "us-west-2", "us.anthropic.claude-sonnet-4-20250514-v1:0"},
		{"us.anthropic.claude-sonnet-4-20250514-v1:0", "eu-west-1", "eu.anthropic.claude-sonnet-4-20250514-v1:0"},
		{"eu.anthropic.claude-sonnet-4-20250514-v1:0", "ap-southeast-2", "apac.anthropic.claude-sonnet-4-20250514-v1:0"},
		{"global.anthropic.claude-sonnet-4-5-20250929-v1:0", "eu-west-1", "global.anthropic.claude-sonnet-4-5-20250929-v1:0"},
		{"anthropic.claude-sonnet-4-20250514-v1:0", "eu-west-1", "anthropic.claude-sonnet-4-20250514-v1:0"},
		{"us.anthropic.claude-sonnet-4-20250514-v1:0", "ca-central-1", "us.anthropic.claude-sonnet-4-20250514-v1:0"},
		{"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0", "eu-west-1",
			"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0"},
	}
	for _, tt := range tests {
		m, err := bedrock.ParseModel(tt.id)
		if err != nil {
			t.Fatal(err)
		}
		if got := modelIn(tt.id, m, tt.region); got != tt.want {
			t.Errorf("modelIn(%s, %s) = %s, want %s", tt.id, tt.region, got, tt.want)
		}
	}
}

// BenchmarkProbe is one doctor --probe against the in-process emulator: two
// regions, a tiny and a sized request each, and the Service Quotas reads.
func BenchmarkProbe(b *testing.B) {
	cfg := config.DefaultEmulator()
	em, err := emulator.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return probeTime })
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(em)
	defer srv.Close()
	pc := probeConfig(srv, 4096)
	ctx := context.Background()
	for b.Loop() {
		em.Reset()
		if p := Probe(ctx, pc); !p.Regions[1].Calls[1].OK {
			b.Fatalf("probe failed: %+v", p.Regions[1])
		}
	}
}
