package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock/eventstream"
	"github.com/headroomhq/headroom/internal/config"
)

// toolPath needs JSON escaping, so that the tests see it escaped once in an
// input and twice in a partial_json string.
const toolPath = `/tmp/a "quoted" dir/out.txt`

// toolConversation builds an Anthropic body offering tools whose messages
// are a user prompt and then, for each result, the assistant's call (with
// id "call-N", name calls[N]) and the user's tool_result for it.
func toolConversation(maxTokens int, tools []string, calls []string, isError []bool) []byte {
	msgs := []any{map[string]any{"role": "user", "content": "write the file"}}
	for i, name := range calls {
		id := fmt.Sprintf("call-%d", i)
		msgs = append(msgs,
			map[string]any{"role": "assistant", "content": []any{
				map[string]any{"type": "text", "text": "Writing."},
				map[string]any{"type": "tool_use", "id": id, "name": name, "input": map[string]any{}}}},
			map[string]any{"role": "user", "content": []any{
				map[string]any{"type": "tool_result", "tool_use_id": id, "is_error": isError[i], "content": "result"}}})
	}
	var ts []any
	for _, n := range tools {
		ts = append(ts, map[string]any{"name": n, "input_schema": map[string]any{"type": "object"}})
	}
	b, _ := json.Marshal(map[string]any{"anthropic_version": "bedrock-2023-05-31", "max_tokens": maxTokens, "tools": ts, "messages": msgs})
	return b
}

