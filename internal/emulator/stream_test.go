package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/bedrock/eventstream"
	"github.com/headroomhq/headroom/internal/config"
)

// TestInvokeStream: the Anthropic events of a streamed answer, their text
// (the same as the non-streamed answer's), and usage that equals the charge.
func TestInvokeStream(t *testing.T) {
	cfg := oneRegion(tpm(1_000_000))
	ts := newTestServer(t, cfg)
	body := []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"stream"}]}`)
	in := inputTokens(t, body)
	resp := post(t, ts.url+"/model/"+sonnet4+"/invoke-with-response-stream", body, HeaderOutputTokens, "22")
	defer resp.Body.Close()
	if got := resp.Header.Get("Content-Type"); got != bedrock.ContentTypeEventStream {
		t.Fatalf("content type %q", got)
	}
	frames := decodeStream(t, resp.Body)
	events := anthropicEvents(t, frames)

	var types []string
	var thinking, text strings.Builder
	for _, e := range events {
		typ := e["type"].(string)
		if d, ok := e["delta"].(map[string]any); ok && typ == "content_block_delta" {
			typ += "/" + d["type"].(string)
			if s, ok := d["thinking"].(string); ok {
				thinking.WriteString(s)
			}
			if s, ok := d["text"].(string); ok {
				text.WriteString(s)
			}
		}
		types = append(types, typ)
	}
	// 22 tokens with thinking_share 0.25: 5 thinking, 17 text, in deltas of 4.
	want := []string{
		"message_start",
		"content_block_start", "content_block_delta/thinking_delta", "content_block_delta/thinking_delta",
		"content_block_delta/signature_delta", "content_block_stop",
		"content_block_start", "content_block_delta/text_delta", "content_block_delta/text_delta",
		"content_block_delta/text_delta", "content_block_delta/text_delta", "content_block_delta/text_delta",
		"content_block_stop",
		"message_delta", "message_stop",
	}
	if d := cmp.Diff(want, types); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if got := []int{len(strings.Fields(thinking.String())), len(strings.Fields(text.String()))}; !cmp.Equal(got, []int{5, 17}) {
		t.Errorf("thinking and text tokens %v, want [5 17]", got)
	}
	m, _ := invoke(t, ts.url+"/model/"+sonnet4+"/invoke", body, HeaderOutputTokens, "22")
	if got, want := text.String(), m.Content[1].Text; got != want {
		t.Errorf("streamed text %q, non-streamed %q", got, want)
	}

	start := events[0]["message"].(map[string]any)["usage"].(map[string]any)
	last := events[len(events)-1]["amazon-bedrock-invocationMetrics"].(map[string]any)
	delta := events[len(events)-2]
	got := []any{start["input_tokens"], delta["usage"].(map[string]any)["output_tokens"], delta["delta"].(map[string]any)["stop_reason"],
		last["inputTokenCount"], last["outputTokenCount"]}
	if d := cmp.Diff([]any{float64(in), 22.0, "end_turn", float64(in), 22.0}, got); d != "" {
		t.Errorf("usage in message_start, message_delta, metrics (-want +got):\n%s", d)
	}

	// The gateway's meter reads the same usage from the frames.
	var meter eventstream.Meter
	for _, f := range frames {
		if err := meter.Observe(f); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := meter.Usage(), (bedrock.Usage{InputTokens: int(in), OutputTokens: 22}); got != want {
		t.Errorf("meter %+v, want %+v", got, want)
	}
	// Two calls, each charged input + 22 × 5.
	if got, want := ts.state(t).bucket(t, "us-east-1", "tpm").Used, 2*(in+110); got != want {
		t.Errorf("used %d, want %d", got, want)
	}
}

func TestConverseStream(t *testing.T) {
	ts := newTestServer(t, oneRegion())
	body := []byte(`{"inferenceConfig":{"maxTokens":6},"messages":[{"role":"user","content":[{"text":"hi"}]}]}`)
	resp := post(t, ts.url+"/model/"+sonnet4+"/converse-stream", body, HeaderOutputTokens, "50")
	defer resp.Body.Close()
	var types []string
	var text strings.Builder
	var md eventstream.ConverseMetadata
	for _, f := range decodeStream(t, resp.Body) {
		types = append(types, f.EventType)
		switch f.EventType {
		case eventstream.EventContentBlockDelta:
			var d struct{ Delta struct{ Text string } }
			json.Unmarshal(f.Payload, &d)
			text.WriteString(d.Delta.Text)
		case eventstream.EventMessageStop:
			var s struct{ StopReason string }
			json.Unmarshal(f.Payload, &s)
			if s.StopReason != "max_tokens" {
				t.Errorf("stop reason %q", s.StopReason)
			}
		case eventstream.EventMetadata:
			var err error
			if md, err = eventstream.ParseConverseMetadata(f.Payload); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := []string{"messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"}
	if d := cmp.Diff(want, types); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if got, want := text.String(), "Hello from headroom emulate, an offline"; got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	r, _ := bedrock.ReadConverse(body)
	if got, want := md.Usage, (bedrock.Usage{InputTokens: r.InputTokens, OutputTokens: 6}); got != want || !md.HasUsage {
		t.Errorf("metadata usage %+v, want %+v", got, want)
	}
}

// TestMidStreamThrottle: a throttlingException after the configured output,
// and a charge for what was generated.
func TestMidStreamThrottle(t *testing.T) {
	for _, op := range []string{"invoke-with-response-stream", "converse-stream"} {
		t.Run(op, func(t *testing.T) {
			ts := newTestServer(t, oneRegion(tpm(1_000_000)))
			body := invokeBody(1000, "long answer")
			if op == "converse-stream" {
				body = []byte(`{"inferenceConfig":{"maxTokens":1000},"messages":[{"role":"user","content":[{"text":"long answer"}]}]}`)
			}
			r, _ := bedrock.ReadConverse(body)
			if op != "converse-stream" {
				r, _ = bedrock.ReadInvoke(body)
			}
			resp := post(t, ts.url+"/model/"+sonnet4+"/"+op, body, HeaderOutputTokens, "100", HeaderFault, FaultThrottleMidStream)
			defer resp.Body.Close()
			frames := decodeStream(t, resp.Body)
			last := frames[len(frames)-1]
			if got, want := []string{last.ExceptionName, last.Message}, []string{bedrock.ThrottlingException, bedrock.MsgTooManyTokens}; !cmp.Equal(got, want) {
				t.Errorf("last frame %v, want %v", got, want)
			}
			b := ts.state(t).bucket(t, "us-east-1", "tpm")
			after := int64(ts.applied.Faults.MidStreamThrottleAfter)
			if got, want := (usedReserved{b.Used, b.Reserved}), (usedReserved{int64(r.InputTokens) + after*5, 0}); got != want {
				t.Errorf("bucket %+v, want %+v (charged for %d generated tokens)", got, want, after)
			}
		})
	}
}

// TestPace: time to first token, then tokens per second, on a fake clock.
func TestPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := oneRegion()
		cfg.Generation.TimeToFirstToken = config.Duration{Duration: time.Second}
		cfg.Generation.TokensPerSecond = 10
		s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range []string{"invoke", "invoke-with-response-stream", "converse", "converse-stream"} {
			body := invokeBody(100, "pace")
			if strings.HasPrefix(op, "converse") {
				body = []byte(`{"inferenceConfig":{"maxTokens":100},"messages":[]}`)
			}
			req := httptest.NewRequest(http.MethodPost, "/model/"+sonnet4+"/"+op, bytes.NewReader(body))
			req.Header.Set(HeaderOutputTokens, "20")
			start := time.Now()
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if got, want := time.Since(start), 3*time.Second; got != want || rec.Code != http.StatusOK {
				t.Errorf("%s: %d after %v, want 200 after %v", op, rec.Code, got, want)
			}
		}
	})
}

// TestSlowFault: the slow fault delays the first byte by slow_latency.
func TestSlowFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New(oneRegion(), slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/model/"+sonnet4+"/invoke", bytes.NewReader(invokeBody(10, "slow")))
		req.Header.Set(HeaderFault, FaultSlow)
		start := time.Now()
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if got, want := time.Since(start), s.applied.Faults.SlowLatency.Duration; got != want || rec.Code != http.StatusOK {
			t.Errorf("%d after %v, want 200 after %v", rec.Code, got, want)
		}
	})
}

// TestClientLeavesMidStream: a client that leaves is charged for the output
// generated until then, and the reservation ends.
func TestClientLeavesMidStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := oneRegion(tpm(1_000_000))
		cfg.Generation.TokensPerSecond = 10 // a 4-token delta every 0.4 s
		// The accounting's clock stands still, so that nothing refills.
		s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return t0 })
		if err != nil {
			t.Fatal(err)
		}
		body := invokeBody(1000, "leave")
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/model/"+sonnet4+"/invoke-with-response-stream", bytes.NewReader(body))
		req.Header.Set(HeaderOutputTokens, "100")
		s.ServeHTTP(httptest.NewRecorder(), req)
		st := s.Account().State(t0)
		b := st.bucket(t, "us-east-1", "tpm")
		if got, want := (usedReserved{b.Used, b.Reserved}), (usedReserved{inputTokens(t, body) + 8*5, 0}); got != want {
			t.Errorf("bucket %+v, want %+v: two deltas of 4 tokens were generated", got, want)
		}
		if n := st.inFlight("us-east-1"); n != 0 {
			t.Errorf("%d still in flight", n)
		}
	})
}

// TestFaultsRepeatable: fault draws depend only on the seed and the order
// of arrival; a reset starts the sequence again.
func TestFaultsRepeatable(t *testing.T) {
	cfg := oneRegion()
	cfg.Faults.UnavailableRate = 0.5
	statuses := func(ts *testServer) []int {
		var out []int
		for range 20 {
			resp := post(t, ts.url+"/model/"+sonnet4+"/invoke", invokeBody(10, "x"))
			resp.Body.Close()
			out = append(out, resp.StatusCode)
		}
		return out
	}
	a, b := newTestServer(t, cfg), newTestServer(t, cfg)
	first := statuses(a)
	if d := cmp.Diff(first, statuses(b)); d != "" {
		t.Errorf("two servers with one seed differ:\n%s", d)
	}
	a.Reset()
	if d := cmp.Diff(first, statuses(a)); d != "" {
		t.Errorf("after a reset the sequence differs:\n%s", d)
	}
	var got503 int
	for _, s := range first {
		if s == http.StatusServiceUnavailable {
			got503++
		}
	}
	if got503 < 4 || got503 > 16 {
		t.Errorf("%d of 20 unavailable at rate 0.5", got503)
	}
	cfg.Faults.Seed = 2
	if cmp.Equal(first, statuses(newTestServer(t, cfg))) {
		t.Error("another seed gives the same sequence")
	}
	resp := post(t, a.url+"/model/"+sonnet4+"/invoke", invokeBody(10, "x"), HeaderFault, FaultUnavailable)
	if got, want := readError(t, resp), (bedrockError{503, bedrock.ServiceUnavailableException, bedrock.MsgServiceUnavailable}); got != want {
		t.Errorf("forced: got %+v, want %+v", got, want)
	}
}
