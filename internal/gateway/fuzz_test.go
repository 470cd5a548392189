package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// FuzzGatewayRequest throws arbitrary model paths, bodies and wait headers
// at the handler's request decoding path, through both front doors: each
// input goes to /model/{model}/{action}, then, as a Messages body (which
// names its model), to the Messages path that action stands for
// (fuzzMessagesPath). Whatever comes in: no panic (which the handler would
// turn into a 500), a request ID, an error in the door's shape (Bedrock's
// on /model, Anthropic's on the Messages paths), and no reservation left
// behind.
func FuzzGatewayRequest(f *testing.F) {
	h := newHarness(f, harnessOpts{settleDelay: -1, maxBody: 1 << 20})
	secret := h.secret["alice"]
	f.Add("invoke", sonnet, []byte(`{"anthropic_version":"x","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`), "")
	f.Add("invoke", sonnet, []byte(`{"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999},"messages":[]}`), "1")
	f.Add("invoke-with-response-stream", sonnet, []byte(`{"messages":[],"thinking":{"type":"adaptive"}}`), "0")
	f.Add("converse", sonnet, []byte(`{"messages":[{"role":"user","content":[{"text":"hi"}]}],"inferenceConfig":{"maxTokens":5}}`), "2.5")
	f.Add("converse-stream", "anthropic.claude-sonnet-4-20250514-v1%3A0", []byte(`{"messages":[],"inferenceConfig":null}`), "-1")
	f.Add("count-tokens", sonnet, []byte(`{"input":{"invokeModel":{"body":"e30="}}}`), "")
	f.Add("invoke", "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.anthropic.claude-sonnet-4-20250514-v1%3A0", []byte(`{"max_tokens":1,"messages":[]}`), "")
	f.Add("invoke", "%zz", []byte(`{`), "x")
	f.Add("invoke", sonnet, []byte(`{"max_tokens":1e400,"messages":[]}`), "1e9")
	// Messages bodies (the model in the body), for the Messages paths.
	f.Add("invoke", sonnet, []byte(`{"model":"`+sonnet+`","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`), "")
	f.Add("invoke-with-response-stream", sonnet, []byte(`{"model":"`+sonnet+`","max_tokens":128000,"thinking":{"type":"adaptive"},"output_config":{"effort":"high"},"stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`), "0.5")
	f.Add("count-tokens", sonnet, []byte(`{"model":"`+sonnet+`","messages":[{"role":"user","content":"hi"}]}`), "")
	f.Add("converse", "", []byte(`{"model":"`+sonnet+`","max_tokens":-1,"stream":"yes","messages":[]}`), "")
	f.Fuzz(func(t *testing.T, action, model string, body []byte, wait string) {
		send := func(path string, check func(*httptest.ResponseRecorder)) {
			req := httptest.NewRequest(http.MethodPost, "http://gw/", bytes.NewReader(body))
			req.URL.Path, req.URL.RawPath = "", ""
			if err := setPath(req, path); err != nil {
				return
			}
			req.Header.Set("Authorization", "Bearer "+secret)
			req.Header.Set(HeaderMaxWait, wait)
			req.Header.Set("X-Headroom-Emulator-Output-Tokens", "3")
			rec := httptest.NewRecorder()
			h.gw.ServeHTTP(rec, req)
			res := rec.Result()
			if res.Header.Get(bedrock.HeaderRequestID) == "" {
				t.Errorf("%s: no request ID", path)
			}
			if res.StatusCode >= 500 && res.StatusCode != 503 {
				t.Errorf("%s: status %d: %s", path, res.StatusCode, rec.Body.String())
			}
			if res.StatusCode >= 400 {
				check(rec)
			}
			if n := h.reserved(); n != 0 {
				t.Errorf("%s: %d tokens still reserved after the request", path, n)
			}
		}
		send("/model/"+model+"/"+action, func(rec *httptest.ResponseRecorder) {
			var v struct{ Message *string }
			if json.Unmarshal(rec.Body.Bytes(), &v) != nil || v.Message == nil || rec.Header().Get("X-Amzn-ErrorType") == "" {
				t.Errorf("status %d with a body that is not a Bedrock error: %q", rec.Code, rec.Body.String())
			}
		})
		send(fuzzMessagesPath(action), func(rec *httptest.ResponseRecorder) {
			var e anthropicErr
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Type != "error" || e.Error.Type != AnthropicErrorType(rec.Code) || e.Error.Message == "" {
				t.Errorf("%s: status %d with a body that is not an Anthropic error: %q", fuzzMessagesPath(action), rec.Code, rec.Body.String())
			}
		})
	})
}

// fuzzMessagesPath is the Messages API path FuzzGatewayRequest sends an input
// to, after its Bedrock path: count_tokens for count-tokens, the beta path
// Claude Code calls for a streaming operation, the runtime path for the
// others, and /v1/messages for anything else.
func fuzzMessagesPath(action string) string {
	switch action {
	case "count-tokens":
		return "/v1/messages/count_tokens"
	case "invoke-with-response-stream", "converse-stream":
		return "/v1/messages?beta=true"
	case "invoke", "converse":
		return "/anthropic/v1/messages"
	}
	return "/v1/messages"
}

// setPath sets the request's path from an escaped string, as a server
// would parse it off the wire.
func setPath(r *http.Request, escaped string) error {
	u, err := r.URL.Parse(escaped)
	if err != nil {
		return err
	}
	r.URL = u
	return nil
}
