package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/store/sqlitestore"
)

// BenchmarkServeDashboard measures serve's request path (a small
// InvokeModel through the gateway that buildServer wires, answered by a
// replay of the emulator's answer) with the dashboard closed and open. Open
// is the page's work made 20 times denser than a real page's: a poll of
// GET /v1/dashboard every 100 ms (the page polls every 2 s) and a sample
// every 100 ms (serve samples every 2 s), on 20 keys. Run both in the same
// run and compare: go test -run ^$ -bench ServeDashboard -count 6 ./internal/cli/
func BenchmarkServeDashboard(b *testing.B) {
	for _, open := range []bool{false, true} {
		name := "page=closed"
		if open {
			name = "page=open"
		}
		b.Run(name, func(b *testing.B) { benchServeDashboard(b, open) })
	}
}

// BenchmarkDashboardCycle is one 2-second cycle of an open page, on the
// same 20-key serve: one sample of the buckets and one poll of
// /v1/dashboard for what is new. Its time per op, over 2 s, is the share of
// one core that an open page costs.
func BenchmarkDashboardCycle(b *testing.B) {
	srv, send := benchServer(b)
	send()
	now := time.Now()
	var seq int64
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(2 * time.Second)
		srv.dash.Sample(now)
		w := httptest.NewRecorder()
		srv.gw.ServeHTTP(w, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/v1/dashboard?hour=%d&day=%d", seq, seq/30), nil))
		if w.Code != http.StatusOK {
			b.Fatalf("poll: %d", w.Code)
		}
		seq++
	}
}

func benchServeDashboard(b *testing.B, open bool) {
	srv, send := benchServer(b)
	send()
	benchServeDashboardRun(b, srv, send, open)
}

// benchServer is serve as buildServer wires it, with 20 keys, in front of a
// replay of the emulator's answer to a small InvokeModel, and a func that
// sends that request as the last key.
func benchServer(b *testing.B) (*server, func()) {
	ctx := context.Background()
	const path = "/model/" + hostileModel + "/invoke"
	emu, err := emulator.New(config.DefaultEmulator(), slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	emu.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader([]byte(hostileBody))))
	answer, header := rec.Body.Bytes(), rec.Header().Clone()
	header.Del("Content-Length")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for k, v := range header {
			w.Header()[k] = v
		}
		_, _ = w.Write(answer)
	}))
	b.Cleanup(up.Close)

	cfgPath := filepath.Join(b.TempDir(), "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
upstreams:
  - name: emu
    region: us-east-1
    endpoint: %s
    auth: {mode: none}
    buckets:
      - {name: tpm, kind: tpm, limit: 1000000000000000}
      - {name: tpd, kind: tpd, limit: 1000000000000000000}
`, up.URL)), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.LoadServe(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "data"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	var secret string
	for i := range 20 {
		s := keys.NewSecret()
		if err := st.Create(ctx, keys.Key{Name: fmt.Sprintf("dev-%02d", i), Hash: keys.Hash(s), Weight: 1, CreatedAt: time.Now().UTC()}); err != nil {
			b.Fatal(err)
		}
		secret = s
	}
	srv, err := buildServer(ctx, cfg, st, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	return srv, func() {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader([]byte(hostileBody)))
		req.Header.Set("Authorization", "Bearer "+secret)
		w := httptest.NewRecorder()
		srv.gw.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	}
}

func benchServeDashboardRun(b *testing.B, srv *server, send func(), open bool) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var polls int
	if open {
		wg.Go(func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			var hourSeq, daySeq int64
			for {
				select {
				case <-stop:
					return
				case now := <-t.C:
					srv.dash.Sample(now)
					w := httptest.NewRecorder()
					srv.gw.ServeHTTP(w, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/v1/dashboard?hour=%d&day=%d", hourSeq, daySeq), nil))
					if w.Code != http.StatusOK || w.Body.Len() == 0 {
						panic(fmt.Sprintf("dashboard poll: %d", w.Code))
					}
					hourSeq++ // the page asks for what is newer than it has
					polls++
				}
			}
		})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		send()
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	if open {
		b.ReportMetric(float64(polls)/b.Elapsed().Seconds(), "polls/s")
	}
}
