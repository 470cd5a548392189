package simulate

import (
	"math/rand/v2"
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

	completed, failed, client429 int
	// settled is what this developer's calls have cost in each bucket.
	settled []float64
}

// task is one agent task in progress.
type task struct {
	dev     *developer
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
	continuation          int   // 0 for the first call, n for the n-th follow-up of a truncated answer
	attempt               int   // retries made so far
	firstSent             int64 // when the first attempt was sent
	queuedAt              int64 // when the current attempt reached the front door
	ordinal               int   // the attempt's number among all requests of the run

	// Set by the front door for the attempt in progress.
	maxTokens, budget int   // what Bedrock was asked for
	reserved          int64 // the admission charge at Bedrock
	thinkingOut       int   // thinking generated
	textOut           int   // answer text generated
	truncated         bool
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
// a call under a strategy: CLAUDE_CODE_MAX_OUTPUT_TOKENS (or 32,000) but no
// more than the model allows, and a thinking budget one below it, as
// Claude Code 2.1 sends. maxTokens 0 means unset: Bedrock reserves the
// model's limit.
func clientLimits(s Strategy, m *modelInfo) (maxTokens, budget int) {
	maxTokens = m.maxOut
	if s.ClientMaxTokens > 0 {
		maxTokens = min(s.ClientMaxTokens, m.maxOut)
	}
	return maxTokens, maxTokens - 1
}

// generate decides what the model writes within maxTokens and budget:
// thinking first (up to the budget), then the answer, cut at maxTokens
// (stop_reason max_tokens).
func (c *call) generate(maxTokens, budget int) {
	th := 0
	if c.plan.thinking > 0 && budget > 0 {
		th = min(c.plan.thinking, budget, maxTokens-1)
	}
	text := c.plan.output
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
