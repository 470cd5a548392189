package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/keys"
)

// TestBadInput: every malformed request gets the Bedrock-shaped error a
// client expects, and the ledgers (the gateway's and the emulator's) stay
// exactly as they were.
func TestBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{maxBody: 64 << 10, keys: []keys.Key{{Name: "alice", Weight: 1}, {Name: "gone", Weight: 1}}})
	if err := h.store.Revoke(t.Context(), "gone", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := h.registry.Refresh(t.Context()); err != nil { // as keys_refresh does
		t.Fatal(err)
	}
	alice := h.secret["alice"]
	invoke := "/model/" + sonnet + "/invoke"
	tests := []struct {
		name, key, method, path, body string
		hdr                           map[string]string
		wantStatus                    int
		wantType                      string
	}{
		{"malformed JSON", alice, "POST", invoke, `{"max_tokens": 10, "messages": [`, nil, 400, bedrock.ValidationException},
		{"not an object", alice, "POST", invoke, `[1,2]`, nil, 400, bedrock.ValidationException},
		{"negative max_tokens", alice, "POST", invoke, fmt.Sprintf(smallMsg, -5), nil, 400, bedrock.ValidationException},
		{"zero max_tokens", alice, "POST", invoke, fmt.Sprintf(smallMsg, 0), nil, 400, bedrock.ValidationException},
		{"absurd max_tokens", alice, "POST", invoke, fmt.Sprintf(smallMsg, 2_000_000_000), nil, 400, bedrock.ValidationException},
		{"fractional max_tokens", alice, "POST", invoke, strings.Replace(fmt.Sprintf(smallMsg, 10), "10", "10.5", 1), nil, 400, bedrock.ValidationException},
		{"string max_tokens", alice, "POST", invoke, strings.Replace(fmt.Sprintf(smallMsg, 10), "10", `"10"`, 1), nil, 400, bedrock.ValidationException},
		{"budget not below max_tokens", alice, "POST", invoke,
			`{"max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":2000},"messages":[]}`, nil, 400, bedrock.ValidationException},
		{"oversize body", alice, "POST", invoke, `{"messages":[],"pad":"` + strings.Repeat("x", 70<<10) + `"}`, nil, 400, bedrock.ValidationException},
		{"invalid model id", alice, "POST", "/model/has%20space/invoke", fmt.Sprintf(smallMsg, 10), nil, 400, bedrock.ValidationException},
		{"model no route serves", alice, "POST", "/model/amazon.titan-text-express-v1/invoke", fmt.Sprintf(smallMsg, 10), nil, 400, bedrock.ValidationException},
		{"unknown operation", alice, "POST", "/model/" + sonnet + "/explode", "{}", nil, 404, bedrock.ResourceNotFoundException},
		{"GET on invoke", alice, "GET", invoke, "", nil, 400, bedrock.ValidationException},
		{"no key", "", "POST", invoke, fmt.Sprintf(smallMsg, 10), nil, 403, bedrock.AccessDeniedException},
		{"unknown key", "hr_" + strings.Repeat("A", 40), "POST", invoke, fmt.Sprintf(smallMsg, 10), nil, 403, bedrock.AccessDeniedException},
		{"garbage key", "'; drop table keys", "POST", invoke, fmt.Sprintf(smallMsg, 10), nil, 403, bedrock.AccessDeniedException},
		{"revoked key", h.secret["gone"], "POST", invoke, fmt.Sprintf(smallMsg, 10), nil, 403, bedrock.AccessDeniedException},
		{"bad count-tokens body", alice, "POST", "/model/" + sonnet + "/count-tokens", `{"input":{}}`, nil, 400, bedrock.ValidationException},
		// The upstream fails every attempt: retried within the deadline,
		// then its 503 is passed on and the reservation cancelled.
		{"upstream unavailable", alice, "POST", invoke, fmt.Sprintf(smallMsg, 10),
			map[string]string{"X-Headroom-Emulator-Fault": "unavailable", HeaderMaxWait: "0.3"}, 503, bedrock.ServiceUnavailableException},
	}
	before := h.ledger()
	emuBefore := h.emuState()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, h.gwURL+tt.path, strings.NewReader(tt.body))
			if tt.key != "" {
				req.Header.Set("Authorization", "Bearer "+tt.key)
			}
			for k, v := range tt.hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(resp)
			got := []any{resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType")}
			want := []any{tt.wantStatus, tt.wantType}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("status, error type (-want +got):\n%s\nbody: %s", diff, body)
			}
			var msg struct{ Message string }
			if err := json.Unmarshal([]byte(body), &msg); err != nil || msg.Message == "" {
				t.Errorf("body %q is not {\"message\": ...}", body)
			}
			if resp.Header.Get(bedrock.HeaderRequestID) == "" {
				t.Error("no x-amzn-RequestId")
			}
			if strings.Contains(body, alice) {
				t.Error("the key leaked into the answer")
			}
		})
	}
	after := h.ledger()
	for i := range after {
		if after[i].Reserved != 0 || after[i].Used != before[i].Used || after[i].KindName == "tpd" && after[i].Used != 0 {
			t.Errorf("gateway bucket %s changed: before %+v after %+v", after[i].Name, before[i], after[i])
		}
	}
	emuAfter := h.emuState()
	for i, b := range emuAfter.Regions[0].Buckets {
		if b.Used != emuBefore.Regions[0].Buckets[i].Used || b.Reserved != 0 {
			t.Errorf("emulator bucket %s changed: %+v", b.Name, b)
		}
	}
}

// TestMissingMaxTokensGetsTheCap: Bedrock requires max_tokens; the gateway
// fills in the cap instead of failing, and says so.
func TestMissingMaxTokensGetsTheCap(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	resp, body := h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke", `{"anthropic_version":"x","messages":[{"role":"user","content":"hi"}]}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got, want := resp.Header.Get(HeaderMaxTokens), "unset->4096 (fixed)"; got != want {
		t.Errorf("%s = %q, want %q", HeaderMaxTokens, got, want)
	}
}
