package cli

import (
	"net/http"
	"strings"
	"testing"
)

// TestServeOpsToken: operations.token_env names the variable whose value
// /v1/status and /metrics then require; an empty variable stops serve at
// start-up rather than leaving the endpoints open by mistake.
func TestServeOpsToken(t *testing.T) {
	args := serveConfig(t, "{mode: none}", "operations:\n  token_env: HEADROOM_TEST_OPS_TOKEN\n")

	t.Setenv("HEADROOM_TEST_OPS_TOKEN", "")
	code, _, errOut := run(t, args...)
	if code != 1 || !strings.Contains(errOut, "HEADROOM_TEST_OPS_TOKEN (operations.token_env) is empty") {
		t.Fatalf("serve with the token variable empty: exit %d, stderr %s; want 1 and the variable named", code, errOut)
	}

	t.Setenv("HEADROOM_TEST_OPS_TOKEN", "tok3n")
	s := startInProcess(t, args)
	base := s.url(t)
	for _, tt := range []struct {
		auth string
		want int
	}{{"", 403}, {"Bearer wrong", 403}, {"Bearer tok3n", 200}} {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/status", nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET /v1/status with %q: %d, want %d", tt.auth, resp.StatusCode, tt.want)
		}
	}
	if code := s.stop(); code != 0 {
		t.Errorf("serve exited %d: %s", code, s.stderr.String())
	}
}
