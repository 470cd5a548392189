package emulator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
)

// The Anthropic Messages API paths through HTTP: which ledger each path
// draws on, Mantle's ledger semantics, Anthropic-shaped errors, and the
// server-sent events.

// messagesBody is a small Messages body for model; maxTokens < 0 leaves
// max_tokens out; extra members are added as they are ("\"stream\":true").
func messagesBody(model string, maxTokens int, prompt string, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"model":%q,`, model)
	if maxTokens >= 0 {
		fmt.Fprintf(&b, `"max_tokens":%d,`, maxTokens)
	}
	for _, e := range extra {
		b.WriteString(e + ",")
	}
	fmt.Fprintf(&b, `"messages":[{"role":"user","content":%q}]}`, prompt)
	return []byte(b.String())
}

// anthropicError is an error response on a Messages path.
type anthropicError struct {
	Status     int
	Type       string // error.type
	Message    string
	RetryAfter string
}

func readAnthropicError(t *testing.T, resp *http.Response) anthropicError {
	t.Helper()
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var body struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &body); err != nil || body.Type != "error" {
		t.Fatalf("error body %q is not an Anthropic error (%v)", data, err)
	}
	return anthropicError{resp.StatusCode, body.Error.Type, body.Error.Message, resp.Header.Get("Retry-After")}
}

// mantleCfg is one region us-east-1 with a runtime bucket and Mantle
// buckets for Opus 4.7, whose burndown is 5.
func mantleCfg(runtimeTPM, inTPM, outTPM int64) config.Emulator {
	cfg := oneRegion(config.Bucket{Name: "tpm", Kind: config.KindTPM, Limit: runtimeTPM, Scope: bedrock.Scope{Models: []string{"claude-opus-4-7"}}})
	cfg.Regions[0].Mantle = []config.Bucket{inputTPM("in", inTPM), outputTPM("out", outTPM)}
	cfg.Generation.ThinkingShare = 0
	return cfg
}

// ledgers is what one call cost each ledger of us-east-1, read from
// /_emulator/state on the test's fixed clock (nothing refills).
type ledgers struct {
	RuntimeUsed, RuntimeReserved int64
	MantleIn, MantleHeld         int64
	MantleOut                    int64
}

func (ts *testServer) ledgers(t *testing.T, region string) ledgers {
	t.Helper()
	for _, r := range ts.state(t).Regions {
		if r.Name != region {
			continue
		}
		var l ledgers
		for _, b := range r.Buckets {
			l.RuntimeUsed += b.Used
			l.RuntimeReserved += b.Reserved
		}
		for _, b := range r.Mantle {
			switch b.Kind {
			case config.KindInputTPM:
				l.MantleIn += b.Used
				l.MantleHeld += b.Reserved
			case config.KindOutputTPM:
				l.MantleOut += b.Used
			}
		}
		return l
	}
	t.Fatalf("no region %s", region)
	return ledgers{}
}

func (ts *testServer) reset(t *testing.T) {
	t.Helper()
	resp := post(t, ts.url+PathReset, nil)
	resp.Body.Close()
}

// TestMessagesPaths: each path plays its endpoint and draws on its ledger
// only: runtime with burndown (seed profile), Mantle input + output.
func TestMessagesPaths(t *testing.T) {
	cfg := mantleCfg(10_000_000, 10_000_000, 10_000_000)
	cfg.Regions = append(cfg.Regions, config.EmulatorRegion{Name: "eu-west-1", Buckets: cfg.Regions[0].Buckets, Mantle: cfg.Regions[0].Mantle})
	ts := newTestServer(t, cfg)
	body := messagesBody(opus47, 1000, "hello there")
	in := inputTokens(t, body)
	runtime := ledgers{RuntimeUsed: in + 10*5}
	mantle := ledgers{MantleIn: in, MantleOut: 10}
	for _, tt := range []struct {
		path   string
		region string
		want   ledgers
	}{
		{"/anthropic/v1/messages", "us-east-1", runtime},
		{"/anthropic/v1/messages?beta=true", "us-east-1", runtime},
		{"/mantle/anthropic/v1/messages", "us-east-1", mantle},
		{"/mantle/v1/messages?beta=true", "us-east-1", mantle},
		{"/v1/messages", "us-east-1", mantle},
		{"/region/eu-west-1/mantle/v1/messages", "eu-west-1", mantle},
		{"/region/eu-west-1/anthropic/v1/messages", "eu-west-1", runtime},
		{"/region/eu-west-1/v1/messages", "eu-west-1", mantle},
	} {
		ts.reset(t)
		resp := post(t, ts.url+tt.path, body, HeaderOutputTokens, "10", "x-api-key", "k")
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", tt.path, resp.StatusCode, data)
		}
		if d := cmp.Diff(tt.want, ts.ledgers(t, tt.region)); d != "" {
			t.Errorf("%s: ledgers of %s (-want +got):\n%s", tt.path, tt.region, d)
		}
	}
}

// TestMessagesRuntimeSharesInvokeBuckets: the runtime Messages path and
// InvokeModel of the same model draw on the same buckets, with the same
// admission charge, in both directions.
func TestMessagesRuntimeSharesInvokeBuckets(t *testing.T) {
	// Seed profile: input + 4,096 × 5 = about 20,500; two do not fit.
	cfg := mantleCfg(30_000, 10_000_000, 10_000_000)
	h := newHoldingServer(t, cfg)
	invoke := invokeBody(4096, "hi")
	messages := messagesBody(opus47, 4096, "hi", `"stream":true`)
	openAt := func(path string, body []byte) *http.Response {
		req, _ := http.NewRequestWithContext(h.ctx, http.MethodPost, h.hs.URL+path, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	first := openAt("/model/"+opus47+"/invoke-with-response-stream", invoke)
	if first.StatusCode != http.StatusOK {
		t.Fatalf("InvokeModel stream: %d", first.StatusCode)
	}
	got := readAnthropicError(t, openAt("/anthropic/v1/messages", messages))
	want := anthropicError{http.StatusTooManyRequests, "rate_limit_error", bedrock.MsgTooManyTokens, ""}
	if got != want {
		t.Errorf("Messages while InvokeModel holds the bucket: got %+v, want %+v", got, want)
	}
	st := h.s.Account().State(t0).Regions[0]
	if got, want := st.Buckets[0].Reserved, inputTokens(t, invoke)+4096*5; got != want {
		t.Errorf("InvokeModel reserved %d, want %d", got, want)
	}
	h.stop()

	h = newHoldingServer(t, cfg)
	if resp := openAt("/anthropic/v1/messages", messages); resp.StatusCode != http.StatusOK {
		t.Fatalf("Messages stream: %d", resp.StatusCode)
	}
	if got := readError(t, openAt("/model/"+opus47+"/invoke-with-response-stream", invoke)); got != throttled(bedrock.MsgTooManyTokens) {
		t.Errorf("InvokeModel while Messages holds the bucket: got %+v", got)
	}
	// The Messages body has a model member more: one token more.
	st = h.s.Account().State(t0).Regions[0]
	if got, want := st.Buckets[0].Reserved, inputTokens(t, messages)+4096*5; got != want {
		t.Errorf("Messages reserved %d, want %d", got, want)
	}
	if m := st.Mantle; m[0].Used+m[0].Reserved+m[1].Used != 0 {
		t.Errorf("the runtime path touched Mantle's ledger: %+v", m)
	}
}

// TestMantleLedgerHTTP: Mantle's semantics through HTTP.
func TestMantleLedgerHTTP(t *testing.T) {
	mantleThrottle := func(kind string) anthropicError {
		return anthropicError{http.StatusTooManyRequests, "rate_limit_error", mantleMessage(kind), ""}
	}
	t.Run("input refusal", func(t *testing.T) {
		ts := newTestServer(t, mantleCfg(1, 1000, 1_000_000))
		in := inputTokens(t, messagesBody(opus47, 900, "hi"))
		body := messagesBody(opus47, int(1000-in), "hi") // fits exactly, once
		resp := post(t, ts.url+"/mantle/v1/messages", body, HeaderOutputTokens, "5")
		resp.Body.Close()
		// input stays used; max_tokens was given back; 5 output tokens.
		if d := cmp.Diff(ledgers{MantleIn: in, MantleOut: 5}, ts.ledgers(t, "us-east-1")); d != "" {
			t.Errorf("after one call (-want +got):\n%s", d)
		}
		if got := readAnthropicError(t, post(t, ts.url+"/mantle/v1/messages", body)); got != mantleThrottle(config.KindInputTPM) {
			t.Errorf("second call: got %+v", got)
		}
		if d := cmp.Diff(ledgers{MantleIn: in, MantleOut: 5}, ts.ledgers(t, "us-east-1")); d != "" {
			t.Errorf("a refused call changed the ledger (-want +got):\n%s", d)
		}
		// Without max_tokens Mantle charges the model's maximum (128,000).
		if got := readAnthropicError(t, post(t, ts.url+"/mantle/v1/messages", messagesBody(opus47, -1, "hi"))); got != mantleThrottle(config.KindInputTPM) {
			t.Errorf("no max_tokens: got %+v", got)
		}
	})
	t.Run("output debt", func(t *testing.T) {
		ts := newTestServer(t, mantleCfg(1, 1_000_000, 100))
		body := messagesBody(opus47, 1000, "hi")
		for i, n := range []string{"100", "1"} { // 100 is not debt; 101 is
			resp := post(t, ts.url+"/v1/messages", body, HeaderOutputTokens, n)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("call %d: %d", i, resp.StatusCode)
			}
			resp.Body.Close()
		}
		if got := readAnthropicError(t, post(t, ts.url+"/v1/messages", body)); got != mantleThrottle(config.KindOutputTPM) {
			t.Errorf("in debt: got %+v", got)
		}
		if got := ts.ledgers(t, "us-east-1").MantleOut; got != 101 {
			t.Errorf("output used %d, want 101", got)
		}
	})
	t.Run("cache reads are free", func(t *testing.T) {
		ts := newTestServer(t, mantleCfg(1, 1000, 1_000_000))
		prompt := strings.Repeat("lorem ipsum ", 1000) // some 3,000 input tokens
		body := messagesBody(opus47, 100, prompt)
		in := inputTokens(t, body)
		if got := readAnthropicError(t, post(t, ts.url+"/v1/messages", body)); got.Status != http.StatusTooManyRequests {
			t.Fatalf("%d input tokens + 100 in 1,000: got %+v", in, got)
		}
		// All but 50 read from the cache: 50 + 100 fits.
		resp := post(t, ts.url+"/v1/messages", body, HeaderCacheReadTokens, fmt.Sprint(in-50), HeaderOutputTokens, "3")
		var msg struct {
			Usage bedrock.Usage `json:"usage"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&msg); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%d: %v", resp.StatusCode, err)
		}
		resp.Body.Close()
		if want := (bedrock.Usage{InputTokens: 50, CacheReadInputTokens: int(in - 50), OutputTokens: 3}); msg.Usage != want {
			t.Errorf("usage %+v, want %+v", msg.Usage, want)
		}
		if d := cmp.Diff(ledgers{MantleIn: 50, MantleOut: 3}, ts.ledgers(t, "us-east-1")); d != "" {
			t.Errorf("ledger (-want +got):\n%s", d)
		}
		// Cache writes count like input.
		resp = post(t, ts.url+"/v1/messages", body, HeaderCacheReadTokens, fmt.Sprint(in-100), HeaderCacheWriteTokens, "100", HeaderOutputTokens, "3")
		resp.Body.Close()
		if d := cmp.Diff(ledgers{MantleIn: 50 + 100, MantleOut: 6}, ts.ledgers(t, "us-east-1")); d != "" {
			t.Errorf("after a cache write (-want +got):\n%s", d)
		}
	})
	t.Run("queue", func(t *testing.T) {
		cfg := mantleCfg(1, 1000, 1_000_000)
		cfg.Mantle.Queue.MaxWait = config.Duration{Duration: time.Minute}
		h := newHoldingServer(t, cfg) // streams hold until their client leaves
		body := messagesBody(opus47, 900, "hi", `"stream":true`)
		ctx, cancel := context.WithCancel(h.ctx)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.hs.URL+"/v1/messages", bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("first: %v %v", resp, err)
		}
		second := make(chan int, 1)
		go func() {
			req, _ := http.NewRequestWithContext(h.ctx, http.MethodPost, h.hs.URL+"/v1/messages", bytes.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				second <- 0
				return
			}
			second <- resp.StatusCode
		}()
		// The second waits in the queue (its client sees nothing) until the
		// first leaves, then is admitted.
		waitFor(t, func() bool { return h.s.Account().State(t0).Regions[0].MantleQueued == 1 })
		select {
		case code := <-second:
			t.Fatalf("second answered %d while the first held the bucket", code)
		default:
		}
		cancel()
		if code := <-second; code != http.StatusOK {
			t.Errorf("second: %d, want 200 once the first ended", code)
		}
	})
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("condition not reached in 5 s")
		}
	}
}

