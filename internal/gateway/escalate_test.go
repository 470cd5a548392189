package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock/eventstream"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/upstream"
)

// The learned output policy through the gateway, against an emulator
// scripted with a 6,000-token Write (issue 10 §3). The policy starts from a
// heavy prior of short answers and no room rule, so its cap is the 4,096
// floor (a cut or two do not move its p99): the first call
// is cut mid-JSON, and the retry that answers the cut call (a tool_result
// with its tool_use_id, as Claude Code sends) must get a larger cap and
// come back whole.

const writeTool = `{"name":"Write","description":"Write a file","input_schema":{"type":"object","properties":{"file_path":{"type":"string"},"content":{"type":"string"}}}}`

// writeTurn is the first call: the tool offered, max_tokens 32,000.
func writeTurn() string {
	return `{"anthropic_version":"bedrock-2023-05-31","max_tokens":32000,"tools":[` + writeTool +
		`],"messages":[{"role":"user","content":"Write the notes to notes.txt."}]}`
}

// retryTurn answers the tool call id with an error, as Claude Code does
// for a call cut mid-JSON.
func retryTurn(id string) string {
	return `{"anthropic_version":"bedrock-2023-05-31","max_tokens":32000,"tools":[` + writeTool +
		`],"messages":[{"role":"user","content":"Write the notes to notes.txt."},` +
		`{"role":"assistant","content":[{"type":"tool_use","id":"` + id + `","name":"Write","input":{}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"` + id + `","is_error":true,` +
		`"content":"InputValidationError: Write was called with input that could not be parsed as JSON"}]}]}`
}

func escalationHarness(t *testing.T, settings func(*admission.OutputSettings)) *harness {
	s := admission.DefaultOutputSettings()
	s.Priors, s.PriorWeight, s.RoomFraction = []admission.Prior{{Median: 500, P99: 2000}}, 1000, 0
	if settings != nil {
		settings(&s)
	}
	return newHarness(t, harnessOpts{
		output: &s,
		emu: func(c *config.Emulator) {
			c.Generation.ToolUse = config.ToolUse{Name: "Write", InputTokens: 6000, FilePath: "/tmp/notes.txt"}
		},
	})
}

// answer is what a test reads of an answer: stop reason, output tokens and
// the last tool_use id.
type answer struct {
	stop   string
	output int
	toolID string
}

