package gateway

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/bedrock/eventstream"
)

// faultHeader picks the fake upstream's fault per request (the gateway
// forwards X-Headroom-Emulator-* headers).
const faultHeader = "X-Headroom-Emulator-Fault"

// hostileUpstream answers each model call with the fault its request
// names, or with a good answer.
func hostileUpstream(t *testing.T) http.Handler {
	chunk := func(ev string) eventstream.Message { return eventstream.ChunkMessage([]byte(ev)) }
	start := chunk(`{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","content":[],"model":"claude","usage":{"input_tokens":7,"output_tokens":1}}}`)
	delta := chunk(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello "}}`)
	frames := func(ms ...eventstream.Message) []byte {
		var b bytes.Buffer
		enc := eventstream.NewEncoder()
		for _, m := range ms {
			if err := enc.Encode(&b, m); err != nil {
				t.Error(err)
			}
		}
		return b.Bytes()
	}
	good := `{"type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":7,"output_tokens":5}}`
	sse := func(w http.ResponseWriter, events ...string) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for _, ev := range events {
			if _, err := io.WriteString(w, ev); err != nil {
				return
			}
			_ = http.NewResponseController(w).Flush()
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		// The endless answers end after a while all the same, so that a
		// gateway that does not give up on them fails its test instead of
		// blocking the server's Close.
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		stream := func() {
			w.Header().Set("Content-Type", bedrock.ContentTypeEventStream)
			w.WriteHeader(http.StatusOK)
		}
		flush := func() { _ = http.NewResponseController(w).Flush() }
		switch r.Header.Get(faultHeader) {
		case "":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, good)
		case "500":
			w.Header().Set(bedrock.HeaderErrorType, bedrock.InternalServerException)
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"message":"boom"}`)
		case "503-html":
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "<html>bad gateway</html>")
		case "reset":
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
		case "hang":
			<-ctx.Done()
		case "redirect":
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusFound)
		case "huge":
			w.Header().Set("Content-Type", "application/json")
			chunk := bytes.Repeat([]byte("x"), 1<<20)
			fmt.Fprint(w, `{"content":"`)
			for range 40 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			fmt.Fprint(w, `"}`)
		case "absurd-usage":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"type":"message","content":[],"stop_reason":"end_turn","usage":{"input_tokens":999999999999999,"output_tokens":999999999999999}}`)
		case "negative-usage":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set(bedrock.HeaderInputTokens, "-5")
			w.Header().Set(bedrock.HeaderOutputTokens, "-9223372036854775808")
			fmt.Fprint(w, `{"type":"message","content":[],"stop_reason":"end_turn","usage":{"input_tokens":-5,"output_tokens":-7}}`)
		case "truncated-stream":
			stream()
			b := frames(start, delta)
			_, _ = w.Write(b[:len(b)-7])
			flush()
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
		case "corrupt-stream":
			stream()
			b := frames(start, delta, delta)
			b[len(b)-3] ^= 0xff // the last frame's CRC
			_, _ = w.Write(b)
		case "absurd-stream-usage":
			stream()
			_, _ = w.Write(frames(start, delta,
				chunk(`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9000000000000000000}}`),
				chunk(`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":7,"outputTokenCount":9000000000000000000}}`)))
		// Messages API answers (server-sent events), for the Messages
		// front door.
		case "sse-start-9e18":
			sse(w, sseStart("9000000000000000000"), sseText, sseDelta("5"), sseStop)
		case "sse-delta-9e18":
			sse(w, sseStart("7"), sseText, sseDelta("9000000000000000000"), sseStop)
		case "sse-negative":
			sse(w, sseStart("-500"), sseText, sseDelta("-500"), sseStop)
		case "sse-not-numeric":
			sse(w, sseStart(`"seven"`), sseText, sseDelta(`{"n":5}`), sseStop)
		case "sse-overflow":
			sse(w, sseStart("1e400"), sseText, sseDelta("99999999999999999999999999"), sseStop)
		case "sse-cut":
			d := sseDelta("5")
			sse(w, sseStart("7"), sseText, d[:len(d)/2])
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
		case "sse-oversize-event":
			big := fmt.Sprintf("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%q}}\n\n",
				strings.Repeat("x", 2<<20))
			sse(w, sseStart("7"), sseText, big, sseDelta("5"), sseStop)
		case "sse-endless-line":
			sse(w, sseStart("7"), "event: content_block_delta\ndata: ")
			line := bytes.Repeat([]byte("x"), 4<<10)
			for {
				if _, err := w.Write(line); err != nil {
					return
				}
				flush()
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Millisecond):
				}
			}
		case "sse-garbage":
			rnd := rand.New(rand.NewPCG(1, 2))
			b := make([]byte, 64<<10)
			for i := range b {
				b[i] = byte(rnd.Uint32())
			}
			sse(w, string(b))
		case "not-sse":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html><body>a proxy's page</body></html>")
		case "not-a-message":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"hello":["world"],"usage":"none"}`)
		case "not-json":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, "<html>bad gateway</html>")
		case "endless-stream":
			stream()
			_, _ = w.Write(frames(start))
			for {
				if _, err := w.Write(frames(delta)); err != nil {
					return
				}
				flush()
				select {
				case <-ctx.Done():
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
	})
}

// Server-sent events of a Messages API answer; the usage members are
// given as raw JSON, so that they can be anything.
func sseStart(input string) string {
	return "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"usage\":{\"input_tokens\":" + input + ",\"output_tokens\":1}}}\n\n"
}

func sseDelta(output string) string {
	return "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":" + output + "}}\n\n"
}

const (
	sseText = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hello \"}}\n\n"
	sseStop = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
)

// TestHostileUpstream: whatever the upstream answers, the client gets an
// answer it can read (a Bedrock-shaped error, or the stream cut), nothing
// stays reserved, in flight or queued, no charge goes past what the
// request could have used, and the next good request succeeds.
func TestHostileUpstream(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{settleDelay: -1, upstream: hostileUpstream(t)})
	body := fmt.Sprintf(smallMsg, 100)
	good := hostileCall{path: "/model/" + sonnet + "/invoke", body: body}
	for _, tt := range []struct {
		fault, path string
		status      int    // 0: any
		errType     string // the x-amzn-ErrorType wanted, "" for none
		cancelAfter time.Duration
	}{
		{"500", "invoke", 500, bedrock.InternalServerException, 0},
		{"503-html", "invoke", 503, bedrock.ServiceUnavailableException, 0},
		{"reset", "invoke", 503, bedrock.ServiceUnavailableException, 0},
		{"hang", "invoke", 0, "", 500 * time.Millisecond},
		{"redirect", "invoke", 500, bedrock.InternalServerException, 0},
		{"huge", "invoke", 200, "", 0},
		{"absurd-usage", "invoke", 200, "", 0},
		{"negative-usage", "invoke", 200, "", 0},
		{"truncated-stream", "invoke-with-response-stream", 0, "", 0},
		{"corrupt-stream", "invoke-with-response-stream", 0, "", 0},
		{"absurd-stream-usage", "invoke-with-response-stream", 200, "", 0},
		{"endless-stream", "invoke-with-response-stream", 0, "", 500 * time.Millisecond},
	} {
		c := hostileCall{fault: tt.fault, path: "/model/" + sonnet + "/" + tt.path, body: body, status: tt.status, errType: tt.errType, cancelAfter: tt.cancelAfter}
		t.Run(tt.fault, func(t *testing.T) { h.hostile(t, c, good, false) })
	}
}

// TestHostileUpstreamMessages is TestHostileUpstream for the Messages
// front doors (/v1/messages, /anthropic/v1/messages), whose errors must be
// Anthropic-shaped: SSE usage of 9e18, -500, not a number or beyond int64;
// an SSE stream cut mid-event, an event over the meter's limit, an endless
// line; garbage, an HTML page or a Bedrock event stream where SSE was
// asked for; a 200 whose JSON is not a message, or not JSON; and the
// Bedrock table's errors, resets and hangs.
func TestHostileUpstreamMessages(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{settleDelay: -1, upstream: hostileUpstream(t)})
	body := func(stream bool) string {
		return fmt.Sprintf(`{"model":%q,"max_tokens":100,"messages":[{"role":"user","content":"hello there"}],"stream":%v}`, sonnet, stream)
	}
	good := hostileCall{path: "/v1/messages", body: body(false)}
	calls := []struct {
		fault   string
		stream  bool
		status  int
		errType string // the Anthropic error's
		cancel  time.Duration
	}{
		{"500", false, 500, "api_error", 0},
		{"503-html", false, 503, "overloaded_error", 0},
		{"reset", false, 503, "overloaded_error", 0},
		{"reset", true, 503, "overloaded_error", 0},
		{"hang", false, 0, "", 300 * time.Millisecond},
		{"hang", true, 0, "", 300 * time.Millisecond},
		{"redirect", false, 500, "api_error", 0},
		{"huge", false, 200, "", 0},
		{"absurd-usage", false, 200, "", 0},
		{"negative-usage", false, 200, "", 0},
		{"not-a-message", false, 200, "", 0},
		{"not-json", false, 200, "", 0},
		{"sse-start-9e18", true, 200, "", 0},
		{"sse-delta-9e18", true, 200, "", 0},
		{"sse-negative", true, 200, "", 0},
		{"sse-not-numeric", true, 200, "", 0},
		{"sse-overflow", true, 200, "", 0},
		{"sse-cut", true, 0, "", 0},
		{"sse-oversize-event", true, 200, "", 0},
		{"sse-endless-line", true, 0, "", 300 * time.Millisecond},
		{"sse-garbage", true, 200, "", 0},
		{"not-sse", true, 200, "", 0},
		{"truncated-stream", true, 0, "", 0},
		{"corrupt-stream", true, 200, "", 0},
		{"endless-stream", true, 0, "", 300 * time.Millisecond},
	}
	for _, door := range []struct{ name, path string }{{"v1", "/v1/messages?beta=true"}, {"anthropic", "/anthropic/v1/messages"}} {
		for _, c := range calls {
			name := door.name + " " + c.fault
			if c.stream {
				name += " stream"
			}
			tt := hostileCall{fault: c.fault, path: door.path, body: body(c.stream), status: c.status, errType: c.errType, cancelAfter: c.cancel}
			switch c.fault {
			case "sse-start-9e18", "sse-delta-9e18", "sse-negative", "sse-not-numeric", "sse-overflow":
				tt.wantBody = "message_stop" // passed on whole: only the charge is bounded
			case "sse-oversize-event":
				tt.wantBody, tt.minBody = "message_stop", 2<<20 // the metering stops, never the copy
			}
			t.Run(name, func(t *testing.T) { h.hostile(t, tt, good, true) })
		}
	}
}

// hostileCall is one call to the hostile upstream and what its client
// must get.
type hostileCall struct {
	fault, path, body string
	status            int // 0: any
	// errType is the error's type: on a Bedrock path the x-amzn-ErrorType
	// wanted, "" for none; on a Messages path the Anthropic error's type,
	// "" for no error.
	errType string
	// cancelAfter: the client gives up then (the upstream never ends).
	cancelAfter time.Duration
	// wantBody, when set, must be in the answer, of at least minBody bytes.
	wantBody string
	minBody  int
}

// hostile makes call tt with the fault it names and checks what the client
// got, that nothing stays reserved, in flight or queued, that the charge
// is within what the request could have used, and that the good call
// then succeeds. messages: tt is on a Messages path.
func (h *harness) hostile(t *testing.T, tt, good hostileCall, messages bool) {
	n := len(tt.body)
	if messages {
		n += rewriteRoom // the Messages door may add anthropic_version
	}
	bound := newUsageBound(n, 4096)
	most := int64(bound.input) + int64(bound.output)*5 // Sonnet 4's burndown
	before := tpdUsed(h)
	// An answer that does not end within limit holds the connection
	// without bound.
	limit := cmp.Or(tt.cancelAfter, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.gwURL+tt.path, strings.NewReader(tt.body))
	req.Header.Set("Authorization", "Bearer "+h.secret["alice"])
	req.Header.Set(faultHeader, tt.fault)
	req.Header.Set(HeaderMaxWait, "0.2") // the retries of a 5xx give up then
	resp, err := http.DefaultClient.Do(req)
	var b []byte
	if err == nil {
		b, _ = io.ReadAll(resp.Body) // a cut stream's error is the cut
		resp.Body.Close()
	}
	switch {
	case tt.cancelAfter == 0 && ctx.Err() != nil:
		t.Fatalf("the answer did not end within %v", limit)
	case err != nil && tt.cancelAfter == 0 && tt.status != 0:
		t.Fatalf("no answer: %v", err)
	case err != nil:
	case tt.status != 0 && resp.StatusCode != tt.status:
		t.Errorf("status %d, want %d: %.200q", resp.StatusCode, tt.status, b)
	case !messages:
		if got := resp.Header.Get(bedrock.HeaderErrorType); got != tt.errType {
			t.Errorf("x-amzn-ErrorType %q, want %q", got, tt.errType)
		}
	case resp.StatusCode >= 400:
		var e anthropicErr
		if err := json.Unmarshal(b, &e); err != nil || e.Type != "error" || e.Error.Message == "" || e.Error.Type != tt.errType {
			t.Errorf("status %d with %q, want an Anthropic %s error", resp.StatusCode, b, tt.errType)
		}
	case tt.errType != "":
		t.Errorf("status %d, want an Anthropic %s error", resp.StatusCode, tt.errType)
	case tt.wantBody != "" && (!bytes.Contains(b, []byte(tt.wantBody)) || len(b) < tt.minBody):
		t.Errorf("answer of %d bytes, want at least %d ending with %s: the stream was cut", len(b), tt.minBody, tt.wantBody)
	}
	waitFor(t, "the ledger to be back to zero", func() bool {
		st := h.up.Admission.Status(time.Now())
		return h.reserved() == 0 && st.InFlight == 0 && st.Queued == 0
	})
	charged := tpdUsed(h) - before
	if charged < 0 || charged > most {
		t.Errorf("charged %d tokens, want between 0 and %d", charged, most)
	}
	t.Logf("charged %d tokens (at most %d)", charged, most)
	if resp, b := h.post(h.gwURL, h.secret["alice"], good.path, good.body, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("good request after the fault: %d %s", resp.StatusCode, b)
	}
}
