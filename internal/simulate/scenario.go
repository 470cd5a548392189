package simulate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/headroomhq/headroom/internal/config"
)

// Scenario is a team, its quota and its workload: everything one simulation
// run needs besides the strategies to compare. It is read from YAML (see
// scenarios/*.yaml for the built-ins, every field documented in seed.yaml).
type Scenario struct {
	// Name identifies the scenario in output.
	Name string `yaml:"name" json:"name"`
	// Description says in a sentence or two what the scenario shows.
	Description string `yaml:"description" json:"description"`
	// Seed fixes every random draw; --seed overrides it.
	Seed uint64 `yaml:"seed" json:"seed"`
	// Hours is the length of the working day simulated. No task starts
	// after it; tasks still running at its end count as unfinished.
	Hours float64 `yaml:"hours" json:"hours"`
	// StartHourUTC is the wall-clock hour the day starts at, which matters
	// for a daily quota that resets at a fixed hour.
	StartHourUTC float64 `yaml:"start_hour_utc" json:"start_hour_utc"`
	// Region is the AWS region every call goes to.
	Region string `yaml:"region" json:"region"`
	// Accounting is the accounting profile (seed or aws) and burndown table.
	Accounting config.Accounting `yaml:"accounting" json:"accounting"`
	// Windows say how minute and day buckets refill.
	Windows config.Windows `yaml:"windows" json:"windows"`
	// Buckets are the account's quotas, in the shape of `headroom emulate`
	// and `headroom serve` files.
	Buckets []config.Bucket `yaml:"buckets" json:"buckets"`
	// Headroom configures the gateway in the headroom strategy.
	Headroom HeadroomSettings `yaml:"headroom" json:"headroom"`
	// Strategies are compared when the command line names none.
	Strategies []string `yaml:"strategies" json:"strategies"`
	// Team is the number of developers who run Workload unchanged.
	Team int `yaml:"team" json:"team"`
	// Developers are further groups of developers with their own settings,
	// such as one heavy user.
	Developers []DeveloperGroup `yaml:"developers" json:"developers,omitempty"`
	// Workload is what a developer does all day.
	Workload Workload `yaml:"workload" json:"workload"`
}

// HeadroomSettings are the gateway settings the headroom strategy runs with;
// defaults are `headroom serve`'s.
type HeadroomSettings struct {
	MaxTokensCap      int     `yaml:"max_tokens_cap" json:"max_tokens_cap"`
	ThinkingBudgetCap int     `yaml:"thinking_budget_cap" json:"thinking_budget_cap"`
	MaxWaitSeconds    float64 `yaml:"max_wait_seconds" json:"max_wait_seconds"`
	ProtectedFraction float64 `yaml:"protected_fraction" json:"protected_fraction"`
	// Policy overrides the learned output policy of the headroom strategy
	// (headroom-4096 uses MaxTokensCap and ThinkingBudgetCap instead).
	Policy PolicySettings `yaml:"policy" json:"policy"`
}

// DeveloperGroup is Count developers whose workload is the scenario's with
// the fields given in Workload changed.
type DeveloperGroup struct {
	// Name prefixes the developers' names (name-1, name-2, ...; just name
	// when Count is 1).
	Name  string `yaml:"name" json:"name"`
	Count int    `yaml:"count" json:"count"`
	// Weight is the developer key's weight in Headroom's fair share. Default 1.
	Weight float64 `yaml:"weight" json:"weight"`
	// Workload holds only the fields that differ from the scenario's.
	Workload yaml.Node `yaml:"workload" json:"-"`
	// Effective is the group's resolved workload, filled by ParseScenario.
	Effective Workload `yaml:"-" json:"workload"`
}

