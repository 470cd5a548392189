package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/claudecodetest"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/upstream"
)

// fakeMessages is a Messages API upstream for unit tests: it answers
// /anthropic/v1/messages (under any prefix) with a fixed usage, as JSON or
// server-sent events, and remembers what it was sent. The header
// X-Headroom-Emulator-Fake chooses an error answer instead.
type fakeMessages struct {
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	path, query string
	header      http.Header
	body        map[string]any
}

// Usage every fake answer reports.
const fakeInput, fakeOutput = 100, 20

func (f *fakeMessages) last() seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[len(f.seen)-1]
}

func (f *fakeMessages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	f.mu.Lock()
	f.seen = append(f.seen, seenRequest{path: r.URL.Path, query: r.URL.RawQuery, header: r.Header.Clone(), body: body})
	f.mu.Unlock()
	switch r.Header.Get("X-Headroom-Emulator-Fake") {
	case "bedrock-429":
		w.Header().Set(bedrock.HeaderErrorType, bedrock.ThrottlingException)
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"message":"Too many tokens, please wait before trying again."}`)
		return
	case "anthropic-400":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":"output_config.format is not supported"}}`)
		return
	case "html-502":
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, `<html>bad gateway</html>`)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/count_tokens") {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"input_tokens":42}`)
		return
	}
	if stream, _ := body["stream"].(bool); !stream {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"msg_1","type":"message","role":"assistant","model":%q,"content":[{"type":"text","text":"hello"}],"stop_reason":"end_turn","usage":{"input_tokens":%d,"output_tokens":%d}}`,
			body["model"], fakeInput, fakeOutput)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	events := fakeEvents(fmt.Sprint(body["model"]), r.Header.Get("X-Headroom-Emulator-Fake") == "cut")
	if r.Header.Get("X-Headroom-Emulator-Fake") == "hang" {
		// The start and 400 bytes of text, then nothing until the
		// gateway gives up on the call.
		events = append(events[:1], fmt.Sprintf("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%q}}\n\n", strings.Repeat("word ", 80)))
	}
	for _, ev := range events {
		_, _ = io.WriteString(w, ev)
		_ = rc.Flush()
	}
	if r.Header.Get("X-Headroom-Emulator-Fake") == "hang" {
		<-r.Context().Done()
	}
}

// fakeEvents is a streamed answer: text, then, when cut, a tool call cut
// by max_tokens.
func fakeEvents(model string, cut bool) []string {
	if !cut {
		return []string{
			fmt.Sprintf("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":%q,\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":%d,\"output_tokens\":1}}}\n\n", model, fakeInput),
			"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
			"event: ping\ndata: {\"type\": \"ping\"}\n\n",
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hello\"}}\n\n",
			"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
			fmt.Sprintf("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":%d}}\n\n", fakeOutput),
			"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
		}
	}
	return []string{
		fmt.Sprintf("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":%q,\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":%d,\"output_tokens\":1}}}\n\n", model, fakeInput),
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hello\"}}\n\n",
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_fake1\",\"name\":\"Write\",\"input\":{}}}\n\n",
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"file_path\\\"\"}}\n\n",
		fmt.Sprintf("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":%d}}\n\n", fakeOutput),
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
	}
}

// mantleBuckets are a Mantle upstream's quotas for Sonnet 4: input and
// output tokens per minute.
func mantleBuckets() []config.Bucket {
	scope := bedrock.Scope{Models: []string{"claude-sonnet-4"}}
	return []config.Bucket{
		{Name: "sonnet-input-tpm", Kind: config.KindInputTPM, Limit: 10_000_000, Scope: scope},
		{Name: "sonnet-output-tpm", Kind: config.KindOutputTPM, Limit: 2_000_000, Scope: scope},
	}
}

// serviceHarness is a harness in front of the fake Messages upstream as a
// runtime or a Mantle upstream (under /mantle, with Mantle's buckets).
func serviceHarness(t *testing.T, svc upstream.Service, o harnessOpts) (*harness, *fakeMessages) {
	fake := &fakeMessages{}
	o.upstream, o.service = fake, svc
	if svc == upstream.ServiceMantle {
		o.endpointPath = "/mantle"
		if o.buckets == nil {
			o.buckets = mantleBuckets()
		}
	}
	return newHarness(t, o), fake
}

// settledMeter returns a func that reports what was settled since it was
// made, in every bucket a fake answer is charged to: input + output × 5 in
// a runtime TPD bucket; on Mantle, input and output apart.
func settledMeter(h *harness, svc upstream.Service) func() string {
	names := []string{"sonnet-tpd"}
	if svc == upstream.ServiceMantle {
		names = []string{"sonnet-input-tpm", "sonnet-output-tpm"}
	}
	read := func() []float64 {
		var v []float64
		for _, n := range names {
			v = append(v, testutil.ToFloat64(h.gw.m.SettledTokens.WithLabelValues("alice", n)))
		}
		return v
	}
	before := read()
	return func() string {
		after := read()
		var parts []string
		for i := range names {
			parts = append(parts, fmt.Sprintf("%s=%v", names[i], after[i]-before[i]))
		}
		return strings.Join(parts, " ")
	}
}

// wantSettled is settledMeter's report for one fake answer.
func wantSettled(svc upstream.Service) string {
	if svc == upstream.ServiceMantle {
		return fmt.Sprintf("sonnet-input-tpm=%d sonnet-output-tpm=%d", fakeInput, fakeOutput)
	}
	return fmt.Sprintf("sonnet-tpd=%d", fakeInput+5*fakeOutput)
}

// mantleBody is what Claude Code 2.1.332 sends in Mantle mode, cut down.
const mantleBody = `{"model":%q,"messages":[{"role":"user","content":"say hi"}],"system":[{"type":"text","text":"You are Claude Code."}],"metadata":{"user_id":"{\"session_id\":\"s\"}"},"max_tokens":128000,"thinking":{"type":"adaptive","display":"omitted"},"output_config":{"effort":"medium"},"stream":%v}`

// TestMessagesFrontDoors: the Messages API paths, with either key header,
// streaming or not, reach a runtime or a Mantle upstream at the path,
// headers and body each wants, clamped, without the client's credentials,
// and settle the ledger from the answer's usage.
func TestMessagesFrontDoors(t *testing.T) {
	t.Parallel()
	for _, svc := range []upstream.Service{upstream.ServiceRuntime, upstream.ServiceMantle} {
		t.Run(string(svc), func(t *testing.T) {
			t.Parallel()
			h, fake := serviceHarness(t, svc, harnessOpts{})
			prefix := ""
			if svc == upstream.ServiceMantle {
				prefix = "/mantle"
			}
			key := h.secret["alice"]
			for _, path := range []string{"/v1/messages", "/v1/messages?beta=true", "/anthropic/v1/messages"} {
				for _, stream := range []bool{false, true} {
					for _, auth := range []string{"bearer", "x-api-key"} {
						name := fmt.Sprintf("%s stream=%v %s", path, stream, auth)
						hdr := map[string]string{"anthropic-version": "2023-06-01", "anthropic-beta": "interleaved-thinking-2025-05-14"}
						k := key
						if auth == "x-api-key" {
							hdr["x-api-key"], k = key, ""
						}
						settled := settledMeter(h, svc)
						resp, body := h.post(h.gwURL, k, path, fmt.Sprintf(mantleBody, sonnet, stream), hdr)
						if resp.StatusCode != 200 {
							t.Fatalf("%s: %d %s", name, resp.StatusCode, body)
						}
						if stream {
							if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" || !strings.Contains(string(body), "event: message_stop") {
								t.Errorf("%s: %s %q", name, ct, body)
							}
						} else if !strings.Contains(string(body), `"type":"message"`) {
							t.Errorf("%s: %s", name, body)
						}
						if got := resp.Header.Get(HeaderMaxTokens); got != "128000->4096 (fixed)" {
							t.Errorf("%s: %s = %q", name, HeaderMaxTokens, got)
						}
						got := fake.last()
						if want := prefix + "/anthropic/v1/messages"; got.path != want {
							t.Errorf("%s: upstream path %q, want %q", name, got.path, want)
						}
						if wantBeta := strings.Contains(path, "beta=true"); (got.query == "beta=true") != wantBeta {
							t.Errorf("%s: upstream query %q", name, got.query)
						}
						if got.header.Get("Authorization") != "" || got.header.Get("X-Api-Key") != "" {
							t.Errorf("%s: client credentials forwarded: %v", name, got.header)
						}
						if got.header.Get("Anthropic-Beta") != "interleaved-thinking-2025-05-14" {
							t.Errorf("%s: anthropic-beta not forwarded", name)
						}
						version, _ := got.body["anthropic_version"].(string)
						switch svc {
						case upstream.ServiceRuntime:
							if version != "bedrock-2023-05-31" || got.header.Get("Anthropic-Version") != "" {
								t.Errorf("%s: runtime got body version %q, header %q", name, version, got.header.Get("Anthropic-Version"))
							}
						case upstream.ServiceMantle:
							if version != "" || got.header.Get("Anthropic-Version") != "2023-06-01" {
								t.Errorf("%s: mantle got body version %q, header %q", name, version, got.header.Get("Anthropic-Version"))
							}
						}
						if got.body["max_tokens"] != 4096.0 || got.body["model"] != sonnet || got.body["stream"] != stream {
							t.Errorf("%s: upstream body %v", name, got.body)
						}
						// Settled from the answer's usage, nothing left reserved.
						waitFor(t, "settlement", func() bool { return h.reserved() == 0 })
						if got, want := settled(), wantSettled(svc); got != want {
							t.Errorf("%s: settled %s, want %s", name, got, want)
						}
					}
				}
			}
		})
	}
}

// anthropicErr is an Anthropic API error body.
type anthropicErr struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// TestMessagesBadInput: bad input on the Messages paths gets the Anthropic
// error its clients parse, with the right status and type, and leaves
// nothing reserved and nothing charged.
func TestMessagesBadInput(t *testing.T) {
	t.Parallel()
	fake := &fakeMessages{}
	h := newHarness(t, harnessOpts{upstream: fake, maxBody: 64 << 10, maxWait: 300 * time.Millisecond,
		keys: []keys.Key{{Name: "alice", Weight: 1}, {Name: "gone", Weight: 1}}})
	if err := h.store.Revoke(t.Context(), "gone", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := h.registry.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	alice := h.secret["alice"]
	good := fmt.Sprintf(mantleBody, sonnet, false)
	tests := []struct {
		name, key, method, path, body string
		hdr                           map[string]string
		wantStatus                    int
		wantType                      string
	}{
		{"malformed JSON", alice, "POST", "/v1/messages", `{"model":"x","messages":[`, nil, 400, "invalid_request_error"},
		{"not an object", alice, "POST", "/v1/messages", `[1]`, nil, 400, "invalid_request_error"},
		{"missing model", alice, "POST", "/v1/messages", `{"messages":[],"max_tokens":10}`, nil, 400, "invalid_request_error"},
		{"model not a string", alice, "POST", "/v1/messages", `{"model":["a"],"messages":[],"max_tokens":10}`, nil, 400, "invalid_request_error"},
		{"huge max_tokens", alice, "POST", "/v1/messages", strings.Replace(good, "128000", "99999999999999999999999999", 1), nil, 400, "invalid_request_error"},
		{"string max_tokens", alice, "POST", "/v1/messages", strings.Replace(good, "128000", `"128000"`, 1), nil, 400, "invalid_request_error"},
		{"stream not a boolean", alice, "POST", "/v1/messages", strings.Replace(good, `"stream":false`, `"stream":"yes"`, 1), nil, 400, "invalid_request_error"},
		{"duplicate model", alice, "POST", "/v1/messages", strings.Replace(good, `{"model"`, `{"model":"x","model"`, 1), nil, 400, "invalid_request_error"},
		{"oversize body", alice, "POST", "/v1/messages", strings.Replace(good, "say hi", strings.Repeat("x", 70<<10), 1), nil, 413, "request_too_large"},
		{"model no route serves", alice, "POST", "/v1/messages", fmt.Sprintf(mantleBody, "amazon.titan-text-express-v1", false), nil, 400, "invalid_request_error"},
		{"no key", "", "POST", "/v1/messages", good, nil, 401, "authentication_error"},
		{"unknown key", "hr_" + strings.Repeat("A", 40), "POST", "/v1/messages", good, nil, 401, "authentication_error"},
		{"revoked key", h.secret["gone"], "POST", "/anthropic/v1/messages", good, nil, 401, "authentication_error"},
		{"unknown path under /v1", alice, "POST", "/v1/complete", good, nil, 404, "not_found_error"},
		{"unknown path under /anthropic", alice, "POST", "/anthropic/v1/models", good, nil, 404, "not_found_error"},
		{"GET on messages", alice, "GET", "/v1/messages", "", nil, 405, "invalid_request_error"},
		{"bad count_tokens body", alice, "POST", "/v1/messages/count_tokens", `{"messages":[]}`, nil, 400, "invalid_request_error"},
		// Upstream errors: a Bedrock throttle converted, Mantle's own error
		// passed on, a proxy's page replaced.
		{"upstream bedrock 429", alice, "POST", "/v1/messages", good, map[string]string{"X-Headroom-Emulator-Fake": "bedrock-429", HeaderMaxWait: "0"}, 429, "rate_limit_error"},
		{"upstream anthropic 400", alice, "POST", "/v1/messages", good, map[string]string{"X-Headroom-Emulator-Fake": "anthropic-400"}, 400, "invalid_request_error"},
		{"upstream html 502", alice, "POST", "/v1/messages", good, map[string]string{"X-Headroom-Emulator-Fake": "html-502", HeaderMaxWait: "0.2"}, 503, "overloaded_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp *http.Response
			var body []byte
			if tt.method == "POST" {
				hdr := map[string]string{}
				for k, v := range tt.hdr {
					hdr[k] = v
				}
				resp, body = h.post(h.gwURL, tt.key, tt.path, tt.body, hdr)
			} else {
				req, _ := http.NewRequest(tt.method, h.gwURL+tt.path, nil)
				req.Header.Set("x-api-key", tt.key)
				var err error
				if resp, err = http.DefaultClient.Do(req); err != nil {
					t.Fatal(err)
				}
				body = []byte(readAll(resp))
			}
			var e anthropicErr
			if err := json.Unmarshal(body, &e); err != nil || e.Type != "error" || e.Error.Message == "" {
				t.Fatalf("body %q is not an Anthropic error (%v)", body, err)
			}
			if resp.StatusCode != tt.wantStatus || e.Error.Type != tt.wantType {
				t.Errorf("got %d %s, want %d %s: %s", resp.StatusCode, e.Error.Type, tt.wantStatus, tt.wantType, e.Error.Message)
			}
			if resp.Header.Get(bedrock.HeaderErrorType) != "" && !strings.HasPrefix(tt.name, "upstream") {
				t.Errorf("x-amzn-ErrorType %q on a Messages path", resp.Header.Get(bedrock.HeaderErrorType))
			}
			if n := h.reserved(); n != 0 {
				t.Errorf("%d tokens left reserved", n)
			}
			for _, b := range h.ledger() {
				if b.Used != 0 {
					t.Errorf("bucket %s used %d", b.Name, b.Used)
				}
			}
		})
	}
}

// TestMessagesThrottleHeaders: the gateway's own 429 on a Messages path is
// a rate_limit_error with retry-after, and a spent daily budget adds
// x-should-retry: false, as on the Bedrock paths.
func TestMessagesThrottleHeaders(t *testing.T) {
	t.Parallel()
	// The seed profile reserves 14 + 4,096 × 5 = 20,494; the first call
	// settles at 200 and leaves too little for a second.
	h := newHarness(t, harnessOpts{upstream: &fakeMessages{}, keys: []keys.Key{{Name: "daily", Weight: 1, DailyTokens: 20_600}}})
	var e anthropicErr
	body := fmt.Sprintf(mantleBody, sonnet, false)
	if resp, b := h.post(h.gwURL, h.secret["daily"], "/v1/messages", body, nil); resp.StatusCode != 200 {
		t.Fatalf("first call: %d %s", resp.StatusCode, b)
	}
	resp, b := h.post(h.gwURL, h.secret["daily"], "/v1/messages", body, map[string]string{HeaderMaxWait: "0"})
	_ = json.Unmarshal(b, &e)
	if resp.StatusCode != 429 || e.Error.Type != "rate_limit_error" || resp.Header.Get("Retry-After") == "" ||
		resp.Header.Get(HeaderShouldRetry) != "false" || resp.Header.Get(HeaderThrottle) != "gateway" {
		t.Errorf("daily budget spent: %d %v %s", resp.StatusCode, resp.Header, b)
	}
}

// TestBedrockOpsRefusedOnMantle: InvokeModel routed to a Mantle upstream
// only is refused with a clear message, not sent.
func TestBedrockOpsRefusedOnMantle(t *testing.T) {
	t.Parallel()
	fake := &fakeMessages{}
	h := newHarness(t, harnessOpts{upstream: fake, service: upstream.ServiceMantle})
	resp, b := h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke", fmt.Sprintf(smallMsg, 10), nil)
	if resp.StatusCode != 400 || resp.Header.Get(bedrock.HeaderErrorType) != bedrock.ValidationException ||
		!strings.Contains(string(b), "bedrock-runtime") {
		t.Errorf("%d %s", resp.StatusCode, b)
	}
	if len(fake.seen) != 0 {
		t.Errorf("the upstream got %d requests", len(fake.seen))
	}
}

// TestMessagesCountTokens: count_tokens is forwarded, costs nothing.
func TestMessagesCountTokens(t *testing.T) {
	t.Parallel()
	h, fake := serviceHarness(t, upstream.ServiceMantle, harnessOpts{})
	for _, path := range []string{"/v1/messages/count_tokens", "/anthropic/v1/messages/count_tokens?beta=true"} {
		resp, b := h.post(h.gwURL, h.secret["alice"], path, `{"model":"anthropic.claude-opus-4-7","messages":[{"role":"user","content":"hi"}]}`, nil)
		if resp.StatusCode != 200 || string(b) != `{"input_tokens":42}` {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
		if got := fake.last().path; got != "/mantle/anthropic/v1/messages/count_tokens" {
			t.Errorf("upstream path %q", got)
		}
	}
	for _, b := range h.ledger() {
		if b.Used != 0 || b.Reserved != 0 {
			t.Errorf("bucket %s: used %d reserved %d", b.Name, b.Used, b.Reserved)
		}
	}
}

// TestMessagesStreamLastToolUse: the stream meter reads the id of the
// tool_use block a cut answer ended in, and the request log says it.
func TestMessagesStreamLastToolUse(t *testing.T) {
	t.Parallel()
	fake := &fakeMessages{}
	h := newHarness(t, harnessOpts{upstream: fake})
	var mu sync.Mutex
	var seen []string
	h.gw.log = newCaptureLogger(func(attrs map[string]string) {
		mu.Lock()
		seen = append(seen, attrs["op"]+" "+attrs["last_tool_use_id"])
		mu.Unlock()
	})
	resp, b := h.post(h.gwURL, h.secret["alice"], "/v1/messages?beta=true", fmt.Sprintf(mantleBody, sonnet, true), map[string]string{"X-Headroom-Emulator-Fake": "cut"})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	waitFor(t, "the log line", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 1 })
	if seen[0] != "Messages toolu_fake1" {
		t.Errorf("log: %q", seen[0])
	}
}

// captureHandler hands each record's attributes, as strings, to a func.
type captureHandler struct{ f func(map[string]string) }

func newCaptureLogger(f func(map[string]string)) *slog.Logger { return slog.New(captureHandler{f}) }

func (captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h captureHandler) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	h.f(m)
	return nil
}
func (h captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h captureHandler) WithGroup(string) slog.Handler      { return h }

// TestClaudeCodeMantleMode: the real Claude Code 2.1.332 in Mantle mode,
// pointed at the gateway with a Headroom key, completes `claude -p`
// through a bedrock-runtime and a bedrock-mantle upstream (the fake
// Messages upstream; the end-to-end tests against `headroom emulate` are
// in internal/cli). Its probe and its stream both went upstream, and both
// settled.
func TestClaudeCodeMantleMode(t *testing.T) {
	t.Parallel()
	claude := claudecodetest.Binary(t)
	for _, svc := range []upstream.Service{upstream.ServiceRuntime, upstream.ServiceMantle} {
		t.Run(string(svc), func(t *testing.T) {
			t.Parallel()
			// Buckets for every Claude: Claude Code calls its default
			// model, whatever it is this release.
			scope := bedrock.Scope{Models: []string{"claude"}}
			buckets := []config.Bucket{{Name: "claude-tpd", Kind: config.KindTPD, Limit: 100_000_000, Scope: scope}}
			if svc == upstream.ServiceMantle {
				buckets = []config.Bucket{
					{Name: "claude-input-tpm", Kind: config.KindInputTPM, Limit: 10_000_000, Scope: scope},
					{Name: "claude-output-tpm", Kind: config.KindOutputTPM, Limit: 2_000_000, Scope: scope},
				}
			}
			h, fake := serviceHarness(t, svc, harnessOpts{buckets: buckets})
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			res, ok := claudecodetest.RunMantle(ctx, t, claude, h.gwURL, h.secret["alice"], "Say hello.", "CLAUDE_CODE_MAX_RETRIES=0")
			if !ok || res.Err != nil || res.IsError || !strings.Contains(res.Result, "hello") {
				t.Fatalf("claude -p in Mantle mode failed: %v\n%s\n%s", res.Err, res.Stdout, res.Stderr)
			}
			fake.mu.Lock()
			var streams, probes int
			for _, s := range fake.seen {
				if s.body["stream"] == true && s.query == "beta=true" {
					streams++
				} else {
					probes++
				}
				if s.header.Get("Authorization") != "" {
					t.Errorf("the client's key reached the upstream")
				}
			}
			fake.mu.Unlock()
			if streams == 0 || probes == 0 {
				t.Errorf("the upstream saw %d streams and %d probes", streams, probes)
			}
			waitFor(t, "settlement", func() bool { return h.reserved() == 0 })
			for _, b := range h.ledger() {
				if got := testutil.ToFloat64(h.gw.m.SettledTokens.WithLabelValues("alice", b.Name)); got <= 0 {
					t.Errorf("bucket %s: settled %v", b.Name, got)
				}
			}
		})
	}
}

// TestRuntimeMessagesSameBuckets: through the gateway to the emulator, the
// runtime Messages path (/anthropic/v1/messages) draws on the same buckets
// as InvokeModel for the same model, in the gateway's mirror and at the
// emulator, and the two charge the same for the same answer size.
func TestRuntimeMessagesSameBuckets(t *testing.T) {
	t.Parallel()
	// A day's bucket of 1M refills 12 tokens a second: a call's charge
	// shows in the emulator's Used, where a minute's has refilled already.
	h := newHarness(t, harnessOpts{buckets: testBuckets(1_000_000, 1_000_000)})
	emuUsed := func() map[string]int64 {
		m := map[string]int64{}
		for _, b := range h.emuState().Regions[0].Buckets {
			m[b.Name] = b.Used
		}
		return m
	}
	settled := func() map[string]float64 {
		m := map[string]float64{}
		for _, b := range h.ledger() {
			m[b.Name] = testutil.ToFloat64(h.gw.m.SettledTokens.WithLabelValues("alice", b.Name))
		}
		return m
	}
	calls := []struct{ name, path, body string }{
		{"InvokeModel", "/model/" + sonnet + "/invoke", fmt.Sprintf(smallMsg, 100)},
		{"Messages", "/anthropic/v1/messages", `{"model":"` + sonnet + `","max_tokens":100,"messages":[{"role":"user","content":"hello there"}]}`},
	}
	var charged []map[string]float64
	for _, c := range calls {
		gwBefore, emuBefore := settled(), emuUsed()
		resp, b := h.post(h.gwURL, h.secret["alice"], c.path, c.body, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", c.name, resp.StatusCode, b)
		}
		waitFor(t, "settlement", func() bool { return h.reserved() == 0 })
		gwAfter, emuAfter := settled(), emuUsed()
		d := map[string]float64{}
		for name := range gwAfter {
			d[name] = gwAfter[name] - gwBefore[name]
			if d[name] <= 0 {
				t.Errorf("%s: the gateway charged nothing to %s", c.name, name)
			}
			if name == "sonnet-tpd" && emuAfter[name] <= emuBefore[name] {
				t.Errorf("%s: the emulator charged nothing to %s (%d -> %d)", c.name, name, emuBefore[name], emuAfter[name])
			}
		}
		charged = append(charged, d)
	}
	if diff := cmp.Diff(charged[0], charged[1]); diff != "" {
		t.Errorf("InvokeModel and Messages charged differently (-invoke +messages):\n%s", diff)
	}
}

// TestMessagesClientLeavesMidStream: a Messages client that leaves in the
// middle of a stream is charged for what was generated (the input the
// stream reported and the output estimated from the text that went by),
// not refunded, and nothing stays reserved.
func TestMessagesClientLeavesMidStream(t *testing.T) {
	t.Parallel()
	for _, svc := range []upstream.Service{upstream.ServiceRuntime, upstream.ServiceMantle} {
		t.Run(string(svc), func(t *testing.T) {
			t.Parallel()
			h, _ := serviceHarness(t, svc, harnessOpts{})
			settled := settledMeter(h, svc)
			nothing := settled()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, h.gwURL+"/v1/messages?beta=true",
				strings.NewReader(fmt.Sprintf(mantleBody, sonnet, true)))
			req.Header.Set("x-api-key", h.secret["alice"])
			req.Header.Set("X-Headroom-Emulator-Fake", "hang")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 0, 4096)
			for !strings.Contains(string(buf), "word word") {
				n, err := resp.Body.Read(buf[len(buf):cap(buf)])
				buf = buf[:len(buf)+n]
				if err != nil {
					t.Fatalf("%v after %q", err, buf)
				}
			}
			resp.Body.Close() // the client leaves
			waitFor(t, "settlement", func() bool { return h.reserved() == 0 && settled() != nothing })
			// 400 bytes of text are about 100 tokens at 4 bytes a token.
			want := fmt.Sprintf("sonnet-tpd=%d", fakeInput+5*100)
			if svc == upstream.ServiceMantle {
				want = fmt.Sprintf("sonnet-input-tpm=%d sonnet-output-tpm=%d", fakeInput, 100)
			}
			if got := settled(); got != want {
				t.Errorf("settled %s, want %s", got, want)
			}
		})
	}
}
