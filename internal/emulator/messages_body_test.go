package emulator

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestReadMessagesFields(t *testing.T) {
	tests := []struct {
		body    string
		want    messagesFields
		wantErr bool
	}{
		{`{"model":"anthropic.claude-opus-4-7","messages":[]}`, messagesFields{model: "anthropic.claude-opus-4-7"}, false},
		{` { "stream" : true , "model" : "m" } `, messagesFields{model: "m", stream: true}, false},
		{`{"model":"m","stream":false,"output_config":{"effort":"high"}}`, messagesFields{model: "m"}, false},
		{`{"model":"m","stream":null,"output_config":{"format":{"type":"json_schema"}}}`, messagesFields{model: "m", structured: true}, false},
		{`{"model":"m","output_config":{"format":null}}`, messagesFields{model: "m"}, false},
		{`{"mod\u0065l":"m\u00e9","stream":true}`, messagesFields{model: "mé", stream: true}, false},
		{`{"model":"first","model":"second"}`, messagesFields{model: "first"}, false},
		{`{"messages":[{"model":"inner"}],"model":"outer"}`, messagesFields{model: "outer"}, false},
		{`{}`, messagesFields{}, true},
		{`{"messages":[]}`, messagesFields{}, true},
		{`{"model":1}`, messagesFields{}, true},
		{`{"model":"m","stream":"true"}`, messagesFields{}, true},
		{`{"model":"m","output_config":[]}`, messagesFields{}, true},
		{`{"model":"m",}`, messagesFields{}, true},
		{`{"model":"m"`, messagesFields{}, true},
		{`{"model" "m"}`, messagesFields{}, true},
		{`[]`, messagesFields{}, true},
		{``, messagesFields{}, true},
	}
	for _, tt := range tests {
		got, err := readMessagesFields([]byte(tt.body))
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("%s: got %+v, %v; want %+v, error %v", tt.body, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzReadMessagesFields: never panics; whatever it accepts is valid JSON,
// and its model and stream agree with encoding/json's where the document
// names each once.
func FuzzReadMessagesFields(f *testing.F) {
	for _, s := range []string{
		`{"model":"anthropic.claude-opus-4-7","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","output_config":{"effort":"xhigh","format":{"type":"json_schema"}},"thinking":{"type":"adaptive"}}`,
		`{"mod\u0065l":"x","stream":false}`,
		`{"model":"a","model":"b"}`,
		`{"model":"m","stream":null,"output_config":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := readMessagesFields(body)
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var ref struct {
			Model  *string `json:"model"`
			Stream *bool   `json:"stream"`
		}
		var members map[string]json.RawMessage
		if json.Unmarshal(body, &members) != nil || json.Unmarshal(body, &ref) != nil {
			return // a member name json folds differently, or a stream json rejects
		}
		if countKey(t, body, "model") == 1 && (ref.Model == nil || *ref.Model != got.model) {
			t.Fatalf("%q: model %q, encoding/json %v", body, got.model, ref.Model)
		}
		if countKey(t, body, "stream") == 1 && got.stream != (ref.Stream != nil && *ref.Stream) {
			t.Fatalf("%q: stream %v, encoding/json %v", body, got.stream, ref.Stream)
		}
	})
}

// countKey counts the top-level members of body named exactly key.
func countKey(t *testing.T, body []byte, key string) int {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil {
		return 0
	}
	n := 0
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return 0
		}
		if k == key {
			n++
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return 0
		}
	}
	return n
}
