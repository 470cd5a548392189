package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
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

// TestH2CStalledBody: over h2c, a stream whose body stops mid-way gets a
// ValidationException once the body read timeout passes, nothing is
// reserved, and the connection's other streams are served meanwhile and
// after.
func TestH2CStalledBody(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	h := newHarness(t, harnessOpts{bodyRead: timeout})
	client := &http.Client{Transport: httpsrv.H2CTransport()}
	// call makes a small call, on the connection already open when reuse is set.
	call := func(reuse bool) {
		t.Helper()
		var reused bool
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
		r, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.gwServe+"/model/"+sonnet+"/invoke", strings.NewReader(fmt.Sprintf(smallMsg, 100)))
		r.Header.Set("Authorization", "Bearer "+h.secret["alice"])
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 || reused != reuse {
			t.Errorf("a call: %s %d, on a connection used before: %v, want HTTP/2.0 200, %v", resp.Proto, resp.StatusCode, reused, reuse)
		}
	}
	call(false) // opens the connection the stalled stream will share

	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest(http.MethodPost, h.gwServe+"/model/"+sonnet+"/invoke", pr)
	req.ContentLength = 200
	req.Header.Set("Authorization", "Bearer "+h.secret["alice"])
	go func() { _, _ = io.WriteString(pw, `{"anthropic_version"`) }() // 20 of 200 bytes
	start := time.Now()
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()

	call(true) // another stream on that connection is answered while one stalls

	resp := <-done
	if resp == nil {
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	waited := time.Since(start)
	if resp.StatusCode != 400 || resp.Header.Get(bedrock.HeaderErrorType) != bedrock.ValidationException || !strings.Contains(string(body), "did not arrive within") {
		t.Errorf("stalled body: %d %s %s, want 400 ValidationException saying the body did not arrive",
			resp.StatusCode, resp.Header.Get(bedrock.HeaderErrorType), body)
	}
	if waited < timeout || waited > timeout+5*time.Second {
		t.Errorf("answered after %v, want just after the %v timeout", waited, timeout)
	}
	if got := h.reserved(); got != 0 {
		t.Errorf("%d tokens reserved after a refused body, want 0", got)
	}
	call(true) // and the connection still serves after the refusal
}
