package bedrock

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// lastTurnCases are bodies whose last message carries (or does not carry)
// the output policy's signals. They seed FuzzReadInvoke too.
var lastTurnCases = []struct {
	name string
	body string
	want LastTurn
}{
	{"tool results", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_a","name":"Write","input":{}},{"type":"tool_use","id":"toolu_b","name":"Write","input":{}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_a","is_error":true,"content":"InputValidationError: Write was called with input that could not be parsed as JSON"},{"tool_use_id":"toolu_b","type":"tool_result","content":[{"type":"text","text":"ok"}]}]}],"max_tokens":32000}`,
		lastTurn2("toolu_a", "toolu_b")},
	{"recovery text block", `{"messages":[{"role":"user","content":"write it"},{"role":"assistant","content":[{"type":"text","text":"Here is"}]},` +
		`{"role":"user","content":[{"type":"text","text":"Output token limit hit. Resume directly \u2014 no apology, no recap of what you were doing."}]}]}`,
		LastTurn{Recovery: true}},
	{"recovery in a system-reminder (2.1.332)", `{"messages":[{"role":"user","content":[{"type":"text","text":"<system-reminder>\nOutput token limit hit. Resume directly \u2014 no apology.\n</system-reminder>","cache_control":{"type":"ephemeral"}}]}]}`,
		LastTurn{Recovery: true}},
	{"recovery string content", `{"messages":[{"content":"Output token limit hit. Resume directly","role":"user"}]}`, LastTurn{Recovery: true}},
	{"recovery quoted deep in a text", `{"messages":[{"role":"user","content":"In yesterday's long session I saw \"Output token limit hit.\" earlier"}]}`, LastTurn{}},
	{"last message is the assistant's", `{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_a"}]},{"role":"assistant","content":"Output token limit hit."}]}`, LastTurn{}},
	{"escaped role", `{"messages":[{"role":"\u0075ser","content":[{"type":"tool_result","tool_use_id":"toolu_a"}]}]}`, lastTurn2("toolu_a")},
	{"role named twice: the last", `{"messages":[{"role":"user","role":"assistant","content":[{"type":"tool_result","tool_use_id":"toolu_a"}]}]}`, LastTurn{}},
	{"id not a string", `{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":7}]}]}`, LastTurn{}},
	{"empty messages", `{"messages":[]}`, LastTurn{}},
	{"nine results: eight kept", `{"messages":[{"role":"user","content":[` + nineResults() + `]}]}`,
		lastTurn2("t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7")},
}

func lastTurn2(ids ...string) LastTurn {
	var lt LastTurn
	for _, id := range ids {
		lt.ToolResults[lt.NToolResults] = ToolUseKeyString(id)
		lt.NToolResults++
	}
	return lt
}

func nineResults() string {
	s := ""
	for i := range 9 {
		if i > 0 {
			s += ","
		}
		s += `{"type":"tool_result","tool_use_id":"t` + string(rune('0'+i)) + `"}`
	}
	return s
}

func TestReadInvokeLastTurn(t *testing.T) {
	for _, tt := range lastTurnCases {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ReadInvoke([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, r.Last); diff != "" {
				t.Errorf("Last (-want +got):\n%s", diff)
			}
			want, _ := refRead([]byte(tt.body), invokeBody)
			if diff := cmp.Diff(want.Last, r.Last); diff != "" {
				t.Errorf("differs from the encoding/json model (-model +got):\n%s", diff)
			}
		})
	}
	// Converse bodies are not read for it.
	r, err := ReadConverse([]byte(`{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_a"}]}]}`))
	if err != nil || r.Last != (LastTurn{}) {
		t.Errorf("Converse: %+v, %v", r.Last, err)
	}
	if ToolUseKey([]byte("toolu_a")) != ToolUseKeyString("toolu_a") || ToolUseKeyString("toolu_a") == ToolUseKeyString("toolu_b") {
		t.Error("ToolUseKey and ToolUseKeyString disagree, or collide")
	}
}
