package bedrock

import (
	"testing"

	"github.com/headroomhq/headroom/internal/bedrock/bedrocktest"
)

// claudeCodeBodySize is the size of the body Claude Code 2.1 sends on its
// first call (85,539 bytes measured, BEDROCK.md section 4).
const claudeCodeBodySize = 86_000

func claudeCodeBody(tb testing.TB, maxTokens int) []byte {
	tb.Helper()
	b := bedrocktest.ClaudeCodeBody(claudeCodeBodySize, maxTokens)
	if len(b) != claudeCodeBodySize {
		tb.Fatalf("ClaudeCodeBody made %d bytes, want %d", len(b), claudeCodeBodySize)
	}
	return b
}
