package gateway

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/httpsrv"
	"github.com/headroomhq/headroom/internal/jssdktest"
)

// serveCounting serves h as `serve` and `emulate` do (httpsrv.New) and
// counts the requests that arrived over HTTP/1.x and over HTTP/2.
func serveCounting(t *testing.T, h http.Handler, h1, h2 *atomic.Int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := httpsrv.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			h2.Add(1)
		} else {
			h1.Add(1)
		}
		h.ServeHTTP(w, r)
	}), slog.New(slog.DiscardHandler))
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return "http://" + ln.Addr().String()
}

// TestJavaScriptSDK: the JavaScript AWS SDK v3 with its default request
// handler (HTTP/2; before h2c it failed with ERR_HTTP2_ERROR on http://)
// does InvokeModel, InvokeModelWithResponseStream, Converse and
// ConverseStream, and two streams at once on one connection, against the
// emulator and through the gateway with only the endpoint and the
// credentials changed (the Headroom key as the SigV4 access key id).
func TestJavaScriptSDK(t *testing.T) {
	t.Parallel()
	modules := jssdktest.Modules(t)
	h := newHarness(t, harnessOpts{})
	var h1, h2 atomic.Int64
	targets := []struct{ name, url, key string }{
		{"emulator", serveCounting(t, h.emu, &h1, &h2), "AKIDEXAMPLE"},
		{"gateway", serveCounting(t, h.gw, &h1, &h2), h.secret["alice"]},
	}
	for _, tg := range targets {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		res, ok := jssdktest.Run(ctx, t, modules, tg.url, sonnet, tg.key)
		cancel()
		if !ok || res.Err != nil || res.Error != nil {
			t.Fatalf("%s: %v %+v\nstdout %s\nstderr %s", tg.name, res.Err, res.Error, res.Stdout, res.Stderr)
		}
		for op, r := range map[string]jssdktest.Invoke{"InvokeModel": res.Invoke, "InvokeModelWithResponseStream": res.InvokeStream,
			"Converse": res.Converse, "ConverseStream": res.ConverseStream} {
			if !strings.HasPrefix(r.Text, emulator.Opening[:20]) {
				t.Errorf("%s %s: text %q, want the emulator's answer", tg.name, op, r.Text)
			}
			if strings.HasSuffix(op, "Stream") && r.Events < 4 {
				t.Errorf("%s %s: %d events, want the answer in deltas", tg.name, op, r.Events)
			}
		}
		if len(res.Concurrent) != 2 || res.Concurrent[0] < 4 || res.Concurrent[1] < 4 {
			t.Errorf("%s: concurrent streams had %v events", tg.name, res.Concurrent)
		}
	}
	if h1.Load() != 0 || h2.Load() != 2*6 {
		t.Errorf("requests over HTTP/1: %d, over HTTP/2: %d; want 0 and 12 (6 calls against each)", h1.Load(), h2.Load())
	}
	waitFor(t, "the gateway's reservations to settle", func() bool { return h.reserved() == 0 && tpdUsed(h) > 0 })
	waitFor(t, "the emulator to settle", func() bool { return len(h.emuState().Regions[0].InFlight) == 0 })
}
