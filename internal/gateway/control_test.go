package gateway

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// TestControlRefusesDotSegments: a key holder cannot use the
// /inference-profiles pass-through, which the gateway re-signs with its own
// AWS credentials, to reach other control-plane APIs through dot segments;
// the upstream never sees such a request.
func TestControlRefusesDotSegments(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	h := newHarness(t, harnessOpts{upstream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.RequestURI)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"inferenceProfileSummaries":[]}`))
	})})
	tests := []struct {
		path       string
		wantStatus int
	}{
		{"/inference-profiles?type=SYSTEM_DEFINED", http.StatusOK},
		{"/inference-profiles/us.anthropic.claude-sonnet-4-20250514-v1:0", http.StatusOK},
		{"/inference-profiles/../foundation-models", http.StatusBadRequest},
		{"/inference-profiles/..%2Flogging%2Fmodelinvocations", http.StatusBadRequest},
		{"/inference-profiles/./x", http.StatusBadRequest},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(http.MethodGet, h.gwURL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque, _, _ = strings.Cut(tt.path, "?") // send the path as written, dots and all
		req.Header.Set("Authorization", "Bearer "+h.secret["alice"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(resp)
		if got, want := resp.StatusCode, tt.wantStatus; got != want {
			t.Errorf("GET %s: status %d, want %d (%s)", tt.path, got, want, body)
		}
		if tt.wantStatus != http.StatusOK {
			if got, want := resp.Header.Get("x-amzn-ErrorType"), bedrock.ValidationException; got != want {
				t.Errorf("GET %s: x-amzn-ErrorType %q, want %q", tt.path, got, want)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got, want := len(seen), 2; got != want {
		t.Errorf("upstream saw %d requests %q, want %d (only the two well-formed ones)", got, seen, want)
	}
}
