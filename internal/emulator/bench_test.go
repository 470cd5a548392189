package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock/bedrocktest"
	"github.com/headroomhq/headroom/internal/config"
)

// benchServer has quotas far above anything a benchmark can spend, so that
// every request goes through the whole accounting path and none is refused,
// and answers of 10 tokens.
func benchServer(b *testing.B) *Server {
	b.Helper()
	cfg := oneRegion(tpm(1e15), tpd(1e15))
	cfg.Generation.OutputTokens = config.Distribution{Distribution: config.DistFixed, Mean: 10, Max: 10}
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// discardWriter is a ResponseWriter that keeps nothing, so that the
// benchmarks measure the emulator rather than a recorder.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Flush()                      {}

func benchHandler(b *testing.B, path string, body []byte) {
	s := benchServer(b)
	w := &discardWriter{h: http.Header{}}
	rd := bytes.NewReader(body)
	req := httptest.NewRequest(http.MethodPost, path, rd)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		rd.Reset(body)
		req.Body = io.NopCloser(rd)
		req.ContentLength = int64(len(body))
		clear(w.h)
		w.status = 0
		s.ServeHTTP(w, req)
		if w.status != 0 && w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkServeInvokeSmall is the emulator's own cost of a small
// InvokeModel: routing, reading the body, admission, a 10-token answer and
// settlement, without the network.
func BenchmarkServeInvokeSmall(b *testing.B) {
	benchHandler(b, "/model/"+sonnet4+"/invoke", invokeBody(100, "Say hi."))
}

// BenchmarkServeInvokeStreamSmall is the same as a stream: 7 frames.
func BenchmarkServeInvokeStreamSmall(b *testing.B) {
	benchHandler(b, "/model/"+sonnet4+"/invoke-with-response-stream", invokeBody(100, "Say hi."))
}

// BenchmarkServeInvokeSmallHTTP is a small InvokeModel over loopback HTTP/1.1
// with keep-alive, from parallel clients.
func BenchmarkServeInvokeSmallHTTP(b *testing.B) {
	s := benchServer(b)
	hs := httptest.NewServer(s)
	defer hs.Close()
	body := invokeBody(100, "Say hi.")
	url := hs.URL + "/model/" + sonnet4 + "/invoke"
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkReadMessagesFields reads model, stream and output_config of an
// 86 KB Claude Code Mantle-mode body with the bedrock scanner, against
// encoding/json decoding the same three members (the baseline it replaces).
func BenchmarkReadMessagesFields(b *testing.B) {
	body := bedrocktest.ClaudeCodeMessagesBody(86_000, 128_000, "anthropic.claude-opus-5-5")
	b.Run("scanner", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if f, err := readMessagesFields(body); err != nil || !f.stream {
				b.Fatal(f, err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var f struct {
				Model        string                     `json:"model"`
				Stream       bool                       `json:"stream"`
				OutputConfig map[string]json.RawMessage `json:"output_config"`
			}
			if err := json.Unmarshal(body, &f); err != nil || !f.Stream {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkServeMessagesStreamMantle is the emulator's own cost of Claude
// Code's Mantle-mode call (86 KB body, streamed 10-token answer, Mantle's
// ledger), without the network.
func BenchmarkServeMessagesStreamMantle(b *testing.B) {
	benchHandler(b, "/mantle/v1/messages", bedrocktest.ClaudeCodeMessagesBody(86_000, 128_000, "anthropic.claude-opus-5-5"))
}

// BenchmarkServeInvokeStreamClaudeCode is the same body as InvokeModel
// streams it (runtime ledger), the baseline of the one above.
func BenchmarkServeInvokeStreamClaudeCode(b *testing.B) {
	benchHandler(b, "/model/us.anthropic.claude-opus-5-5/invoke-with-response-stream", bedrocktest.ClaudeCodeBody(86_000, 128_000))
}

// BenchmarkScriptTurn is the tool script's one decode of an 86 KB Claude
// Code body (its tools and the messages' tool blocks), against
// encoding/json decoding the body into nothing (the floor of any decode).
func BenchmarkScriptTurn(b *testing.B) {
	body := bedrocktest.ClaudeCodeBody(86_000, 128_000)
	b.Run("scriptTurn", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := scriptTurn(body, "Write"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json-empty", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var v struct{}
			if err := json.Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
