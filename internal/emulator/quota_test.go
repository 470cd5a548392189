package emulator

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
)

// The quota checks of issue 2 section 4, each through HTTP.

// holdingServer is an emulator whose streams wait an hour for their first
// token, so that every admitted stream holds its reservation until its
// client leaves. Its responses' headers arrive at once: a 200 means admitted.
type holdingServer struct {
	s      *Server
	hs     *httptest.Server
	ctx    context.Context
	cancel context.CancelFunc
}

func newHoldingServer(t *testing.T, cfg config.Emulator) *holdingServer {
	t.Helper()
	cfg.Generation.TimeToFirstToken = config.Duration{Duration: time.Hour}
	clk := newClock()
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), clk.now)
	if err != nil {
		t.Fatal(err)
	}
	h := &holdingServer{s: s, hs: httptest.NewServer(s)}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	t.Cleanup(h.stop)
	return h
}

// open starts a stream and returns its status once the headers arrive; an
// admitted stream stays open until stop.
func (h *holdingServer) open(t *testing.T, body []byte) int {
	t.Helper()
	req, err := http.NewRequestWithContext(h.ctx, http.MethodPost, h.hs.URL+"/model/"+sonnet4+"/invoke-with-response-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		got := readError(t, resp)
		if want := throttled(bedrock.MsgTooManyTokens); got != want {
			t.Errorf("refused stream: got %+v, want %+v", got, want)
		}
	}
	return resp.StatusCode
}

// stop makes every client leave and waits for every handler to settle.
func (h *holdingServer) stop() {
	h.cancel()
	h.hs.Close()
}

// TestConcurrentReservations: how many streams with a given max_tokens are
// admitted together under 200,000 TPM. Claude Code's 32,000 takes the
// whole minute under the seed profile (160,000 + input), while 4,096 lets
// eight and more run at once.
func TestConcurrentReservations(t *testing.T) {
	tests := []struct {
		profile   string
		maxTokens int
		charge    int64 // per request, without the input
		fit       int
	}{
		{"seed", 32_000, 160_000, 1},
		{"seed", 4096, 20_480, 9},
		{"aws", 32_000, 32_000, 6},
		{"aws", 4096, 4096, 48},
	}
	for _, tt := range tests {
		t.Run(tt.profile+"/"+strconv.Itoa(tt.maxTokens), func(t *testing.T) {
			cfg := oneRegion(tpm(200_000), tpd(144_000_000))
			cfg.Accounting.Profile = tt.profile
			h := newHoldingServer(t, cfg)
			body := invokeBody(tt.maxTokens, "Refactor the parser.")
			in := inputTokens(t, body)
			if in > 40 {
				t.Fatalf("input %d is too large for the table's counts", in)
			}
			fit := 0
			for h.open(t, body) == http.StatusOK {
				fit++
				if fit > 100 {
					t.Fatal("no limit")
				}
			}
			if fit != tt.fit {
				t.Errorf("%d streams admitted together, want %d", fit, tt.fit)
			}
			st := h.s.Account().State(t0)
			if got, want := st.bucket(t, "us-east-1", "tpm").Reserved, int64(tt.fit)*(tt.charge+in); got != want {
				t.Errorf("reserved %d, want %d × (%d + %d input)", got, tt.fit, tt.charge, in)
			}
			h.stop()
			// Clients that leave before the first token pay their input only.
			st = h.s.Account().State(t0)
			if got, want := (usedReserved{st.bucket(t, "us-east-1", "tpm").Used, st.bucket(t, "us-east-1", "tpm").Reserved}), (usedReserved{int64(tt.fit) * in, 0}); got != want {
				t.Errorf("after the clients left: %+v, want %+v", got, want)
			}
		})
	}
}

// TestSettlementGivesBack: a finished call keeps only its settlement charge
// (input + output × 5), reports the same usage, and gives the rest of its
// 160,000 reservation back at once.
func TestSettlementGivesBack(t *testing.T) {
	for _, tt := range []struct {
		profile string
		want    func(in int64) int64
	}{
		{"seed", func(in int64) int64 { return in + 100*5 }},
		{"aws", func(in int64) int64 { return in + 100*5 }},
	} {
		t.Run(tt.profile, func(t *testing.T) {
			cfg := oneRegion(tpm(200_000))
			cfg.Accounting.Profile = tt.profile
			ts := newTestServer(t, cfg)
			body := invokeBody(32_000, "Summarise the design.")
			in := inputTokens(t, body)
			for i := range 3 { // each fits again after the previous settled
				resp := post(t, ts.url+"/model/"+sonnet4+"/invoke", body, HeaderOutputTokens, "100")
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("call %d: status %d", i, resp.StatusCode)
				}
				gotUsage := [2]string{resp.Header.Get(bedrock.HeaderInputTokens), resp.Header.Get(bedrock.HeaderOutputTokens)}
				if want := [2]string{strconv.FormatInt(in, 10), "100"}; gotUsage != want {
					t.Errorf("usage headers %v, want %v", gotUsage, want)
				}
				b := ts.state(t).bucket(t, "us-east-1", "tpm")
				want := BucketState{Name: "tpm", Kind: config.KindTPM, Limit: 200_000,
					Used: int64(i+1) * tt.want(in), Available: 200_000 - int64(i+1)*tt.want(in)}
				if d := cmp.Diff(want, b); d != "" {
					t.Errorf("call %d: bucket (-want +got):\n%s", i, d)
				}
			}
		})
	}
}

