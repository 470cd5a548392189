package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
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
			<-r.Context().Done()
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
		case "endless-stream":
			stream()
			_, _ = w.Write(frames(start))
			for {
				if _, err := w.Write(frames(delta)); err != nil {
					return
				}
				flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
	})
}

// TestHostileUpstream: whatever the upstream answers, the client gets an
// answer it can read (a Bedrock-shaped error, or the stream cut), nothing
// stays reserved, in flight or queued, no charge goes past what the
// request could have used, and the next good request succeeds.
func TestHostileUpstream(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{settleDelay: -1, upstream: hostileUpstream(t)})
	body := fmt.Sprintf(smallMsg, 100)
	bound := newUsageBound(len(body), 4096)
	most := int64(bound.input) + int64(bound.output)*5 // Sonnet 4's burndown
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
		t.Run(tt.fault, func(t *testing.T) {
			before := tpdUsed(h)
			ctx := context.Background()
			if tt.cancelAfter > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.cancelAfter)
				defer cancel()
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.gwURL+"/model/"+sonnet+"/"+tt.path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+h.secret["alice"])
			req.Header.Set(faultHeader, tt.fault)
			req.Header.Set(HeaderMaxWait, "2")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if tt.status != 0 && resp.StatusCode != tt.status {
					t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
				}
				if got := resp.Header.Get(bedrock.HeaderErrorType); got != tt.errType {
					t.Errorf("x-amzn-ErrorType %q, want %q", got, tt.errType)
				}
			} else if tt.cancelAfter == 0 && tt.status != 0 {
				t.Fatalf("no answer: %v", err)
			}
			waitFor(t, "the ledger to be back to zero", func() bool {
				st := h.up.Admission.Status(time.Now())
				return h.reserved() == 0 && st.InFlight == 0 && st.Queued == 0
			})
			if charged := tpdUsed(h) - before; charged < 0 || charged > most {
				t.Errorf("charged %d tokens, want between 0 and %d", charged, most)
			}
			if resp, b := h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke", body, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("good request after the fault: %d %s", resp.StatusCode, b)
			}
		})
	}
}
