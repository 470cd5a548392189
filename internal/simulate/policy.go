package simulate

import (
	"fmt"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
)

// capPolicy is the gateway's choice of max_tokens for a call, made by the
// gateway's own code (package admission) on the simulated clock. It is the
// seam between the simulated Claude Code and Headroom's output policy: the
// simulation tells it what the request says (max_tokens, thinking, the
// tool_result of a cut call, Claude Code's recovery turn, the session) and
// what the answer was, exactly as the gateway reads them from the wire.
type capPolicy interface {
	// decide returns the max_tokens and thinking budget the call goes
	// upstream with, and whether the cap grew because an earlier call of
	// the conversation was cut.
	decide(now time.Time, a capAsk) (maxTokens, budget int, escalated bool)
	// observe is the settled answer.
	observe(now time.Time, o capOutcome)
}

// capAsk is one request as the gateway's policy sees it.
type capAsk struct {
	key   admission.Key
	model *modelInfo
	req   bedrock.Request
	// cost is the admission charge of the request at a given max_tokens.
	cost func(maxTokens int) int64
	// answers is the id of the tool call whose tool_result the request
	// carries (0: none); recovery marks Claude Code's recovery turn.
	answers  uint64
	recovery bool
	session  string
}

// capOutcome is a finished answer as the gateway settles it.
type capOutcome struct {
	model          *modelInfo
	key, session   string
	output         int // thinking and text
	applied, asked int
	cut            bool   // stop_reason max_tokens
	toolUse        uint64 // the answer's tool_use id (0: text)
}

// newCapPolicy builds the gateway's policy for strategy st.
func newCapPolicy(st Strategy, sc *Scenario) (capPolicy, error) {
	switch st.Policy {
	case policyFixed:
		return fixedCap{admission.Policy{MaxTokensCap: sc.Headroom.MaxTokensCap, ThinkingBudgetCap: sc.Headroom.ThinkingBudgetCap}}, nil
	}
	return nil, fmt.Errorf("strategy %s: unknown gateway policy %q", st.Name, st.Policy)
}

// fixedCap is one hard cap: admission.Clamp with the scenario's caps.
type fixedCap struct{ p admission.Policy }

func (f fixedCap) decide(_ time.Time, a capAsk) (int, int, bool) {
	cl := admission.Clamp(f.p, a.key, a.req, a.model.maxOut)
	return cl.MaxTokens, cl.ThinkingBudget, false
}

func (fixedCap) observe(time.Time, capOutcome) {}