// call sends body to the gateway by path (invoke or the stream) and reads
// the answer; it returns the x-headroom-max-tokens header too.
func (h *harness) call(t *testing.T, stream bool, body string) (string, answer) {
	t.Helper()
	path := "/model/" + sonnet + "/invoke"
	if stream {
		path += "-with-response-stream"
	}
	resp, raw := h.post(h.gwURL, h.secret["alice"], path, body, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	var a answer
	if !stream {
		var v struct {
			StopReason string `json:"stop_reason"`
			Usage      struct {
				OutputTokens int `json:"output_tokens"`
			} `json:"usage"`
			Content []struct {
				Type, ID string
			} `json:"content"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		a.stop, a.output = v.StopReason, v.Usage.OutputTokens
		for _, c := range v.Content {
			if c.Type == "tool_use" {
				a.toolID = c.ID
			}
		}
		return resp.Header.Get(HeaderMaxTokens), a
	}
	dec := eventstream.NewDecoder(strings.NewReader(string(raw)))
	var mt eventstream.Meter
	for {
		m, err := dec.Next()
		if err != nil {
			break
		}
		if err := mt.ObserveMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	return resp.Header.Get(HeaderMaxTokens), answer{stop: mt.StopReason(), output: mt.Usage().OutputTokens, toolID: mt.LastToolUseID()}
}

func TestCutToolCallRetryGetsLargerCap(t *testing.T) {
	t.Parallel()
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			t.Parallel()
			h := escalationHarness(t, nil)
			hdr, first := h.call(t, stream, writeTurn())
			if hdr != "32000->4096 (floor)" || first.stop != "max_tokens" || first.output != 4096 || first.toolID == "" {
				t.Fatalf("first call: header %q, answer %+v; want cut at the 4,096 floor, with a tool_use id", hdr, first)
			}
			// A tool_result for another call: no escalation, cut again.
			hdr, other := h.call(t, stream, retryTurn("toolu_bdrk_not_cut_by_headroom"))
			if !strings.HasSuffix(hdr, "(floor)") || other.stop != "max_tokens" {
				t.Errorf("unrelated tool_result: header %q, answer %+v; want the floor and a cut", hdr, other)
			}
			// The retry of the cut call: 4 × 4,096, and the call fits.
			hdr, retry := h.call(t, stream, retryTurn(first.toolID))
			if hdr != "32000->16384 (escalated: cut tool call)" || retry.stop != "tool_use" || retry.output < 6000 {
				t.Errorf("retry: header %q, answer %+v; want 16,384 (escalated) and the whole 6,000-token call", hdr, retry)
			}
			m := metricsText(t, h)
			for _, want := range []string{
				`headroom_escalations_total{key="alice",signal="escalated_tool"} 1`,
				`headroom_truncations_total{key="alice"} 2`,
				`headroom_cut_output_tokens_total{key="alice"} 8192`,
				`headroom_max_tokens_decisions_total{key="alice",reason="floor"} 2`,
			} {
				if !strings.Contains(m, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
		})
	}
}

// TestRecoveryTurnGetsLargerCap: a text answer cut by the cap, then Claude
// Code's recovery turn in the same session.
func TestRecoveryTurnGetsLargerCap(t *testing.T) {
	t.Parallel()
	h := escalationHarness(t, nil)
	session := map[string]string{HeaderSession: "5d9c1e2a-0000-4000-8000-000000000001", emulator.HeaderOutputTokens: "6000"}
	resp, raw := h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke", fmt.Sprintf(smallMsg, 32000), session)
	if got := resp.Header.Get(HeaderMaxTokens); got != "32000->4096 (floor)" || !strings.Contains(string(raw), `"stop_reason":"max_tokens"`) {
		t.Fatalf("first call: header %q, %.200s", got, raw)
	}
	recovery := `{"anthropic_version":"bedrock-2023-05-31","max_tokens":32000,"messages":[{"role":"user","content":"hello there"},` +
		`{"role":"assistant","content":[{"type":"text","text":"the first part"}]},` +
		`{"role":"user","content":[{"type":"text","text":"Output token limit hit. Resume directly — no apology, no recap of what you were doing."}]}]}`
	resp, raw = h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke", recovery, session)
	if got := resp.Header.Get(HeaderMaxTokens); got != "32000->16384 (escalated: recovery turn)" || !strings.Contains(string(raw), `"stop_reason":"end_turn"`) {
		t.Errorf("recovery turn: header %q, %.200s", got, raw)
	}
	if m := metricsText(t, h); !strings.Contains(m, `headroom_escalations_total{key="alice",signal="escalated_recovery"} 1`) {
		t.Error("the escalation is not counted")
	}
}

// TestFixedPolicyDoesNotEscalate: the old hard cap, kept as mode fixed,
// cuts the retry again (what the learned policy exists to prevent).
func TestFixedPolicyDoesNotEscalate(t *testing.T) {
	t.Parallel()
	h := escalationHarness(t, func(s *admission.OutputSettings) {
		s.Mode = admission.ModeFixed
		s.Caps = config.DefaultServe().Policy.Caps
	})
	_, first := h.call(t, false, writeTurn())
	hdr, retry := h.call(t, false, retryTurn(first.toolID))
	if hdr != "32000->4096 (fixed)" || retry.stop != "max_tokens" {
		t.Errorf("fixed: header %q, answer %+v; want the 4,096 cap and a cut", hdr, retry)
	}
}

func metricsText(t *testing.T, h *harness) string {
	t.Helper()
	r, err := http.Get(h.gwURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return readAll(r)
}

// writeMessages is a Messages API upstream scripted with a 6,000-token
// Write: every answer is one tool_use block, cut at max_tokens below 6,000
// (JSON or server-sent events, as the request asks).
type writeMessages struct {
	mu sync.Mutex
	n  int
}

func (f *writeMessages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Model     string `json:"model"`
		MaxTokens int    `json:"max_tokens"`
		Stream    bool   `json:"stream"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	f.n++
	id := fmt.Sprintf("toolu_msg_%d", f.n)
	f.mu.Unlock()
	out, stop := 6000, "tool_use"
	if body.MaxTokens < out {
		out, stop = body.MaxTokens, "max_tokens"
	}
	if !body.Stream {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"msg_1","type":"message","role":"assistant","model":%q,"content":[{"type":"tool_use","id":%q,"name":"Write","input":{}}],"stop_reason":%q,"usage":{"input_tokens":100,"output_tokens":%d}}`,
			body.Model, id, stop, out)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for _, ev := range []string{
		fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":%q,"content":[],"usage":{"input_tokens":100,"output_tokens":1}}}`, body.Model),
		fmt.Sprintf(`{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":%q,"name":"Write","input":{}}}`, id),
		`{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"file_path\": \"/tmp/notes.txt\", \"content\": \"the"}}`,
		`{"type":"content_block_stop","index":0}`,
		fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":%q},"usage":{"output_tokens":%d}}`, stop, out),
		`{"type":"message_stop"}`,
	} {
		var typ struct{ Type string }
		_ = json.Unmarshal([]byte(ev), &typ)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ.Type, ev)
	}
}