// TestAWSExtraCharge: under the aws profile a settlement above the
// reservation is charged in full (BEDROCK.md: "the final charge can exceed
// the reservation").
func TestAWSExtraCharge(t *testing.T) {
	cfg := oneRegion(tpm(200_000))
	cfg.Accounting.Profile = "aws"
	ts := newTestServer(t, cfg)
	body := invokeBody(1250, "Write the tests.")
	in := inputTokens(t, body)
	resp := post(t, ts.url+"/model/"+sonnet4+"/invoke-with-response-stream", body, HeaderOutputTokens, "1000")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	b := ts.state(t).bucket(t, "us-east-1", "tpm")
	if got, want := (usedReserved{b.Used, b.Reserved}), (usedReserved{in + 5000, 0}); got != want {
		t.Errorf("got %+v, want %+v (admission was only %d)", got, want, in+1250)
	}
}

// TestDailyExhaustion: the daily bucket refuses with the daily message and
// its window reopens at 00:00 UTC.
func TestDailyExhaustion(t *testing.T) {
	ts := newTestServer(t, oneRegion(tpm(10_000_000), tpd(50_000)))
	body := invokeBody(4096, "Fix the bug.")
	in := inputTokens(t, body)
	// Each call reserves 20,480 + input and settles at input + 5,000.
	wantOK := int((50_000-20_480-in)/(5_000+in) + 1)
	call := func() *http.Response {
		return post(t, ts.url+"/model/"+sonnet4+"/invoke", body, HeaderOutputTokens, "1000")
	}
	for i := range wantOK {
		resp := call()
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: status %d", i, resp.StatusCode)
		}
	}
	if got, want := readError(t, call()), throttled(bedrock.MsgTooManyTokensPerDay); got != want {
		t.Errorf("call %d: got %+v, want %+v", wantOK, got, want)
	}
	ts.clock.advance(13*time.Hour + 59*time.Minute) // 23:59 UTC
	if got, want := readError(t, call()), throttled(bedrock.MsgTooManyTokensPerDay); got != want {
		t.Errorf("at 23:59: got %+v, want %+v", got, want)
	}
	ts.clock.advance(time.Minute)
	resp := call()
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after the daily reset: status %d", resp.StatusCode)
	}
}

// TestProvisioningBugHTTP: the seed's Situation 1: the first, smallest
// request fails with the daily message, in every region.
func TestProvisioningBugHTTP(t *testing.T) {
	for _, profile := range []string{"seed", "aws"} {
		cfg := config.DefaultEmulator()
		cfg.Scenario = config.ScenarioProvisioningBug
		cfg.Accounting.Profile = profile
		ts := newTestServer(t, cfg)
		for _, region := range []string{"us-east-1", "us-west-2", "eu-west-1"} {
			resp := post(t, ts.url+"/region/"+region+"/model/"+sonnet4+"/invoke", invokeBody(1, "hi"))
			if got, want := readError(t, resp), throttled(bedrock.MsgTooManyTokensPerDay); got != want {
				t.Errorf("%s %s: got %+v, want %+v", profile, region, got, want)
			}
			if resp.Header.Get("Retry-After") != "" {
				t.Errorf("%s: Bedrock sends no Retry-After", region)
			}
			if resp.Header.Get(bedrock.HeaderRequestID) == "" {
				t.Errorf("%s: no request ID for the support case", region)
			}
		}
	}
}

// TestRequestsPerMinuteHTTP: an rpm bucket refuses with the requests message.
func TestRequestsPerMinuteHTTP(t *testing.T) {
	ts := newTestServer(t, oneRegion(rpm(1)))
	for i, want := range []int{http.StatusOK, http.StatusTooManyRequests} {
		resp := post(t, ts.url+"/model/"+sonnet4+"/invoke", invokeBody(10, "hi"))
		if resp.StatusCode != want {
			t.Fatalf("call %d: status %d, want %d", i, resp.StatusCode, want)
		}
		if want == http.StatusTooManyRequests {
			if got := readError(t, resp); got != throttled(bedrock.MsgTooManyRequests) {
				t.Errorf("got %+v", got)
			}
		}
		resp.Body.Close()
	}
}
