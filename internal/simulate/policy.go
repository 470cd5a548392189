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
	// room is what the admission controller knows now of the request's
	// buckets (Controller.Room).
	room func() admission.Room
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
	case policyLearned:
		return learnedCap{admission.NewOutputPolicy(sc.Headroom.Policy.settings())}, nil
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

// learnedCap is the gateway's default output policy, admission's
// OutputPolicy with `headroom serve`'s defaults: a learned percentile of
// the settled output lengths, more room when the buckets have it, the fair
// share under contention, and a larger cap for the call after a cut. The
// simulation hands it what the gateway reads off the wire: the id of the
// cut tool call a tool_result answers, Claude Code's recovery turn and
// its session id.
type learnedCap struct{ p *admission.OutputPolicy }

func (l learnedCap) decide(now time.Time, a capAsk) (int, int, bool) {
	req := a.req
	if a.answers != 0 {
		req.Last.ToolResults[0], req.Last.NToolResults = a.answers, 1
	}
	req.Last.Recovery = a.recovery
	ask := admission.Ask{Model: a.model.model.Base, Key: a.key, Req: req, ModelMax: a.model.maxOut,
		Cost: a.cost, Session: a.session}
	if a.room != nil {
		ask.Room = a.room()
	}
	dec := l.p.Decide(now, ask)
	return dec.MaxTokens, dec.ThinkingBudget, dec.Reason.Escalated()
}

func (l learnedCap) observe(now time.Time, o capOutcome) {
	stop := "end_turn"
	switch {
	case o.cut:
		stop = "max_tokens"
	case o.toolUse != 0:
		stop = "tool_use"
	}
	l.p.Observe(now, admission.Outcome{Model: o.model.model.Base, Key: o.key, Session: o.session, Known: true,
		Output: o.output, Applied: o.applied, Asked: o.asked, StopReason: stop, LastToolUse: o.toolUse})
}

// PolicySettings override the learned output policy's defaults (those of
// `headroom serve`'s policy section); a zero field keeps the default.
type PolicySettings struct {
	Percentile float64 `yaml:"percentile" json:"percentile,omitempty"`
	Floor      int     `yaml:"floor" json:"floor,omitempty"`
	// RoomFraction: set to 0 to turn keeping more when there is room off.
	RoomFraction     *float64 `yaml:"room_fraction" json:"room_fraction,omitempty"`
	EscalationFactor float64  `yaml:"escalation_factor" json:"escalation_factor,omitempty"`
}

func (p PolicySettings) settings() admission.OutputSettings {
	s := admission.DefaultOutputSettings()
	if p.Percentile > 0 {
		s.Percentile = p.Percentile
	}
	if p.Floor > 0 {
		s.Floor = p.Floor
	}
	if p.RoomFraction != nil {
		s.RoomFraction = *p.RoomFraction
	}
	if p.EscalationFactor > 0 {
		s.EscalateFactor = p.EscalationFactor
	}
	return s
}