func TestScriptTurn(t *testing.T) {
	write := []string{"Read", "Write"}
	errs := func(n int, last bool) []bool {
		e := make([]bool, n)
		for i := range e {
			e[i] = true
		}
		e[n-1] = last
		return e
	}
	rep := func(n int) []string { return strings.Split(strings.Repeat("Write,", n)[:6*n-1], ",") }
	tests := []struct {
		name string
		body []byte
		want turn
	}{
		{"not offered", toolConversation(10, []string{"Read"}, nil, nil), turnFree},
		{"no tools", invokeBody(10, "hi"), turnFree},
		{"offered", toolConversation(10, write, nil, nil), turnCall},
		{"success", toolConversation(10, write, rep(1), []bool{false}), turnDone},
		{"success after two errors", toolConversation(10, write, rep(3), errs(3, false)), turnDone},
		{"1st error: retry", toolConversation(10, write, rep(1), []bool{true}), turnCall},
		{"3rd error: retry", toolConversation(10, write, rep(3), errs(3, true)), turnCall},
		{"4th error: give up", toolConversation(10, write, rep(4), errs(4, true)), turnGiveUp},
		{"an old success does not reset the count", toolConversation(10, write, rep(5), []bool{false, true, true, true, true}), turnGiveUp},
		{"a success between errors does", toolConversation(10, write, rep(5), []bool{true, true, false, true, true}), turnCall},
		{"result of another tool", toolConversation(10, write, []string{"Read"}, []bool{false}), turnFree},
		{"converse offered", []byte(`{"toolConfig":{"tools":[{"toolSpec":{"name":"Write"}}]},"messages":[{"role":"user","content":[{"text":"go"}]}]}`), turnCall},
		{"converse error", []byte(`{"toolConfig":{"tools":[{"toolSpec":{"name":"Write"}}]},"messages":[{"role":"user","content":[{"text":"go"}]},
			{"role":"assistant","content":[{"toolUse":{"toolUseId":"a","name":"Write","input":{}}}]},
			{"role":"user","content":[{"toolResult":{"toolUseId":"a","status":"error","content":[{"text":"bad"}]}}]}]}`), turnCall},
		{"converse success", []byte(`{"toolConfig":{"tools":[{"toolSpec":{"name":"Write"}}]},"messages":[{"role":"user","content":[{"text":"go"}]},
			{"role":"assistant","content":[{"toolUse":{"toolUseId":"a","name":"Write","input":{}}}]},
			{"role":"user","content":[{"toolResult":{"toolUseId":"a","content":[{"text":"ok"}]}}]}]}`), turnDone},
	}
	for _, tt := range tests {
		got, err := scriptTurn(tt.body, "Write")
		if err != nil || got != tt.want {
			t.Errorf("%s: got %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	if _, err := scriptTurn([]byte(`{"messages":[{"content":7}]}`), "Write"); err == nil {
		t.Error("a malformed body: no error")
	}
}

// toolAnswer is the part of an Anthropic answer (InvokeModel, Messages)
// the tool tests read, or what a client assembles from a stream.
type toolAnswer struct {
	ID         string            `json:"id"`
	Content    []toolAnswerBlock `json:"content"`
	StopReason string            `json:"stop_reason"`
	Usage      struct {
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
}

type toolAnswerBlock struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
	Text  string          `json:"text"`
}

// toolDoor is a front door that speaks the Anthropic shapes: InvokeModel
// and its event stream, or a Messages path with server-sent events.
type toolDoor struct {
	name     string
	messages bool   // a Messages path, else InvokeModel
	path     string // Messages: the path; InvokeModel: the model
}

var toolDoors = []toolDoor{
	{"InvokeModel", false, sonnet4},
	{"Messages runtime", true, "/anthropic/v1/messages"},
	{"Messages Mantle", true, "/v1/messages"},
}

// toolConfig is an emulator with a Write of inputTokens scripted, and
// buckets for every door.
func toolConfig(inputTokens int) config.Emulator {
	cfg := oneRegion(tpm(100_000_000))
	cfg.Regions[0].Mantle = []config.Bucket{inputTPM("in", 100_000_000), outputTPM("out", 100_000_000)}
	cfg.Generation.ToolUse = config.ToolUse{Name: "Write", InputTokens: inputTokens, FilePath: toolPath}
	return cfg
}

// body is a request through d offering tools, with msgs (nil: one user
// prompt).
func (d toolDoor) body(maxTokens int, tools []string, msgs []any, stream bool) []byte {
	if msgs == nil {
		msgs = []any{map[string]any{"role": "user", "content": "write the file"}}
	}
	var ts []any
	for _, n := range tools {
		ts = append(ts, map[string]any{"name": n, "input_schema": map[string]any{"type": "object"}})
	}
	req := map[string]any{"max_tokens": maxTokens, "tools": ts, "messages": msgs}
	if d.messages {
		req["model"] = opus47
		req["stream"] = stream
	} else {
		req["anthropic_version"] = "bedrock-2023-05-31"
	}
	b, _ := json.Marshal(req)
	return b
}

// whole posts a non-streaming request through d.
func (d toolDoor) whole(t *testing.T, url string, body []byte, headers ...string) toolAnswer {
	t.Helper()
	path := d.path
	if !d.messages {
		path = "/model/" + d.path + "/invoke"
	}
	resp := post(t, url+path, body, headers...)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var a toolAnswer
	if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &a) != nil {
		t.Fatalf("%s: status %d: %s", d.name, resp.StatusCode, data)
	}
	return a
}

// streamed posts a streaming request through d and assembles its answer as
// a client does, tool inputs as the concatenated partial JSON.
func (d toolDoor) streamed(t *testing.T, url string, body []byte, headers ...string) toolAnswer {
	t.Helper()
	var events []map[string]any
	if d.messages {
		resp := post(t, url+d.path, body, headers...)
		defer resp.Body.Close()
		for _, e := range readSSE(t, resp.Body) {
			events = append(events, e.Data)
		}
	} else {
		resp := post(t, url+"/model/"+d.path+"/invoke-with-response-stream", body, headers...)
		defer resp.Body.Close()
		events = anthropicEvents(t, decodeStream(t, resp.Body))
	}
	var a toolAnswer
	var input strings.Builder
	for _, e := range events {
		switch e["type"] {
		case "message_start":
			a.ID = e["message"].(map[string]any)["id"].(string)
		case "content_block_start":
			b := e["content_block"].(map[string]any)
			id, _ := b["id"].(string)
			name, _ := b["name"].(string)
			a.Content = append(a.Content, toolAnswerBlock{Type: b["type"].(string), ID: id, Name: name})
			input.Reset()
		case "content_block_delta":
			delta := e["delta"].(map[string]any)
			last := &a.Content[len(a.Content)-1]
			if s, ok := delta["partial_json"].(string); ok {
				input.WriteString(s)
			}
			if s, ok := delta["text"].(string); ok {
				last.Text += s
			}
		case "content_block_stop":
			if last := &a.Content[len(a.Content)-1]; last.Type == "tool_use" {
				last.Input = json.RawMessage(input.String())
			}
		case "message_delta":
			a.StopReason = e["delta"].(map[string]any)["stop_reason"].(string)
			a.Usage.OutputTokens = int(e["usage"].(map[string]any)["output_tokens"].(float64))
		}
	}
	return a
}

// call is an answer's one tool call, failing t when it has other blocks.
func (a toolAnswer) call(t *testing.T) toolAnswerBlock {
	t.Helper()
	if len(a.Content) != 1 || a.Content[0].Type != "tool_use" {
		t.Fatalf("answer %+v is not one tool call", a)
	}
	return a.Content[0]
}

// writeInput decodes a Write call's input.
func writeInput(t *testing.T, input string) (path string, words int) {
	t.Helper()
	var in struct {
		FilePath string `json:"file_path"`
		Content  *string
	}
	if err := json.Unmarshal([]byte(input), &in); err != nil || in.Content == nil {
		t.Fatalf("input %.200q: %v", input, err)
	}
	return in.FilePath, len(strings.Fields(*in.Content))
}

// TestToolUseCall: a whole call, streamed and not (the same call), and its
// size from the config or the header, through every door.
func TestToolUseCall(t *testing.T) {
	ts := newTestServer(t, toolConfig(300))
	for _, d := range toolDoors {
		for _, tt := range []struct {
			name    string
			headers []string
			words   int
		}{
			{"configured size", nil, 300},
			{"header overrides", []string{HeaderToolInputTokens, "7"}, 7},
		} {
			name := d.name + ", " + tt.name
			whole := d.whole(t, ts.url, d.body(1000, []string{"Write"}, nil, false), tt.headers...)
			streamed := d.streamed(t, ts.url, d.body(1000, []string{"Write"}, nil, true), tt.headers...)
			// The two bodies differ in "stream" on the Messages paths, so
			// their ids (drawn from the body) differ there.
			if !d.messages && whole.ID != streamed.ID {
				t.Errorf("%s: message ids %s and %s", name, whole.ID, streamed.ID)
			}
			whole.ID, streamed.ID = "", ""
			wc, sc := whole.call(t), streamed.call(t)
			if !strings.HasPrefix(wc.ID, "toolu_bdrk_") || !strings.HasPrefix(sc.ID, "toolu_bdrk_") || wc.Name != "Write" {
				t.Errorf("%s: calls %s %s, %s %s", name, wc.ID, wc.Name, sc.ID, sc.Name)
			}
			if path, words := writeInput(t, string(sc.Input)); path != toolPath || words != tt.words {
				t.Errorf("%s: input writes %d words to %q, want %d to %q", name, words, path, tt.words, toolPath)
			}
			if whole.StopReason != "tool_use" || whole.Usage.OutputTokens != tt.words {
				t.Errorf("%s: stop %s after %d tokens, want tool_use after %d", name, whole.StopReason, whole.Usage.OutputTokens, tt.words)
			}
			whole.Content[0].ID, streamed.Content[0].ID = "", ""
			if d.messages {
				// The words are drawn from the body, whose "stream"
				// differs: compare their number.
				for _, a := range []*toolAnswer{&whole, &streamed} {
					path, words := writeInput(t, string(a.Content[0].Input))
					a.Content[0].Input = json.RawMessage(fmt.Sprintf("%q: %d words", path, words))
				}
			}
			if diff := cmp.Diff(whole, streamed); diff != "" {
				t.Errorf("%s: non-streamed and streamed answers differ (-whole +streamed):\n%s", name, diff)
			}
		}
	}
	resp := post(t, ts.url+"/model/"+sonnet4+"/invoke", toolDoors[0].body(1000, []string{"Write"}, nil, false), HeaderToolInputTokens, "many")
	if got := readError(t, resp); got.Status != http.StatusBadRequest || !strings.Contains(got.Message, HeaderToolInputTokens) {
		t.Errorf("bad header: got %+v, want a 400 naming it", got)
	}
	resp = post(t, ts.url+"/model/"+sonnet4+"/invoke", []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":10,"messages":[{"role":"user","content":7}]}`))
	if got := readError(t, resp); got.Status != http.StatusBadRequest || got.Type != "ValidationException" {
		t.Errorf("content 7: got %+v, want a 400 ValidationException", got)
	}
}

// TestToolUseCut: max_tokens cuts the call mid-JSON, as Bedrock does: the
// streamed input does not parse and the stop reason is max_tokens.
func TestToolUseCut(t *testing.T) {
	ts := newTestServer(t, toolConfig(6000))
	for _, d := range toolDoors {
		streamed := d.streamed(t, ts.url, d.body(40, []string{"Write"}, nil, true))
		sc := streamed.call(t)
		if streamed.StopReason != "max_tokens" || streamed.Usage.OutputTokens != 40 {
			t.Errorf("%s streamed: stop %q after %d tokens, want max_tokens after 40", d.name, streamed.StopReason, streamed.Usage.OutputTokens)
		}
		if json.Valid(sc.Input) {
			t.Errorf("%s: the cut input parses: %q", d.name, sc.Input)
		}
		if want := `{"file_path":"/tmp/a \"quoted\" dir/out.txt","content":"`; !strings.HasPrefix(string(sc.Input), want) {
			t.Errorf("%s: input %.100q does not start with %q", d.name, sc.Input, want)
		}
		// The non-streaming answer closes the input where the stream was cut.
		whole := d.whole(t, ts.url, d.body(40, []string{"Write"}, nil, false))
		wc := whole.call(t)
		// (On the Messages paths the bodies differ in "stream", and so do
		// the words drawn from them.)
		if whole.StopReason != "max_tokens" || whole.Usage.OutputTokens != 40 || !d.messages && string(wc.Input) != string(sc.Input)+`"}` {
			t.Errorf("%s: non-streamed %+v, streamed %+v", d.name, whole, streamed)
		}
		if _, words := writeInput(t, string(wc.Input)); words != 40 {
			t.Errorf("%s: %d words, want 40", d.name, words)
		}
	}
}

// TestToolUseLoop drives the script as an agent does, with the emulator's
// own calls sent back: error results get the call again with a new id, three
// times, then a text that gives up; a success ends the turn.
func TestToolUseLoop(t *testing.T) {
	ts := newTestServer(t, toolConfig(50))
	for _, d := range toolDoors {
		for _, stream := range []bool{false, true} {
			for _, failures := range []int{0, 2, 4, 9} {
				name := fmt.Sprintf("%s, stream=%v, %d failures", d.name, stream, failures)
				msgs := []any{map[string]any{"role": "user", "content": "write the file"}}
				ids := map[string]bool{}
				var calls int
				var final toolAnswer
				for {
					body := d.body(1000, []string{"Write", "Bash"}, msgs, stream)
					var a toolAnswer
					if stream {
						a = d.streamed(t, ts.url, body)
					} else {
						a = d.whole(t, ts.url, body)
					}
					if a.StopReason != "tool_use" {
						final = a
						break
					}
					call := a.call(t)
					if ids[call.ID] {
						t.Fatalf("%s: id %s used twice", name, call.ID)
					}
					ids[call.ID] = true
					calls++
					if calls > 10 {
						t.Fatalf("%s: the script does not stop", name)
					}
					msgs = append(msgs,
						map[string]any{"role": "assistant", "content": []any{map[string]any{"type": "tool_use", "id": call.ID, "name": call.Name, "input": call.Input}}},
						map[string]any{"role": "user", "content": []any{map[string]any{"type": "tool_result", "tool_use_id": call.ID, "is_error": calls <= failures}}})
				}
				wantCalls, wantText := failures+1, toolDoneWords
				if failures > maxToolRetries {
					wantCalls, wantText = maxToolRetries+1, toolGiveUpWords
				}
				if calls != wantCalls || final.StopReason != "end_turn" || len(final.Content) != 1 || final.Content[0].Text != strings.Join(wantText, " ") {
					t.Errorf("%s: %d calls, then %+v; want %d calls, then %q", name, calls, final, wantCalls, strings.Join(wantText, " "))
				}
			}
		}
	}
}

// TestToolUseConverse: Converse renders the call as toolUse, streamed
// (contentBlockStart, then toolUse input deltas) and not.
func TestToolUseConverse(t *testing.T) {
	ts := newTestServer(t, toolConfig(30))
	body := []byte(`{"inferenceConfig":{"maxTokens":1000},"toolConfig":{"tools":[{"toolSpec":{"name":"Write","inputSchema":{"json":{}}}}]},"messages":[{"role":"user","content":[{"text":"go"}]}]}`)
	resp := post(t, ts.url+"/model/"+sonnet4+"/converse", body)
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var whole struct {
		Output struct {
			Message struct {
				Content []struct {
					ToolUse struct {
						ToolUseID, Name string
						Input           json.RawMessage
					}
				}
			}
		}
		StopReason string
	}
	if err := json.Unmarshal(data, &whole); err != nil || len(whole.Output.Message.Content) != 1 {
		t.Fatalf("%s: %v", data, err)
	}
	tu := whole.Output.Message.Content[0].ToolUse
	if _, words := writeInput(t, string(tu.Input)); words != 30 || tu.Name != "Write" || whole.StopReason != "tool_use" {
		t.Errorf("converse: %s", data)
	}

	resp = post(t, ts.url+"/model/"+sonnet4+"/converse-stream", body)
	defer resp.Body.Close()
	var types []string
	var id, input string
	for _, f := range decodeStream(t, resp.Body) {
		types = append(types, f.EventType)
		var e struct {
			Start struct {
				ToolUse struct{ ToolUseID, Name string }
			}
			Delta struct{ ToolUse struct{ Input string } }
		}
		json.Unmarshal(f.Payload, &e)
		id += e.Start.ToolUse.ToolUseID
		input += e.Delta.ToolUse.Input
	}
	want := []string{eventstream.EventMessageStart, eventstream.EventContentBlockStart}
	for range 30 / 4 {
		want = append(want, eventstream.EventContentBlockDelta)
	}
	want = append(want, eventstream.EventContentBlockDelta, eventstream.EventContentBlockStop, eventstream.EventMessageStop, eventstream.EventMetadata)
	if d := cmp.Diff(want, types); d != "" {
		t.Errorf("converse-stream events (-want +got):\n%s", d)
	}
	if id != tu.ToolUseID || input != string(tu.Input) {
		t.Errorf("streamed call %s %q, non-streamed %s %q", id, input, tu.ToolUseID, tu.Input)
	}
}

// FuzzScriptTurn: any body gets a turn or an error, never a panic, and a
// body that does not parse as JSON always gets an error.
func FuzzScriptTurn(f *testing.F) {
	f.Add(toolConversation(10, []string{"Write"}, []string{"Write", "Write"}, []bool{true, false}))
	f.Add(toolConversation(10, []string{"Write"}, nil, nil))
	f.Add([]byte(`{"toolConfig":{"tools":[{"toolSpec":{"name":"Write"}}]},"messages":[{"role":"assistant","content":[{"toolUse":{"toolUseId":"a","name":"Write"}}]},{"role":"user","content":[{"toolResult":{"toolUseId":"a","status":"error"}}]}]}`))
	f.Add([]byte(`{"messages":[{"content":"text"}],"tools":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := scriptTurn(body, "Write")
		if err == nil && !json.Valid(body) {
			t.Fatalf("%q: turn %v for a body that is not JSON", body, got)
		}
		if got > turnGiveUp {
			t.Fatalf("%q: turn %v", body, got)
		}
	})
}
