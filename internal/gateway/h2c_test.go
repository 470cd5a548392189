package gateway

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock/eventstream"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/httpsrv"
)

// gatedWriter holds every write after the first until open is closed (or
// five seconds pass, which it records): an upstream that cannot produce the
// rest of its stream before the client has seen the beginning.
type gatedWriter struct {
	http.ResponseWriter
	open     <-chan struct{}
	writes   int
	timedOut *atomic.Bool
}

func (g *gatedWriter) Write(b []byte) (int, error) {
	if g.writes++; g.writes > 1 {
		select {
		case <-g.open:
		case <-time.After(5 * time.Second):
			g.timedOut.Store(true)
		}
	}
	return g.ResponseWriter.Write(b)
}

func (g *gatedWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// TestH2CStreamFlushesFrameByFrame: through the gateway served as `serve`
// serves it, a Go client speaking h2c with prior knowledge reads the first
// event of a stream while the upstream cannot produce the second until it
// has: nothing between them holds frames back.
func TestH2CStreamFlushesFrameByFrame(t *testing.T) {
	t.Parallel()
	ec := config.DefaultEmulator()
	ec.Regions = []config.EmulatorRegion{{Name: region, Buckets: testBuckets(1_000_000, 100_000_000)}}
	ec.DefaultRegion = region
	emu, err := emulator.New(ec, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan struct{})
	var timedOut atomic.Bool
	h := newHarness(t, harnessOpts{upstream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		emu.ServeHTTP(&gatedWriter{ResponseWriter: w, open: seen, timedOut: &timedOut}, r)
	})})

	req, _ := http.NewRequest(http.MethodPost, h.gwServe+"/model/"+sonnet+"/invoke-with-response-stream", strings.NewReader(fmt.Sprintf(smallMsg, 100)))
	req.Header.Set("Authorization", "Bearer "+h.secret["alice"])
	req.Header.Set(emulator.HeaderOutputTokens, "30")
	resp, err := (&http.Client{Transport: httpsrv.H2CTransport()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %d, want HTTP/2.0 200", resp.Proto, resp.StatusCode)
	}
	dec := eventstream.NewDecoder(resp.Body)
	if _, err := dec.Next(); err != nil {
		t.Fatal(err)
	}
	if timedOut.Load() {
		t.Fatal("the first event arrived only after the upstream gave up waiting: the stream was buffered")
	}
	close(seen)
	n := 1
	for {
		if _, err := dec.Next(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("after %d events: %v", n, err)
		}
		n++
	}
	if n < 5 {
		t.Errorf("%d events, want the whole answer in deltas", n)
	}
	waitFor(t, "the reservation to settle", func() bool { return h.reserved() == 0 })
}

// h2cOrH1 runs f once per protocol a client may use against `serve`'s
// server: HTTP/1.1 and h2c with prior knowledge.
func h2cOrH1(t *testing.T, f func(t *testing.T, client *http.Client, wantMajor int)) {
	t.Run("HTTP/1.1", func(t *testing.T) { t.Parallel(); f(t, &http.Client{}, 1) })
	t.Run("h2c", func(t *testing.T) { t.Parallel(); f(t, &http.Client{Transport: httpsrv.H2CTransport()}, 2) })
}