// TestCutToolCallRetryOnMessages: the same escalation through the
// Messages API front door, to a runtime and to a Mantle upstream, JSON and
// server-sent events.
func TestCutToolCallRetryOnMessages(t *testing.T) {
	t.Parallel()
	for _, svc := range []upstream.Service{upstream.ServiceRuntime, upstream.ServiceMantle} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s stream=%v", svc, stream), func(t *testing.T) {
				t.Parallel()
				s := admission.DefaultOutputSettings()
				s.Priors, s.PriorWeight, s.RoomFraction = []admission.Prior{{Median: 500, P99: 2000}}, 1000, 0
				o := harnessOpts{upstream: &writeMessages{}, service: svc, output: &s}
				if svc == upstream.ServiceMantle {
					o.endpointPath, o.buckets = "/mantle", mantleBuckets()
				}
				h := newHarness(t, o)
				msgs := func(turns string) string {
					return fmt.Sprintf(`{"model":%q,"max_tokens":32000,"stream":%v,"tools":[%s],"messages":[{"role":"user","content":"Write the notes."}%s]}`,
						sonnet, stream, writeTool, turns)
				}
				hdr := map[string]string{"anthropic-version": "2023-06-01"}
				resp, raw := h.post(h.gwURL, h.secret["alice"], "/v1/messages", msgs(""), hdr)
				id := regexp.MustCompile(`toolu_msg_\d+`).FindString(string(raw))
				if got := resp.Header.Get(HeaderMaxTokens); resp.StatusCode != 200 || got != "32000->4096 (floor)" || id == "" {
					t.Fatalf("first call: %d %q %.300s", resp.StatusCode, got, raw)
				}
				retry := `,{"role":"assistant","content":[{"type":"tool_use","id":"` + id + `","name":"Write","input":{}}]},` +
					`{"role":"user","content":[{"type":"tool_result","tool_use_id":"` + id + `","is_error":true,"content":"InputValidationError"}]}`
				resp, raw = h.post(h.gwURL, h.secret["alice"], "/v1/messages", msgs(retry), hdr)
				if got := resp.Header.Get(HeaderMaxTokens); resp.StatusCode != 200 || got != "32000->16384 (escalated: cut tool call)" || !strings.Contains(string(raw), `"stop_reason":"tool_use"`) {
					t.Errorf("retry: %d %q %.300s", resp.StatusCode, got, raw)
				}
			})
		}
	}
}
