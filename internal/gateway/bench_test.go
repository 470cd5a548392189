package gateway

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/metrics"
	"syscall"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/bedrock/bedrocktest"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/httpsrv"
	"github.com/headroomhq/headroom/internal/keys"
)

// replay is an upstream that answers every call with one recorded answer,
// so that a benchmark measures the gateway, not the emulator.
type replay struct {
	header http.Header
	body   []byte
}

func (r *replay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	for k, v := range r.header {
		w.Header()[k] = v
	}
	_, _ = w.Write(r.body)
}

// record asks an emulator once for op's answer to body.
func record(b *testing.B, op string, body []byte) *replay {
	return recordPath(b, "/model/"+sonnet+"/"+op, body)
}

// recordPath asks an emulator once for its answer to body at path.
func recordPath(b *testing.B, path string, body []byte) *replay {
	emu, err := emulator.New(config.DefaultEmulator(), slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set(emulator.HeaderOutputTokens, "200")
	rec := httptest.NewRecorder()
	emu.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("recording %s: %d %s", path, rec.Code, rec.Body.String())
	}
	h := rec.Header().Clone()
	h.Del("Content-Length")
	return &replay{header: h, body: rec.Body.Bytes()}
}

func benchGateway(b *testing.B, op string, body []byte, output *admission.OutputSettings) {
	benchGatewayPath(b, "/model/"+sonnet+"/"+op, body, record(b, op, body), output)
}

// benchGatewayPath measures body sent to path, answered by rp.
func benchGatewayPath(b *testing.B, path string, body []byte, rp *replay, output *admission.OutputSettings) {
	h := newHarness(b, harnessOpts{
		buckets:     testBuckets(1e15, 1e18),
		keys:        []keys.Key{{Name: "alice", Weight: 1}},
		settleDelay: -1,
		upstream:    rp,
		output:      output,
	})
	secret := h.secret["alice"]
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		rec := httptest.NewRecorder()
		h.gw.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	}
}

// BenchmarkGatewayInvokeSmall is the whole per-request path of a small
// InvokeModel: auth, read, clamp, rewrite, admit, forward over loopback
// HTTP to a replaying upstream, pass back, settle.
func BenchmarkGatewayInvokeSmall(b *testing.B) {
	benchGateway(b, "invoke", []byte(fmt.Sprintf(smallMsg, 32000)), nil)
}

// BenchmarkGatewayStream86KB is the same for an 86 KB Claude Code-shaped
// streaming call (max_tokens 32,000 with thinking, clamped and rewritten),
// metering every frame of a 200-token answer.
func BenchmarkGatewayStream86KB(b *testing.B) {
	benchGateway(b, "invoke-with-response-stream", bedrocktest.ClaudeCodeBody(86<<10, 32000), nil)
}

// BenchmarkGatewayStream86KBLearned is BenchmarkGatewayStream86KB with
// serve's default, the learned output policy: Controller.Room, the
// decision, and learning from the settled usage (against the fixed cap of
// the benchmark above).
func BenchmarkGatewayStream86KBLearned(b *testing.B) {
	s := admission.DefaultOutputSettings()
	benchGateway(b, "invoke-with-response-stream", bedrocktest.ClaudeCodeBody(86<<10, 32000), &s)
}

// BenchmarkGatewayMessagesStream86KB is BenchmarkGatewayStream86KB for an
// 86 KB Claude Code-shaped Messages API stream (POST /anthropic/v1/messages,
// max_tokens 32,000 with adaptive thinking, clamped and rewritten,
// anthropic_version added for the runtime), metering the server-sent events
// of a 200-token answer.
func BenchmarkGatewayMessagesStream86KB(b *testing.B) {
	body := bedrocktest.ClaudeCodeMessagesBody(86<<10, 32000, sonnet)
	benchGatewayPath(b, "/anthropic/v1/messages", body, recordPath(b, "/anthropic/v1/messages", body), nil)
}

// BenchmarkPassStreamMeter is the streaming pass-through and metering alone,
// on a recorded 200-token answer.
func BenchmarkPassStreamMeter(b *testing.B) {
	rp := record(b, "invoke-with-response-stream", []byte(fmt.Sprintf(smallMsg, 4096)))
	b.SetBytes(int64(len(rp.body)))
	b.ReportAllocs()
	for b.Loop() {
		resp := &http.Response{StatusCode: 200, Header: rp.header, Body: io.NopCloser(bytes.NewReader(rp.body))}
		res := passStream(httptest.NewRecorder(), resp, func(bedrock.Usage) {})
		if !res.known {
			b.Fatal("usage not metered")
		}
	}
}

