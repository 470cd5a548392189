package simulate

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/quota"
)

func (s *Scenario) validate(p *[]string) {
	add := func(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }
	if s.Name == "" {
		add("name: required")
	}
	if !(s.Hours > 0 && s.Hours <= 24*7) {
		add("hours: %v is not between 0 and 168", s.Hours)
	}
	if s.StartHourUTC < 0 || s.StartHourUTC >= 24 {
		add("start_hour_utc: %v is not an hour 0-24", s.StartHourUTC)
	}
	if s.Region == "" {
		add("region: required")
	}
	if err := validateConfig(s); err != nil {
		var cp config.Problems
		if errors.As(err, &cp) {
			*p = append(*p, cp...)
		} else {
			add("%v", err)
		}
	}
	if len(s.Buckets) == 0 {
		add("buckets: at least one quota bucket is required")
	}
	if len(s.Buckets) > quota.MaxBuckets {
		add("buckets: %d buckets, at most %d", len(s.Buckets), quota.MaxBuckets)
	}
	h := s.Headroom
	if h.MaxTokensCap < 1 {
		add("headroom.max_tokens_cap: %d must be at least 1", h.MaxTokensCap)
	}
	if h.ThinkingBudgetCap < 1024 {
		add("headroom.thinking_budget_cap: %d must be at least 1024", h.ThinkingBudgetCap)
	}
	if !(h.MaxWaitSeconds > 0) {
		add("headroom.max_wait_seconds: %v must be positive", h.MaxWaitSeconds)
	}
	if !(h.ProtectedFraction >= 0 && h.ProtectedFraction <= 1) {
		add("headroom.protected_fraction: %v is not between 0 and 1", h.ProtectedFraction)
	}
	if pp := h.Policy; pp.Percentile < 0 || pp.Percentile >= 1 || pp.Floor < 0 || pp.EscalationFactor < 0 ||
		pp.RoomFraction != nil && !(*pp.RoomFraction >= 0 && *pp.RoomFraction <= 1) {
		add("headroom.policy: percentile must be in [0, 1), floor and escalation_factor not negative, room_fraction in [0, 1]")
	}
	if _, err := ParseStrategies(strings.Join(s.Strategies, ",")); err != nil {
		add("strategies: %v", err)
	}
	if s.Team < 0 {
		add("team: %d is negative", s.Team)
	}
	if s.Size() < 1 {
		add("team: the scenario has no developers (set team or developers)")
	}
	if s.Size() > 10000 {
		add("team: %d developers is more than 10,000", s.Size())
	}
	s.Workload.validate("workload", p)
	for i, g := range s.Developers {
		at := fmt.Sprintf("developers[%d]", i)
		if g.Name == "" {
			add("%s.name: required", at)
		}
		if g.Count < 1 {
			add("%s.count: %d must be at least 1", at, g.Count)
		}
		if !(g.Weight > 0) || math.IsInf(g.Weight, 0) {
			add("%s.weight: %v must be positive", at, g.Weight)
		}
		g.Effective.validate(at+".workload", p)
	}
}

// validateConfig checks the accounting, windows and buckets with the rules
// `headroom serve` applies, by wrapping them in a one-upstream serve file.
func validateConfig(s *Scenario) error {
	srv := config.DefaultServe()
	srv.Accounting = s.Accounting
	srv.Windows = s.Windows
	srv.Upstreams = []config.Upstream{{Name: "bedrock", Region: s.Region, Buckets: s.Buckets}}
	srv.ApplyDefaults()
	return srv.Validate()
}

func (w *Workload) validate(where string, p *[]string) {
	add := func(format string, args ...any) { *p = append(*p, fmt.Sprintf(where+"."+format, args...)) }
	for _, m := range []struct{ field, id string }{{"main_model", w.MainModel}, {"small_model", w.SmallModel}} {
		if _, err := bedrock.ParseModel(m.id); err != nil {
			add("%s: %v", m.field, err)
		}
	}
	if w.MaxToolUseConcurrency < 1 {
		add("max_tool_use_concurrency: %d must be at least 1", w.MaxToolUseConcurrency)
	}
	if w.MaxRetries < 0 || w.MaxRetries > 100 {
		add("max_retries: %d is not between 0 and 100", w.MaxRetries)
	}
	if w.TasksPerDay < 0 {
		add("tasks_per_day: %d is negative", w.TasksPerDay)
	}
	if w.StartWithinMinutes < 0 {
		add("start_within_minutes: %v is negative", w.StartWithinMinutes)
	}
	w.TaskGapSeconds.validate(where+".task_gap_seconds", p)
	w.ThinkSeconds.validate(where+".think_seconds", p)
	w.CallsPerTask.validate(where+".calls_per_task", 1, p)
	if w.CallsPerTask.Max > 1000 {
		add("calls_per_task.max: %d is more than 1,000", w.CallsPerTask.Max)
	}
	if w.InitialContext < 1 {
		add("initial_context: %d must be at least 1", w.InitialContext)
	}
	w.ContextGrowth.validate(where+".context_growth", p)
	if w.ContextLimit < w.InitialContext {
		add("context_limit: %d is below initial_context %d", w.ContextLimit, w.InitialContext)
	}
	w.Output.validate(where+".output", p)
	if w.Output.Median < 1 {
		add("output.median: %v must be at least 1", w.Output.Median)
	}
	w.Thinking.Tokens.validate(where+".thinking.tokens", p)
	w.Background.Output.validate(where+".background.output", p)
	for _, c := range []struct {
		field string
		v     float64
	}{{"thinking.probability", w.Thinking.Probability}, {"parallel.probability", w.Parallel.Probability}, {"background.probability", w.Background.Probability}} {
		if !(c.v >= 0 && c.v <= 1) {
			add("%s: %v is not between 0 and 1", c.field, c.v)
		}
	}
	if w.Parallel.Probability > 0 {
		w.Parallel.Calls.validate(where+".parallel.calls", 1, p)
		if w.Parallel.Input < 1 {
			add("parallel.input: %d must be at least 1", w.Parallel.Input)
		}
	}
	if w.Background.Probability > 0 && w.Background.Input < 1 {
		add("background.input: %d must be at least 1", w.Background.Input)
	}
	if w.RecoveryTurns < 0 || w.RecoveryTurns > 100 {
		add("recovery_turns: %d is not between 0 and 100", w.RecoveryTurns)
	}
	if w.MaxTokens < 1 {
		add("max_tokens: %d must be at least 1", w.MaxTokens)
	}
	if !(w.ToolCalls.Probability >= 0 && w.ToolCalls.Probability <= 1) {
		add("tool_calls.probability: %v is not between 0 and 1", w.ToolCalls.Probability)
	}
	if w.ToolCalls.Probability > 0 {
		w.ToolCalls.Size.validate(where+".tool_calls.size", p)
	}
	if w.ToolCalls.Retries < 0 || w.ToolCalls.Retries > 100 {
		add("tool_calls.retries: %d is not between 0 and 100", w.ToolCalls.Retries)
	}
	for _, sp := range []struct {
		field string
		v     Speed
	}{{"latency.main", w.Latency.Main}, {"latency.small", w.Latency.Small}} {
		if sp.v.FirstTokenSeconds < 0 || !(sp.v.TokensPerSecond > 0) {
			add("%s: first_token_seconds must not be negative and tokens_per_second must be positive", sp.field)
		}
	}
	if w.Latency.ThrottleSeconds < 0 {
		add("latency.throttle_seconds: %v is negative", w.Latency.ThrottleSeconds)
	}
}
