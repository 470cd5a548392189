package simulate

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
)

// modelInfo is a model as the simulation uses it, resolved once.
type modelInfo struct {
	model    bedrock.Model
	burndown int
	maxOut   int // the model's own output limit
	speed    Speed
	// buckets are the indexes of the scenario's buckets whose scope
	// matches calls to this model.
	buckets []int
}

// developer is one member of the team.
type developer struct {
	idx    int
	name   string
	weight float64
	w      *Workload
	main   *modelInfo
	small  *modelInfo
	plan   *planner
	jitter *rand.Rand // retry jitter: its own stream, so retries never shift the workload
	buf    taskPlan
	task   *task
	tasks  int // tasks started
	// demand is the most tasks the developer starts: their demand for the
	// day, measured in the no-quota run (-1 there: no limit).
	demand int

	completed, failed, client429 int
	// settled is what this developer's calls have cost in each bucket.
	settled []float64
}

// task is one agent task in progress.
type task struct {
	dev     *developer
	num     int // the developer's task number
	start   int64
	step    int
	context int // the main conversation's context in tokens
	cached  int // the part of it already in the prompt cache
	pending int // calls of the current step not finished
	nextSub int // the next burst call to start
	stepOut int // text produced by the current step
	failed  bool
}

// call is one request as the client sees it, across its retries.
type call struct {
	task *task
	dev  *developer
	m    *modelInfo
	plan callPlan
	// cacheRead and cacheWrite split the input when prompt caching is on;
	// plan.input is then only the uncached rest.
	cacheRead, cacheWrite int
	recovery              int    // 0, or n for Claude Code's n-th recovery turn after a cut text answer
	toolRetry             int    // 0, or n for the model's n-th repeat of a cut tool call
	answers               uint64 // the id of the cut tool call this call's tool_result answers (0: none)
	attempt               int    // retries made so far
	id                    uint64 // the call's tool_use id, unique in the run
	firstSent             int64  // when the first attempt was sent
	queuedAt              int64  // when the current attempt reached the front door
	ordinal               int    // the attempt's number among all requests of the run

	// Set by the front door for the attempt in progress.
	maxTokens, budget int   // what Bedrock was asked for
	reserved          int64 // the admission charge at Bedrock
	thinkingOut       int   // thinking generated
	textOut           int   // answer text generated
	truncated         bool
	asked             int // the max_tokens Claude Code asked for
	upstream          upstreamCall
	// The headroom strategy's state of the attempt.
	ticket    *admission.Ticket
	retryReq  admission.Request // queued again after Bedrock throttled the call
	gwAttempt int               // Bedrock throttles of this attempt so far

	// Set on a 429.
	retryAfter  time.Duration
	noRetry     bool
	fromGateway bool
}

// usage is what the call's attempt used, as Bedrock reports it.
func (c *call) usage() bedrock.Usage {
	return bedrock.Usage{
		InputTokens:           c.plan.input,
		OutputTokens:          c.thinkingOut + c.textOut,
		CacheReadInputTokens:  c.cacheRead,
		CacheWriteInputTokens: c.cacheWrite,
	}
}

// demand is what admission sees of the attempt.
func (c *call) demand() bedrock.Demand {
	return bedrock.Demand{InputTokens: c.plan.input, CacheWriteTokens: c.cacheWrite,
		CacheReadTokens: c.cacheRead, MaxTokens: c.maxTokens}
}

// clientLimits are max_tokens and the thinking budget Claude Code sends for
// a call under a strategy: CLAUDE_CODE_MAX_OUTPUT_TOKENS, or the
// workload's default (32,000 for Sonnet 4, 128,000 for Opus 5.5), or the
// model's limit when unset, but no more than the model allows; and a
// thinking budget one below it, as Claude Code 2.1 sends, or none with
// adaptive thinking (budget 0).
func clientLimits(s Strategy, wl *Workload, m *modelInfo) (maxTokens, budget int) {
	switch {
	case s.ClientMaxTokens == clientDefault:
		maxTokens = min(wl.MaxTokens, m.maxOut)
	case s.ClientMaxTokens > 0:
		maxTokens = min(s.ClientMaxTokens, m.maxOut)
	default:
		maxTokens = m.maxOut
	}
	if wl.AdaptiveThinking {
		return maxTokens, 0
	}
	return maxTokens, maxTokens - 1
}

// session is Claude Code's session id for the call: one per task.
func (c *call) session() string { return c.dev.name + "/" + strconv.Itoa(c.task.num) }

// clientAsk is what Claude Code asks for this call under strategy st; it
// records the ask.
func (c *call) clientAsk(st Strategy) (maxTokens, budget int) {
	maxTokens, budget = clientLimits(st, c.dev.w, c.m)
	c.asked = maxTokens
	return maxTokens, budget
}

// generateAt is generate with the call's own thinking mode, recording
// what Bedrock was asked for.
func (c *call) generateAt(maxTokens, budget int) {
	c.maxTokens, c.budget = maxTokens, budget
	c.generate(maxTokens, budget, c.dev.w.AdaptiveThinking && c.plan.kind != kindBackground)
}

// generate decides what the model writes within maxTokens: thinking
// first (up to the budget, or up to maxTokens with adaptive thinking),
// then the answer, text or a tool call, cut at maxTokens (stop_reason
// max_tokens). A cut answer used all of maxTokens.
func (c *call) generate(maxTokens, budget int, adaptive bool) {
	th := 0
	if c.plan.thinking > 0 {
		switch {
		case adaptive:
			th = min(c.plan.thinking, maxTokens)
		case budget > 0:
			th = min(c.plan.thinking, budget, maxTokens-1)
		}
	}
	text := c.plan.output
	if c.plan.tool > 0 {
		text = c.plan.tool
	}
	c.truncated = false
	if th+text > maxTokens {
		text = maxTokens - th
		c.truncated = true
	}
	c.thinkingOut, c.textOut = th, text
}

// latency is how long the attempt's answer takes to stream.
func (c *call) latency() int64 {
	s := c.m.speed
	secs := s.FirstTokenSeconds + float64(c.thinkingOut+c.textOut)/s.TokensPerSecond
	return int64(secs * float64(time.Second))
}
