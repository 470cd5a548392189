package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/bedrock/eventstream"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
)

func tpdUsed(h *harness) int64 {
	for _, b := range h.ledger() {
		if b.KindName == "tpd" {
			return b.Used
		}
	}
	return -1
}

// TestClientGoneMidStream: a client that disconnects mid-stream (HTTP/1.1:
// closes its connection; h2c: resets its stream with RST_STREAM) is charged
// for what was generated until then, never refunded wholesale and never
// charged the whole reservation, and no reservation leaks.
func TestClientGoneMidStream(t *testing.T) {
	t.Parallel()
	h2cOrH1(t, func(t *testing.T, client *http.Client, wantMajor int) {
		h := newHarness(t, harnessOpts{emu: func(c *config.Emulator) {
			c.Generation.TokensPerSecond = 400 // 1,000 tokens take 2.5 s
			c.Generation.ChunkTokens = 2
		}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.gwServe+"/model/"+sonnet+"/invoke-with-response-stream",
			strings.NewReader(fmt.Sprintf(smallMsg, 4000)))
		req.Header.Set("Authorization", "Bearer "+h.secret["alice"])
		req.Header.Set(emulator.HeaderOutputTokens, "1000")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != wantMajor {
			t.Fatalf("served as %s", resp.Proto)
		}
		dec := eventstream.NewDecoder(resp.Body)
		for range 20 { // message_start, content_block_start, and some deltas
			if _, err := dec.Next(); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		resp.Body.Close()

		waitFor(t, "the reservation to end", func() bool { return h.reserved() == 0 && tpdUsed(h) > 0 })
		used := tpdUsed(h)
		input := int64(7)       // the estimate of smallMsg's body
		full := input + 4096*5  // what was reserved
		whole := input + 1000*5 // the whole answer
		if used <= input+5*10 || used >= whole || used >= full {
			t.Errorf("charged %d: want more than the input and ~18 deltas (%d), less than the whole answer (%d)", used, input+5*10, whole)
		}
		// The emulator stopped generating too: nothing is left reserved there.
		waitFor(t, "the emulator to settle", func() bool {
			st := h.emuState()
			return len(st.Regions[0].InFlight) == 0
		})
	})
}

// TestMidStreamExceptionPassesThrough: an exception Bedrock sends after the
// 200 reaches the client unchanged, and the ledger settles what was
// generated.
func TestMidStreamExceptionPassesThrough(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	resp, body := h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke-with-response-stream", fmt.Sprintf(smallMsg, 500),
		map[string]string{emulator.HeaderFault: emulator.FaultThrottleMidStream, emulator.HeaderOutputTokens: "100"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	dec := eventstream.NewDecoder(strings.NewReader(string(body)))
	var last eventstream.Event
	for {
		m, err := dec.Next()
		if err != nil {
			break
		}
		if last, err = eventstream.Parse(m); err != nil {
			t.Fatal(err)
		}
	}
	if last.Kind != eventstream.KindException || last.ExceptionName != bedrock.ThrottlingException {
		t.Errorf("last frame = %+v, want a throttlingException", last)
	}
	waitFor(t, "the refund", func() bool { return h.reserved() == 0 })
	if used := tpdUsed(h); used <= 7 || used >= 7+100*5 {
		t.Errorf("charged %d, want the input plus the few tokens generated", used)
	}
}

// cutUpstream sends the first half of a recorded stream, then drops the
// connection, as a failing upstream would.
type cutUpstream struct{ rec []byte }

func (u cutUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", bedrock.ContentTypeEventStream)
	_, _ = w.Write(u.rec[:len(u.rec)/2])
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

// TestUpstreamCutMidStream: when the upstream drops a stream, the client's
// connection is dropped too (the stream must not look complete), and the
// ledger settles what was generated.
func TestUpstreamCutMidStream(t *testing.T) {
	t.Parallel()
	emu, err := emulator.New(config.DefaultEmulator(), nopLogger(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/model/"+sonnet+"/invoke-with-response-stream", strings.NewReader(fmt.Sprintf(smallMsg, 4096)))
	req.Header.Set(emulator.HeaderOutputTokens, "400")
	emu.ServeHTTP(rec, req)

	h := newHarness(t, harnessOpts{upstream: cutUpstream{rec.Body.Bytes()}, settleDelay: -1})
	hreq, _ := http.NewRequest(http.MethodPost, h.gwURL+"/model/"+sonnet+"/invoke-with-response-stream", strings.NewReader(fmt.Sprintf(smallMsg, 4096)))
	hreq.Header.Set("Authorization", "Bearer "+h.secret["alice"])
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Error("the client read a complete-looking answer from a stream the upstream cut")
	}
	waitFor(t, "the settlement", func() bool { return h.reserved() == 0 })
	if used := tpdUsed(h); used <= 7+5*50 || used >= 7+400*5 {
		t.Errorf("charged %d: want the input and about half of 400 tokens × 5", used)
	}
}

func nopLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestStreamHeadAndPieces: a stream's head reaches the client at once
// when the upstream pauses before its first event (the gateway sends the
// head alone rather than wait for bytes to send it with), and an answer the
// upstream sends in one piece (which the gateway sends on in one write,
// its end included) arrives whole and settles at its usage; over HTTP/1.1
// and h2c.
func TestStreamHeadAndPieces(t *testing.T) {
	h2cOrH1(t, func(t *testing.T, client *http.Client, wantMajor int) {
		release := make(chan struct{})
		var heldTooLong atomic.Bool
		h := newHarness(t, harnessOpts{upstream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "text/event-stream")
			events := strings.Join(fakeEvents(sonnet, false), "")
			if !strings.Contains(string(b), "pause") {
				_, _ = io.WriteString(w, events) // one piece: head, events and end together
				return
			}
			w.WriteHeader(http.StatusOK)
			_ = http.NewResponseController(w).Flush()
			select {
			case <-release:
			case <-time.After(5 * time.Second):
				heldTooLong.Store(true)
			}
			_, _ = io.WriteString(w, events)
		})})
		call := func(pause bool) string {
			t.Helper()
			text := "hi" // the upstream pauses after the head when asked to
			if pause {
				text = "pause"
			}
			body := fmt.Sprintf(`{"model":%q,"max_tokens":100,"stream":true,"messages":[{"role":"user","content":%q}]}`, sonnet, text)
			req, _ := http.NewRequest(http.MethodPost, h.gwServe+"/anthropic/v1/messages", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+h.secret["alice"])
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if pause {
				if heldTooLong.Load() {
					t.Fatal("the head reached the client only with the first event: it waited for the upstream")
				}
				close(release)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK || resp.ProtoMajor != wantMajor {
				t.Fatalf("%s %d, %v, want HTTP/%d 200", resp.Proto, resp.StatusCode, err, wantMajor)
			}
			return string(b)
		}
		for _, pause := range []bool{false, true} {
			before := tpdUsed(h)
			if got := call(pause); got != strings.Join(fakeEvents(sonnet, false), "") {
				t.Fatalf("pause %v: the client got %q, want the upstream's events byte for byte", pause, got)
			}
			waitFor(t, "the reservation to settle", func() bool { return h.reserved() == 0 })
			// Sonnet 4's output burns down 5 times in the daily bucket.
			if used, want := tpdUsed(h)-before, int64(fakeInput+5*fakeOutput); used != want {
				t.Errorf("pause %v: settled %d tokens, want the answer's usage %d", pause, used, want)
			}
		}
	})
}
