package simulate

import (
	"fmt"
	"strings"
)

// Topology is where a strategy's calls go.
type Topology int

const (
	// Shared: every developer calls the one shared account directly.
	Shared Topology = iota
	// PerDeveloper: each developer has an account of their own with a
	// full copy of the quota (the seed's advice).
	PerDeveloper
	// Gateway: every developer calls Headroom, which calls the shared account.
	Gateway
)

func (t Topology) String() string {
	switch t {
	case Shared:
		return "shared account"
	case PerDeveloper:
		return "account per developer"
	case Gateway:
		return "headroom gateway"
	}
	return fmt.Sprintf("topology(%d)", int(t))
}

// Strategy is one way for the team to use the quota.
type Strategy struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Topology    Topology `json:"-"`
	// ClientMaxTokens is the max_tokens the client asks for:
	// clientDefault for Claude Code's own (the workload's max_tokens),
	// a positive CLAUDE_CODE_MAX_OUTPUT_TOKENS, or 0 when the request sets
	// no max_tokens and Bedrock reserves the model's limit.
	ClientMaxTokens int `json:"client_max_tokens"`
	// Policy is the gateway's max_tokens policy (Gateway only):
	// policyLearned or policyFixed.
	Policy string `json:"policy,omitempty"`
}

const (
	// claudeCodeDefault is Claude Code 2.1's max_tokens for Sonnet 4 when
	// CLAUDE_CODE_MAX_OUTPUT_TOKENS is unset (the workload's default).
	claudeCodeDefault = 32000
	// clientDefault in Strategy.ClientMaxTokens: what Claude Code asks by
	// default, the workload's max_tokens.
	clientDefault = -1
)

// The gateway's max_tokens policies.
const (
	// policyLearned is Headroom's default: a learned, quota-aware cap that
	// grows when it cut a call (admission's output policy).
	policyLearned = "learned"
	// policyFixed is one hard cap (the scenario's headroom.max_tokens_cap,
	// 4,096) and the thinking budget cap, as before the learned policy.
	policyFixed = "fixed"
)

var strategies = []Strategy{
	{Name: "direct-unset", Topology: Shared, ClientMaxTokens: 0,
		Description: "max_tokens unset (the model's limit, 64,000 for Sonnet 4) straight to the shared account"},
	{Name: "direct-defaults", Topology: Shared, ClientMaxTokens: clientDefault,
		Description: "Claude Code defaults (max_tokens 32,000, or 128,000 on Opus 5.5) straight to the shared account"},
	{Name: "direct-4096", Topology: Shared, ClientMaxTokens: 4096,
		Description: "CLAUDE_CODE_MAX_OUTPUT_TOKENS=4096 straight to the shared account"},
	{Name: "account-per-dev", Topology: PerDeveloper, ClientMaxTokens: clientDefault,
		Description: "one AWS account per developer, each with the whole quota, Claude Code defaults"},
	{Name: "account-per-dev-4096", Topology: PerDeveloper, ClientMaxTokens: 4096,
		Description: "one AWS account per developer, each with the whole quota, max_tokens 4,096"},
	{Name: "headroom", Topology: Gateway, ClientMaxTokens: clientDefault, Policy: policyLearned,
		Description: "Claude Code defaults through Headroom's default policy: learned, quota-aware max_tokens that grows when it cut a call; fair share; queue instead of 429"},
	{Name: "headroom-4096", Topology: Gateway, ClientMaxTokens: clientDefault, Policy: policyFixed,
		Description: "Claude Code defaults through Headroom with a hard 4,096 max_tokens cap (and 1,024 thinking budget); fair share; queue instead of 429"},
}

// StrategyNames lists the strategies ParseStrategies knows.
func StrategyNames() []string {
	names := make([]string, len(strategies))
	for i, s := range strategies {
		names[i] = s.Name
	}
	return names
}

// ParseStrategies resolves a comma-separated list of strategy names.
func ParseStrategies(list string) ([]Strategy, error) {
	var out []Strategy
	seen := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if seen[name] {
			return nil, fmt.Errorf("strategy %q is named twice", name)
		}
		seen[name] = true
		found := false
		for _, s := range strategies {
			if s.Name == name {
				out = append(out, s)
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown strategy %q (known: %s)", name, strings.Join(StrategyNames(), ", "))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no strategy named (known: %s)", strings.Join(StrategyNames(), ", "))
	}
	return out, nil
}
