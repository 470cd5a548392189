package bedrock

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var invokeUsageNames = [4]string{"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"}
var converseUsageNames = [4]string{"inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens"}

func TestReadInvokeUsage(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    Usage
		wantErr bool
	}{
		{name: "full message with extra fields",
			body: `{"id":"msg_bdrk_01","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,` +
				`"usage":{"input_tokens":3000,"cache_creation_input_tokens":1000,"cache_read_input_tokens":4000,"cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":0},"output_tokens":1000,"server_tool_use":null,"service_tier":"standard"}}`,
			want: Usage{InputTokens: 3000, OutputTokens: 1000, CacheReadInputTokens: 4000, CacheWriteInputTokens: 1000}},
		{name: "usage first, cache fields missing", body: `{"usage":{"output_tokens":7,"input_tokens":12},"content":[]}`, want: Usage{InputTokens: 12, OutputTokens: 7}},
		{name: "null counts", body: `{"usage":{"input_tokens":5,"output_tokens":null,"cache_read_input_tokens":null}}`, want: Usage{InputTokens: 5}},
		{name: "nested usage elsewhere ignored", body: `{"content":[{"usage":{"input_tokens":99}}],"usage":{"input_tokens":1}}`, want: Usage{InputTokens: 1}},
		{name: "last usage wins", body: `{"usage":{"input_tokens":1,"output_tokens":2},"usage":{"input_tokens":3}}`, want: Usage{InputTokens: 3}},
		{name: "camelCase is not invoke usage", body: `{"usage":{"inputTokens":3}}`, want: Usage{}},

		{name: "no usage", body: `{"content":[]}`, wantErr: true},
		{name: "usage not an object", body: `{"usage":5}`, wantErr: true},
		{name: "negative count", body: `{"usage":{"input_tokens":-1}}`, wantErr: true},
		{name: "string count", body: `{"usage":{"output_tokens":"12"}}`, wantErr: true},
		{name: "fractional count", body: `{"usage":{"output_tokens":1.5}}`, wantErr: true},
		{name: "malformed", body: `{"usage":{"input_tokens":1}`, wantErr: true},
		{name: "not an object", body: `[]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadInvokeUsage([]byte(tt.body))
			checkUsage(t, tt.body, invokeUsageNames, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestReadConverseUsage(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    Usage
		wantErr bool
	}{
		{name: "full response",
			body: `{"output":{"message":{"role":"assistant","content":[{"text":"Hi"}]}},"stopReason":"end_turn","usage":{"inputTokens":30,"outputTokens":10,"totalTokens":47,"cacheReadInputTokens":5,"cacheWriteInputTokens":2},"metrics":{"latencyMs":100}}`,
			want: Usage{InputTokens: 30, OutputTokens: 10, CacheReadInputTokens: 5, CacheWriteInputTokens: 2}},
		{name: "no cache fields", body: `{"usage":{"inputTokens":30,"outputTokens":10,"totalTokens":40}}`, want: Usage{InputTokens: 30, OutputTokens: 10}},
		{name: "no usage", body: `{"output":{}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadConverseUsage([]byte(tt.body))
			checkUsage(t, tt.body, converseUsageNames, got, err, tt.want, tt.wantErr)
		})
	}
}

func checkUsage(t *testing.T, body string, names [4]string, got Usage, err error, want Usage, wantErr bool) {
	t.Helper()
	if _, ok := refUsage([]byte(body), names); ok == wantErr {
		t.Fatalf("model of the reader: ok = %v, table says wantErr = %v", ok, wantErr)
	}
	if wantErr {
		if err == nil {
			t.Fatalf("got %+v, want an error", got)
		}
		var be *Error
		if errors.As(err, &be) {
			t.Errorf("error %v is a Bedrock exception; upstream response errors must not be", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

func TestReadCountTokens(t *testing.T) {
	inner := `{"anthropic_version":"bedrock-2023-05-31","max_tokens":100,"messages":[{"role":"user","content":"Count these tokens, please."}]}`
	b64 := base64.StdEncoding.EncodeToString([]byte(inner))
	// A body whose base64 has '/', which some JSON encoders write as "\/".
	withSlash := `{"messages":[{"content":"???"}]}`
	slashed := strings.ReplaceAll(base64.StdEncoding.EncodeToString([]byte(withSlash)), "/", `\/`)
	if !strings.Contains(slashed, `\/`) {
		t.Fatal("test body has no '/' in its base64")
	}
	conv := `{"messages":[{"role":"user","content":[{"text":"Count these tokens, please."}]}],"system":[{"text":"Be brief"}]}`
	tests := []struct {
		name  string
		body  string
		want  int
		errIn string
	}{
		{name: "invokeModel", body: `{"input":{"invokeModel":{"body":"` + b64 + `"}}}`, want: EstimateTokens([]byte(inner))},
		{name: "invokeModel with extra fields", body: `{"modelId":"x","input":{"other":1,"invokeModel":{"contentType":"application/json","body":"` + b64 + `"}}}`, want: EstimateTokens([]byte(inner))},
		{name: "escaped slash in base64", body: `{"input":{"invokeModel":{"body":"` + slashed + `"}}}`, want: EstimateTokens([]byte(withSlash))},
		{name: "converse", body: `{"input":{"converse":` + conv + `}}`, want: EstimateTokens([]byte(conv))},

		{name: "neither", body: `{"input":{}}`, errIn: "invokeModel"},
		{name: "no input", body: `{}`, errIn: "input"},
		{name: "both", body: `{"input":{"invokeModel":{"body":"` + b64 + `"},"converse":` + conv + `}}`, errIn: "invokeModel"},
		{name: "no body", body: `{"input":{"invokeModel":{}}}`, errIn: "body"},
		{name: "body not a string", body: `{"input":{"invokeModel":{"body":{"messages":[]}}}}`, errIn: "body"},
		{name: "bad base64", body: `{"input":{"invokeModel":{"body":"not base64!"}}}`, errIn: "body"},
		{name: "invalid inner body", body: `{"input":{"invokeModel":{"body":"` + base64.StdEncoding.EncodeToString([]byte(`{"max_tokens":1}`)) + `"}}}`, errIn: "messages"},
		{name: "malformed inner body", body: `{"input":{"invokeModel":{"body":"` + base64.StdEncoding.EncodeToString([]byte(`{"messages":[}`)) + `"}}}`, errIn: "Malformed"},
		{name: "converse not an object", body: `{"input":{"converse":[]}}`, errIn: "converse"},
		{name: "malformed", body: `{"input":{"converse":{}}`, errIn: "Malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadCountTokens([]byte(tt.body))
			ref, refOK := refCountTokens([]byte(tt.body))
			if refOK != (tt.errIn == "") {
				t.Fatalf("model of the reader: ok = %v, table says errIn = %q", refOK, tt.errIn)
			}
			if tt.errIn != "" {
				checkValidation(t, err, tt.errIn)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || got != ref || got == 0 {
				t.Errorf("ReadCountTokens = %d, want %d (model %d)", got, tt.want, ref)
			}
		})
	}
}