// Workload is one developer's day of Claude Code work.
type Workload struct {
	// MainModel and SmallModel are the model IDs Claude Code calls
	// (ANTHROPIC_MODEL and ANTHROPIC_SMALL_FAST_MODEL).
	MainModel  string `yaml:"main_model" json:"main_model"`
	SmallModel string `yaml:"small_model" json:"small_model"`
	// MaxToolUseConcurrency is CLAUDE_CODE_MAX_TOOL_USE_CONCURRENCY: the
	// most calls a burst of parallel sub-agents makes at once. Default 10.
	MaxToolUseConcurrency int `yaml:"max_tool_use_concurrency" json:"max_tool_use_concurrency"`
	// MaxRetries is CLAUDE_CODE_MAX_RETRIES: retries of a throttled call
	// before it fails. Default 10.
	MaxRetries int `yaml:"max_retries" json:"max_retries"`
	// PromptCaching is false when DISABLE_PROMPT_CACHING is set. With it,
	// a call re-reads its context from the cache (never charged) and writes
	// only what is new.
	PromptCaching bool `yaml:"prompt_caching" json:"prompt_caching"`
	// TasksPerDay stops a developer after that many tasks; 0 means they
	// work until the day ends.
	TasksPerDay int `yaml:"tasks_per_day" json:"tasks_per_day"`
	// StartWithinMinutes spreads the developers' first task over the
	// first minutes of the day.
	StartWithinMinutes float64 `yaml:"start_within_minutes" json:"start_within_minutes"`
	// TaskGapSeconds is the pause between two tasks.
	TaskGapSeconds Spread `yaml:"task_gap_seconds" json:"task_gap_seconds"`
	// ThinkSeconds is the time between a response and the next call (tool
	// runs, the developer reading).
	ThinkSeconds Spread `yaml:"think_seconds" json:"think_seconds"`
	// CallsPerTask is the length of the agent loop: main-model calls.
	CallsPerTask IntRange `yaml:"calls_per_task" json:"calls_per_task"`
	// InitialContext is the input of a task's first call: system prompt,
	// tools and the request (Claude Code's ~86 KB body is about 20,000).
	InitialContext int `yaml:"initial_context" json:"initial_context"`
	// ContextGrowth is what each step adds to the context (tool results)
	// besides the previous answer.
	ContextGrowth Spread `yaml:"context_growth" json:"context_growth"`
	// ContextLimit caps the context (Claude Code compacts near the model's
	// window).
	ContextLimit int `yaml:"context_limit" json:"context_limit"`
	// Output is the length of an answer the model wants to give.
	Output Spread `yaml:"output" json:"output"`
	// Thinking is extended thinking before the answer.
	Thinking Chance `yaml:"thinking" json:"thinking"`
	// Parallel is a burst of parallel sub-agent calls made instead of one
	// main call.
	Parallel Burst `yaml:"parallel" json:"parallel"`
	// Background is a call on the small model made alongside a step (titles,
	// summaries); its failure does not fail the task.
	Background Background `yaml:"background" json:"background"`
	// MaxTokens is the max_tokens Claude Code asks for when
	// CLAUDE_CODE_MAX_OUTPUT_TOKENS is unset: 32,000 in 2.1.x for Sonnet 4,
	// 128,000 in 2.1.332 for Opus 5.5 (BEDROCK.md sections 4 and 6). Never
	// more than the model allows.
	MaxTokens int `yaml:"max_tokens" json:"max_tokens"`
	// AdaptiveThinking is Claude Code's `thinking: adaptive` (Opus 4.6 and
	// later; always on for Opus 5.5): no thinking budget, so thinking and
	// answer share max_tokens, and a gateway's thinking cap does not apply.
	// Otherwise thinking has budget_tokens max_tokens - 1.
	AdaptiveThinking bool `yaml:"adaptive_thinking" json:"adaptive_thinking"`
	// ToolCalls are the large tool calls (Write, Edit) among the answers.
	ToolCalls ToolCalls `yaml:"tool_calls" json:"tool_calls"`
	// RecoveryTurns is how many times Claude Code asks the model to resume
	// a text answer cut at max_tokens ("Output token limit hit. Resume
	// directly..."): 3 in 2.1.x (BEDROCK.md section 6). If the answer is
	// still cut, the turn fails and its task with it.
	RecoveryTurns int `yaml:"recovery_turns" json:"recovery_turns"`
	// Latency is how fast each model answers.
	Latency Latency `yaml:"latency" json:"latency"`
}

// ToolCalls are the answers that are one large tool call: a Write or an
// Edit whose input is a file's content. Claude Code does not resume such a
// call when max_tokens cuts it mid-JSON: it runs the tool with the unparsed
// input and sends back a tool_result error, and the model repeats the whole
// call (BEDROCK.md section 6). So a call larger than max_tokens never
// completes, and each attempt burns max_tokens of output.
type ToolCalls struct {
	// Probability that a main-model answer is such a call rather than text
	// (or a small tool call: Read, Grep, Bash).
	Probability float64 `yaml:"probability" json:"probability"`
	// Size is the call's input in output tokens.
	Size Pareto `yaml:"size" json:"size"`
	// Retries is how many times the model repeats a cut call before it
	// gives up and the task fails (the emulator's scripted model: 3).
	Retries int `yaml:"retries" json:"retries"`
}

// Chance is something that happens with Probability and then has a size.
type Chance struct {
	Probability float64 `yaml:"probability" json:"probability"`
	Tokens      Spread  `yaml:"tokens" json:"tokens"`
}

// Burst is a step that fans out into parallel calls.
type Burst struct {
	Probability float64  `yaml:"probability" json:"probability"`
	Calls       IntRange `yaml:"calls" json:"calls"`
	// Input is each sub-agent call's input.
	Input int `yaml:"input" json:"input"`
}

// Background is a small-model call that runs beside a step.
type Background struct {
	Probability float64 `yaml:"probability" json:"probability"`
	Input       int     `yaml:"input" json:"input"`
	Output      Spread  `yaml:"output" json:"output"`
}

// Latency is the answer speed of the two models.
type Latency struct {
	Main  Speed `yaml:"main" json:"main"`
	Small Speed `yaml:"small" json:"small"`
	// ThrottleSeconds is how long a 429 takes to come back.
	ThrottleSeconds float64 `yaml:"throttle_seconds" json:"throttle_seconds"`
}

