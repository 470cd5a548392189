package bedrock

import (
	"errors"
	"testing"
)

// TestConverseExtraMaxTokensRefused: a max_tokens inside Converse's
// additionalModelRequestFields, which the model reads past the capped
// inferenceConfig.maxTokens, is refused, however its key is spelled;
// other fields there still pass.
func TestConverseExtraMaxTokensRefused(t *testing.T) {
	const msgs = `"messages":[{"role":"user","content":[{"text":"hi"}]}]`
	for _, tt := range []struct {
		body   string
		refuse bool
	}{
		{`{` + msgs + `,"inferenceConfig":{"maxTokens":100},"additionalModelRequestFields":{"max_tokens":128000}}`, true},
		{`{` + msgs + `,"additionalModelRequestFields":{"maxTokens":128000}}`, true},
		{`{` + msgs + `,"additionalModelRequestFields":{"max\u005ftokens":128000}}`, true},
		{`{` + msgs + `,"additionalModelRequestFields":{"top_k":5,"thinking":{"type":"enabled","budget_tokens":2048}},"inferenceConfig":{"maxTokens":4096}}`, false},
	} {
		_, err := ReadConverse([]byte(tt.body))
		var be *Error
		if got := errors.As(err, &be) && be.Name == ValidationException; got != tt.refuse {
			t.Errorf("%s: err %v, want refused %v", tt.body, err, tt.refuse)
		}
		_, _, err = ReadConverseSpans([]byte(tt.body))
		if got := errors.As(err, &be) && be.Name == ValidationException; got != tt.refuse {
			t.Errorf("spans %s: err %v, want refused %v", tt.body, err, tt.refuse)
		}
	}
}
