package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/doctorapi"
)

// TestDoctorEndpoint: GET /v1/doctor answers a developer key or the
// operations token (never a wrong key or nothing, when a token is set) with
// the mirrored buckets, the route and the max_tokens the policy would
// forward for a model; bad input gets a Bedrock-shaped error.
func TestDoctorEndpoint(t *testing.T) {
	t.Parallel()
	const token = "ops-s3cret"
	h := newHarness(t, harnessOpts{opsToken: token})
	const model = "us.anthropic.claude-sonnet-4-20250514-v1:0"
	get := func(method, query, auth string) (int, string, doctorapi.Answer) {
		t.Helper()
		req, _ := http.NewRequest(method, h.gwURL+DoctorPath+query, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var a doctorapi.Answer
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(body, &a); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, body)
			}
		}
		return resp.StatusCode, resp.Header.Get(bedrock.HeaderErrorType), a
	}
	tests := []struct {
		name, method, query, auth string
		status                    int
		errType                   string
	}{
		{"no credentials", http.MethodGet, "", "", 403, bedrock.AccessDeniedException},
		{"wrong key", http.MethodGet, "", "Bearer hr_wrong", 403, bedrock.AccessDeniedException},
		{"developer key", http.MethodGet, "?model=" + model, "Bearer " + h.secret["alice"], 200, ""},
		{"operations token", http.MethodGet, "?model=" + model, "Bearer " + token, 200, ""},
		{"POST", http.MethodPost, "", "Bearer " + token, 400, bedrock.ValidationException},
		{"bad max_tokens", http.MethodGet, "?model=" + model + "&max_tokens=lots", "Bearer " + token, 400, bedrock.ValidationException},
		{"too many models", http.MethodGet, "?model=a&model=b&model=c&model=d&model=e", "Bearer " + token, 400, bedrock.ValidationException},
	}
	for _, tt := range tests {
		status, errType, a := get(tt.method, tt.query, tt.auth)
		if status != tt.status || errType != tt.errType {
			t.Errorf("%s: %d %s, want %d %s", tt.name, status, errType, tt.status, tt.errType)
		}
		if status != 200 {
			continue
		}
		if a.Gateway != "headroom" || len(a.Upstreams) != 1 || len(a.Upstreams[0].Buckets) == 0 || len(a.Models) != 1 {
			t.Fatalf("%s: answer %+v", tt.name, a)
		}
		m := a.Models[0]
		if m.Error != "" || len(m.Route) != 1 || len(m.Buckets) == 0 || m.MaxTokens <= 0 || m.MaxTokens > m.Asked {
			t.Errorf("%s: model %+v; want it routed, its buckets named and max_tokens at most what is asked", tt.name, m)
		}
		if tt.name == "developer key" && a.Key != "alice" {
			t.Errorf("key %q, want alice", a.Key)
		}
	}
}