// Speed is a model's time to first token and generation rate.
type Speed struct {
	FirstTokenSeconds float64 `yaml:"first_token_seconds" json:"first_token_seconds"`
	TokensPerSecond   float64 `yaml:"tokens_per_second" json:"tokens_per_second"`
}

// DefaultScenario has every default filled in, no buckets and no team.
func DefaultScenario() Scenario {
	return Scenario{
		Seed:         1,
		Hours:        8,
		StartHourUTC: 9,
		Region:       "us-east-1",
		Accounting:   config.Accounting{Profile: "seed"},
		Windows:      config.DefaultWindows(),
		Headroom: HeadroomSettings{
			MaxTokensCap: 4096, ThinkingBudgetCap: 1024,
			MaxWaitSeconds: 60, ProtectedFraction: 0.5,
		},
		Strategies: []string{"direct-defaults", "direct-4096", "account-per-dev", "headroom-4096", "headroom"},
		Workload:   DefaultWorkload(),
	}
}

// DefaultWorkload is a Claude Code developer with Claude Code's defaults.
func DefaultWorkload() Workload {
	return Workload{
		MainModel:             "us.anthropic.claude-sonnet-4-20250514-v1:0",
		SmallModel:            "us.anthropic.claude-haiku-4-5-20251001-v1:0",
		MaxToolUseConcurrency: 10,
		MaxRetries:            10,
		PromptCaching:         true,
		StartWithinMinutes:    30,
		TaskGapSeconds:        Spread{Median: 300, P95: 1500},
		ThinkSeconds:          Spread{Median: 6, P95: 40, Max: 600},
		CallsPerTask:          IntRange{Min: 20, Max: 30},
		InitialContext:        20000,
		ContextGrowth:         Spread{Median: 1200, P95: 8000, Max: 40000},
		ContextLimit:          160000,
		Output:                Spread{Median: 200, P95: 1500, Max: 32000},
		Thinking:              Chance{Probability: 0.3, Tokens: Spread{Median: 300, P95: 2500, Max: 31999}},
		MaxTokens:             claudeCodeDefault,
		ToolCalls:             DefaultToolCalls(),
		Parallel:              Burst{Probability: 0.05, Calls: IntRange{Min: 2, Max: 10}, Input: 12000},
		Background:            Background{Probability: 0.3, Input: 800, Output: Spread{Median: 30, P95: 200, Max: 2000}},
		RecoveryTurns:         3,
		Latency: Latency{
			Main:            Speed{FirstTokenSeconds: 2, TokensPerSecond: 60},
			Small:           Speed{FirstTokenSeconds: 0.5, TokensPerSecond: 150},
			ThrottleSeconds: 0.1,
		},
	}
}

// DefaultToolCalls is one main-model answer in ten a file write or edit,
// sized by a Pareto law with a minimum of 600 tokens (a 40-line edit) and
// index 1.5, clamped at 30,000 tokens (a 2,500-line file, below Claude
// Code's default 32,000 so that only a lower cap cuts it). Why this shape:
// source file sizes are heavy-tailed, a log-normal body with a power-law
// tail of index 1 to 1.5 in the studies of code bases, and an agent edits
// or rewrites files of every size. It gives a median write of 950 tokens,
// a mean of 1,800, 5.6% of writes above 4,096 tokens and 0.4% above
// 16,000: with about 2.5 writes in a 25-call task, one task in eight has a
// write that a hard 4,096 cap can never let through. These are
// assumptions, not measurements; change them per scenario.
func DefaultToolCalls() ToolCalls {
	return ToolCalls{Probability: 0.1, Size: Pareto{Min: 600, Alpha: 1.5, Max: 30000}, Retries: 3}
}

// LoadScenario reads a scenario file.
func LoadScenario(path string) (Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, fmt.Errorf("read scenario: %w", err)
	}
	return ParseScenario(data)
}

// ParseScenario decodes a scenario over DefaultScenario, resolves the
// developer groups and validates it, reporting every problem at once as a
// config.Problems.
func ParseScenario(data []byte) (Scenario, error) {
	s := DefaultScenario()
	if err := decodeStrict(data, &s); err != nil {
		return Scenario{}, err
	}
	var p []string
	for i := range s.Developers {
		g := &s.Developers[i]
		g.Effective = s.Workload
		if g.Workload.Kind != 0 {
			if err := decodeNode(&g.Workload, &g.Effective); err != nil {
				p = append(p, fmt.Sprintf("developers[%d].workload: %v", i, err))
			}
		}
		if g.Weight == 0 {
			g.Weight = 1
		}
	}
	s.validate(&p)
	if len(p) > 0 {
		return Scenario{}, config.Problems(p)
	}
	return s, nil
}

func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("parse scenario: %w", err)
	}
	return nil
}

// decodeNode decodes a partial workload over a full one, refusing unknown
// fields as the file decoder does.
func decodeNode(n *yaml.Node, w *Workload) error {
	data, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	return decodeStrict(data, w)
}

// Size is the number of developers in the scenario.
func (s *Scenario) Size() int {
	n := s.Team
	for _, g := range s.Developers {
		n += g.Count
	}
	return n
}
