package keys

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClaudeSettings(t *testing.T) {
	got := ClaudeSettings("http://127.0.0.1:8080", "us-east-1", "hr_secret")
	want := `{
  "env": {
    "CLAUDE_CODE_USE_BEDROCK": "1",
    "AWS_REGION": "us-east-1",
    "ANTHROPIC_BEDROCK_BASE_URL": "http://127.0.0.1:8080",
    "AWS_BEARER_TOKEN_BEDROCK": "hr_secret"
  }
}`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ClaudeSettings (-want +got):\n%s", diff)
	}
	var v map[string]map[string]string
	if err := json.Unmarshal([]byte(ClaudeSettings(`http://x/"q"`, "r", "s")), &v); err != nil {
		t.Fatalf("settings with quotes are not valid JSON: %v", err)
	}
	if got := v["env"]["ANTHROPIC_BEDROCK_BASE_URL"]; got != `http://x/"q"` {
		t.Errorf("base URL round trip = %q", got)
	}
}