// TestWriteBenchBody is not a test: scripts/bench-gateway.sh runs it with
// HEADROOM_BENCH_BODY_OUT=FILE to get the 86 KB Claude Code-shaped body the
// Go benchmarks use, and HEADROOM_BENCH_MESSAGES_OUT=FILE for the Messages
// API body of the same size (Claude Code's Mantle-mode shape).
func TestWriteBenchBody(t *testing.T) {
	out, msgs := os.Getenv("HEADROOM_BENCH_BODY_OUT"), os.Getenv("HEADROOM_BENCH_MESSAGES_OUT")
	if out == "" && msgs == "" {
		t.Skip("only for scripts/bench-gateway.sh")
	}
	if out != "" {
		if err := os.WriteFile(out, bedrocktest.ClaudeCodeBody(86<<10, 32000), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if msgs != "" {
		if err := os.WriteFile(msgs, bedrocktest.ClaudeCodeMessagesBody(86<<10, 32000, sonnet), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkGatewayProtocols is small InvokeModels through the gateway as
// `serve` serves it (httpsrv.New, over loopback TCP) from 16 concurrent
// callers, over HTTP/1.1 (a connection per caller, as the Go SDK does) and
// over h2c (every call a stream of one connection, as the JavaScript SDK's
// default handler does), in the same run; and, as the baseline of what h2c
// support may cost HTTP/1.1, HTTP/1.1 against a server as `serve` built it
// before (a plain http.Server).
func BenchmarkGatewayProtocols(b *testing.B) {
	body := []byte(fmt.Sprintf(smallMsg, 32000))
	h1 := func() *http.Client {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		return &http.Client{Transport: tr}
	}
	for _, p := range []struct {
		name   string
		plain  bool
		client *http.Client
	}{
		{"HTTP1.1-plain-server", true, h1()},
		{"HTTP1.1", false, h1()},
		{"h2c", false, &http.Client{Transport: httpsrv.H2CTransport()}},
	} {
		b.Run(p.name, func(b *testing.B) {
			h := newHarness(b, harnessOpts{
				buckets:     testBuckets(1e15, 1e18),
				keys:        []keys.Key{{Name: "alice", Weight: 1}},
				settleDelay: -1,
				upstream:    record(b, "invoke", body),
			})
			base := h.gwServe
			if p.plain {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				hs := &http.Server{Handler: h.gw, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
				go func() { _ = hs.Serve(ln) }()
				b.Cleanup(func() { _ = hs.Close() })
				base = "http://" + ln.Addr().String()
			}
			url := base + "/model/" + sonnet + "/invoke"
			auth := "Bearer " + h.secret["alice"]
			b.ReportAllocs()
			b.SetParallelism(8) // 16 callers on 2 Ps
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
					req.Header.Set("Authorization", auth)
					resp, err := p.client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// BenchmarkAddedLatency is what scripts/bench-gateway.sh measures with wrk,
// in one process: one client sending requests one after another over
// loopback TCP (keep-alive), straight to the replaying upstream ("direct")
// and through the gateway served as `headroom serve` serves it, with serve's
// default output policy and settle delay ("gateway"). The difference of the
// two ns/op is the wall-clock time the gateway adds to a request; run both
// in the same run (and alternate runs) to compare commits.
func BenchmarkAddedLatency(b *testing.B) {
	msgs := bedrocktest.ClaudeCodeMessagesBody(86<<10, 32000, sonnet)
	invoke := []byte(fmt.Sprintf(smallMsg, 32000))
	for _, c := range []struct {
		name, path string
		body       []byte
	}{
		{"Messages86KB", "/anthropic/v1/messages", msgs},
		{"InvokeSmall", "/model/" + sonnet + "/invoke", invoke},
	} {
		rp := recordPath(b, c.path, c.body)
		s := admission.DefaultOutputSettings()
		h := newHarness(b, harnessOpts{
			buckets:  testBuckets(1e15, 1e18),
			keys:     []keys.Key{{Name: "alice", Weight: 1}},
			upstream: rp,
			output:   &s,
		})
		for _, to := range []struct{ name, base string }{{"direct", h.emuURL}, {"gateway", h.gwServe}} {
			b.Run(c.name+"/"+to.name, func(b *testing.B) {
				tr := http.DefaultTransport.(*http.Transport).Clone()
				tr.DisableCompression = true
				client := &http.Client{Transport: tr}
				defer tr.CloseIdleConnections()
				auth := "Bearer " + h.secret["alice"]
				send := func() {
					req, _ := http.NewRequest(http.MethodPost, to.base+c.path, bytes.NewReader(c.body))
					req.Header.Set("Authorization", auth)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
				send() // the connections are open before the clock starts
				b.SetBytes(int64(len(c.body)))
				b.ReportAllocs()
				cpu0, gor0 := processCPU(b), goroutinesCreated()
				b.ResetTimer()
				for b.Loop() {
					send()
				}
				b.StopTimer()
				// Goroutines started per request (client, gateway and
				// upstream): each is a wake-up the scheduler may hand to
				// another thread.
				b.ReportMetric(float64(goroutinesCreated()-gor0)/float64(b.N), "goroutines/op")
				// CPU of the whole process (client, gateway, upstream) per
				// request: on a shared machine a steadier measure than the
				// wall clock, and gateway minus direct is the gateway's own.
				b.ReportMetric(float64(processCPU(b)-cpu0)/1e3/float64(b.N), "cpu-µs/op")
			})
		}
	}
}

// goroutinesCreated is how many goroutines this process has started.
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// processCPU is the user and system CPU time this process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
