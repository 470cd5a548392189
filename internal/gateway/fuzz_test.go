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
// at the handler's request decoding path. Whatever comes in: no panic
// (which the handler would turn into a 500), a request ID, an error that is
// Bedrock-shaped, and no reservation left behind.
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
	f.Fuzz(func(t *testing.T, action, model string, body []byte, wait string) {
		req := httptest.NewRequest(http.MethodPost, "http://gw/", bytes.NewReader(body))
		req.URL.Path, req.URL.RawPath = "", ""
		if err := setPath(req, "/model/"+model+"/"+action); err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set(HeaderMaxWait, wait)
		req.Header.Set("X-Headroom-Emulator-Output-Tokens", "3")
		rec := httptest.NewRecorder()
		h.gw.ServeHTTP(rec, req)
		res := rec.Result()
		if res.Header.Get(bedrock.HeaderRequestID) == "" {
			t.Error("no request ID")
		}
		if res.StatusCode >= 500 && res.StatusCode != 503 {
			t.Errorf("status %d: %s", res.StatusCode, rec.Body.String())
		}
		if res.StatusCode >= 400 {
			var v struct{ Message *string }
			if json.Unmarshal(rec.Body.Bytes(), &v) != nil || v.Message == nil || res.Header.Get("X-Amzn-ErrorType") == "" {
				t.Errorf("status %d with a body that is not a Bedrock error: %q", res.StatusCode, rec.Body.String())
			}
		}
		if n := h.reserved(); n != 0 {
			t.Errorf("%d tokens still reserved after the request", n)
		}
	})
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
