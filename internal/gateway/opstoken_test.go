package gateway

import (
	"io"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// TestOpsToken: with an operations token, /v1/status and /metrics answer
// only a request that bears it, with a Bedrock-shaped 403 otherwise (a
// developer key is not enough); /healthz stays open. So does the
// dashboard's data at /v1/dashboard, while its page and script, which hold
// no data, are open. Without a token, all are open.
func TestOpsToken(t *testing.T) {
	t.Parallel()
	const token = "ops-s3cret"
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("page")) })
	locked := newHarness(t, harnessOpts{opsToken: token, dashboard: page})
	open := newHarness(t, harnessOpts{dashboard: page})
	type result struct {
		Status    int
		ErrorType string
	}
	get := func(base, path, auth string) result {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return result{resp.StatusCode, resp.Header.Get(bedrock.HeaderErrorType)}
	}
	ok := result{Status: 200}
	denied := result{Status: 403, ErrorType: bedrock.AccessDeniedException}
	tests := []struct {
		name string
		h    *harness
		path string
		auth string
		want result
	}{
		{"status, no token", locked, "/v1/status", "", denied},
		{"status, wrong token", locked, "/v1/status", "Bearer ops-secret", denied},
		{"status, developer key", locked, "/v1/status", "Bearer " + locked.secret["alice"], denied},
		{"status, token", locked, "/v1/status", "Bearer " + token, ok},
		{"status, token, lower-case scheme", locked, "/v1/status", "bearer " + token, ok},
		{"metrics, no token", locked, "/metrics", "", denied},
		{"metrics, token", locked, "/metrics", "Bearer " + token, ok},
		{"healthz, no token", locked, "/healthz", "", ok},
		{"dashboard data, no token", locked, "/v1/dashboard", "", denied},
		{"dashboard data, developer key", locked, "/v1/dashboard", "Bearer " + locked.secret["alice"], denied},
		{"dashboard data, token", locked, "/v1/dashboard", "Bearer " + token, ok},
		{"dashboard page (holds no data), no token", locked, "/", "", ok},
		{"dashboard script, no token", locked, "/dashboard/app.js", "", ok},
		{"open dashboard data", open, "/v1/dashboard", "", ok},
		{"open status", open, "/v1/status", "", ok},
		{"open metrics", open, "/metrics", "", ok},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, get(tt.h.gwURL, tt.path, tt.auth)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}
