package keys

import "encoding/json"

// DefaultGatewayURL is where `headroom serve` listens unless told otherwise.
const DefaultGatewayURL = "http://127.0.0.1:8080"

// ClaudeSettings returns a ready-to-paste Claude Code settings.json (for
// ~/.claude/settings.json or a project's .claude/settings.local.json) that
// sends Claude Code through the gateway at baseURL with secret.
func ClaudeSettings(baseURL, region, secret string) string {
	// A struct rather than a map keeps the variables in reading order.
	type env struct {
		UseBedrock string `json:"CLAUDE_CODE_USE_BEDROCK"`
		Region     string `json:"AWS_REGION"`
		BaseURL    string `json:"ANTHROPIC_BEDROCK_BASE_URL"`
		Token      string `json:"AWS_BEARER_TOKEN_BEDROCK"`
	}
	v := struct {
		Env env `json:"env"`
	}{env{"1", region, baseURL, secret}}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // strings only: cannot fail
	}
	return string(b)
}