// TestMessagesErrors: bad input on the Messages paths gets an Anthropic
// error with the right status, and leaves both ledgers as they were.
func TestMessagesErrors(t *testing.T) {
	cfg := mantleCfg(1_000_000, 1_000_000, 1_000_000)
	cfg.RequireAuth = true
	ts := newTestServer(t, cfg)
	good := messagesBody(opus47, 100, "hi")
	tests := []struct {
		name, method, path string
		body               []byte
		headers            []string
		status             int
		typ                string
	}{
		{"not JSON", "POST", "/v1/messages", []byte(`{"model":`), nil, 400, "invalid_request_error"},
		{"not an object", "POST", "/v1/messages", []byte(`[1]`), nil, 400, "invalid_request_error"},
		{"no model", "POST", "/mantle/v1/messages", messagesBody("", 100, "hi")[len(`{"model":"",`)-1:], nil, 400, "invalid_request_error"},
		{"model a number", "POST", "/v1/messages", []byte(`{"model":7,"max_tokens":1,"messages":[]}`), nil, 400, "invalid_request_error"},
		{"bad model", "POST", "/v1/messages", messagesBody("a b", 100, "hi"), nil, 400, "invalid_request_error"},
		{"stream a string", "POST", "/v1/messages", messagesBody(opus47, 100, "hi", `"stream":"yes"`), nil, 400, "invalid_request_error"},
		{"no messages", "POST", "/v1/messages", []byte(`{"model":"x","max_tokens":1}`), nil, 400, "invalid_request_error"},
		{"max_tokens above the model's", "POST", "/v1/messages", messagesBody(opus47, 128_001, "hi"), nil, 400, "invalid_request_error"},
		{"runtime needs max_tokens", "POST", "/anthropic/v1/messages", messagesBody(opus47, -1, "hi"), nil, 400, "invalid_request_error"},
		{"structured outputs on Mantle", "POST", "/mantle/anthropic/v1/messages", messagesBody(opus47, 100, "hi", `"output_config":{"format":{"type":"json_schema","schema":{}}}`), nil, 400, "invalid_request_error"},
		{"bad cache header", "POST", "/v1/messages", good, []string{HeaderCacheReadTokens, "-1"}, 400, "invalid_request_error"},
		{"no credentials", "POST", "/v1/messages", good, []string{"Authorization", ""}, 403, "permission_error"},
		{"unknown region", "POST", "/region/mars-east-1/v1/messages", good, nil, 400, "invalid_request_error"},
		{"GET", "GET", "/v1/messages", nil, nil, 404, "not_found_error"},
		{"unknown path", "POST", "/mantle/v1/complete", good, nil, 404, "not_found_error"},
		{"unavailable", "POST", "/v1/messages", good, []string{HeaderFault, FaultUnavailable}, 503, "overloaded_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, ts.url+tt.path, bytes.NewReader(tt.body))
			req.Header.Set("x-api-key", "k")
			for i := 0; i+1 < len(tt.headers); i += 2 {
				req.Header.Set(tt.headers[i], tt.headers[i+1])
			}
			if tt.name == "no credentials" {
				req.Header.Del("x-api-key")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got := readAnthropicError(t, resp)
			if got.Status != tt.status || got.Type != tt.typ || got.Message == "" || got.RetryAfter != "" {
				t.Errorf("got %+v, want %d %s with a message and no Retry-After", got, tt.status, tt.typ)
			}
			if d := cmp.Diff(ledgers{}, ts.ledgers(t, "us-east-1")); d != "" {
				t.Errorf("ledgers changed (-want +got):\n%s", d)
			}
		})
	}
	// The runtime path takes structured outputs; Mantle alone refuses them.
	resp := post(t, ts.url+"/anthropic/v1/messages", messagesBody(opus47, 100, "hi", `"output_config":{"format":{"type":"json_schema","schema":{}}}`), "x-api-key", "k")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("structured outputs on runtime: %d", resp.StatusCode)
	}
	// count_tokens answers the estimate and charges nothing.
	ts.reset(t)
	resp = post(t, ts.url+"/mantle/v1/messages/count_tokens", messagesBody(opus47, -1, "hello there"), "x-api-key", "k")
	var ct map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&ct); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := map[string]int64{"input_tokens": inputTokens(t, messagesBody(opus47, -1, "hello there"))}; !cmp.Equal(ct, want) {
		t.Errorf("count_tokens: got %v, want %v", ct, want)
	}
	if d := cmp.Diff(ledgers{}, ts.ledgers(t, "us-east-1")); d != "" {
		t.Errorf("count_tokens charged (-want +got):\n%s", d)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct {
	Name string
	Data map[string]any
}

// readSSE parses a whole stream strictly: every event is "event: NAME",
// "data: JSON" and a blank line, and the data's type is the event's name.
func readSSE(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	var evs []sseEvent
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, ok := strings.CutPrefix(sc.Text(), "event: ")
		if !ok {
			t.Fatalf("after %d events: %q is not an event line", len(evs), sc.Text())
		}
		if !sc.Scan() {
			t.Fatalf("event %s has no data", name)
		}
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			t.Fatalf("event %s: %q is not a data line", name, sc.Text())
		}
		ev := sseEvent{Name: name}
		if err := json.Unmarshal([]byte(data), &ev.Data); err != nil {
			t.Fatalf("event %s: %v", name, err)
		}
		if ev.Data["type"] != name {
			t.Errorf("event %s carries type %v", name, ev.Data["type"])
		}
		if !sc.Scan() || sc.Text() != "" {
			t.Fatalf("event %s is not followed by a blank line", name)
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestMessagesSSE: the event sequence, with thinking, text and a scripted
// tool_use streamed as input_json_delta, and a throttle mid-stream.
func TestMessagesSSE(t *testing.T) {
	names := func(evs []sseEvent) []string {
		var ns []string
		for _, e := range evs {
			n := e.Name
			if d, ok := e.Data["delta"].(map[string]any); ok && n == "content_block_delta" {
				n += ":" + d["type"].(string)
			}
			if cb, ok := e.Data["content_block"].(map[string]any); ok {
				n += ":" + cb["type"].(string)
			}
			if len(ns) > 0 && ns[len(ns)-1] == n {
				continue // one entry for a run of deltas
			}
			ns = append(ns, n)
		}
		return ns
	}
	t.Run("thinking and text", func(t *testing.T) {
		cfg := mantleCfg(10_000_000, 10_000_000, 10_000_000)
		cfg.Generation.ThinkingShare = 0.5
		ts := newTestServer(t, cfg)
		resp := post(t, ts.url+"/mantle/v1/messages?beta=true", messagesBody(opus47, 1000, "hi", `"stream":true`, `"thinking":{"type":"adaptive"}`), HeaderOutputTokens, "20")
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Errorf("Content-Type %q", ct)
		}
		evs := readSSE(t, resp.Body)
		want := []string{"message_start", "ping", "content_block_start:thinking", "content_block_delta:thinking_delta", "content_block_delta:signature_delta",
			"content_block_stop", "content_block_start:text", "content_block_delta:text_delta", "content_block_stop", "message_delta", "message_stop"}
		if d := cmp.Diff(want, names(evs)); d != "" {
			t.Fatalf("events (-want +got):\n%s", d)
		}
		md := evs[len(evs)-2].Data
		if got := md["usage"].(map[string]any)["output_tokens"]; got != float64(20) {
			t.Errorf("message_delta output_tokens %v, want 20", got)
		}
		if got := md["delta"].(map[string]any)["stop_reason"]; got != "end_turn" {
			t.Errorf("stop_reason %v", got)
		}
	})
	t.Run("tool_use", func(t *testing.T) {
		cfg := mantleCfg(10_000_000, 10_000_000, 10_000_000)
		cfg.Generation.ToolUse = config.ToolUse{Name: "Write", InputTokens: 30, FilePath: "/tmp/x.txt"}
		ts := newTestServer(t, cfg)
		body := `{"model":"` + opus47 + `","max_tokens":1000,"stream":true,"tools":[{"name":"Write","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"write"}]}`
		resp := post(t, ts.url+"/v1/messages", []byte(body))
		defer resp.Body.Close()
		evs := readSSE(t, resp.Body)
		if d := cmp.Diff([]string{"message_start", "ping", "content_block_start:tool_use", "content_block_delta:input_json_delta", "content_block_stop", "message_delta", "message_stop"}, names(evs)); d != "" {
			t.Fatalf("events (-want +got):\n%s", d)
		}
		var input strings.Builder
		for _, e := range evs {
			if d, ok := e.Data["delta"].(map[string]any); ok && d["type"] == "input_json_delta" {
				input.WriteString(d["partial_json"].(string))
			}
		}
		var call struct {
			FilePath string `json:"file_path"`
			Content  string `json:"content"`
		}
		if err := json.Unmarshal([]byte(input.String()), &call); err != nil || call.FilePath != "/tmp/x.txt" || len(strings.Fields(call.Content)) != 30 {
			t.Errorf("tool input %q: %v", input.String(), err)
		}
		if got := evs[len(evs)-2].Data["delta"].(map[string]any)["stop_reason"]; got != "tool_use" {
			t.Errorf("stop_reason %v", got)
		}
	})
	t.Run("throttled mid-stream", func(t *testing.T) {
		cfg := mantleCfg(10_000_000, 10_000_000, 10_000_000)
		cfg.Faults.MidStreamThrottleAfter = 8
		ts := newTestServer(t, cfg)
		resp := post(t, ts.url+"/v1/messages", messagesBody(opus47, 1000, "hi", `"stream":true`), HeaderOutputTokens, "40", HeaderFault, FaultThrottleMidStream)
		defer resp.Body.Close()
		evs := readSSE(t, resp.Body)
		last := evs[len(evs)-1]
		if last.Name != "error" || last.Data["error"].(map[string]any)["type"] != "rate_limit_error" {
			t.Errorf("last event %+v, want a rate_limit_error", last)
		}
		if got := ts.ledgers(t, "us-east-1"); got.MantleOut != 8 || got.MantleHeld != 0 {
			t.Errorf("ledger after the throttle: %+v, want 8 output and nothing held", got)
		}
	})
}

// TestMantleClientLeaves: a client that leaves mid-stream is charged the
// output generated until then, and its max_tokens hold is given back.
func TestMantleClientLeaves(t *testing.T) {
	cfg := mantleCfg(1, 1_000_000, 1_000_000)
	cfg.Generation.TokensPerSecond, cfg.Generation.ChunkTokens = 200, 1 // 5 ms a token
	ts := newTestServer(t, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+"/v1/messages", bytes.NewReader(messagesBody(opus47, 5000, "hi", `"stream":true`)))
	req.Header.Set(HeaderOutputTokens, "4000") // 20 s if read to the end
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	for deltas := 0; deltas < 10 && sc.Scan(); {
		if strings.HasPrefix(sc.Text(), "event: content_block_delta") {
			deltas++
		}
	}
	cancel()
	resp.Body.Close()
	waitFor(t, func() bool { return len(ts.state(t).Regions[0].MantleInFlight) == 0 })
	l := ts.ledgers(t, "us-east-1")
	if l.MantleHeld != 0 || l.MantleOut < 10 || l.MantleOut >= 4000 {
		t.Errorf("after the client left: %+v, want nothing held and the output generated (10 or more, under 4,000) counted", l)
	}
}
