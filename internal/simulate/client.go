package simulate

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/headroomhq/headroom/internal/config"
)

// This file is Claude Code as the simulation plays it: the agent loop of a
// task (steps of calls, sub-agent bursts, background calls, think times),
// what it does when max_tokens cuts an answer (recovery turns after cut
// text, the model's repeats of a cut tool call), and the retry rules on 429.

// startTask begins a developer's next task, if the day and their plan
// allow one.
func (w *world) startTask(d *developer) {
	d.task = nil
	if d.w.TasksPerDay > 0 && d.tasks >= d.w.TasksPerDay {
		return
	}
	if d.demand >= 0 && d.tasks >= d.demand {
		return // the developer's demand for the day is done
	}
	d.tasks++
	w.stats.started++
	d.plan.next(&d.buf)
	t := &task{dev: d, num: d.tasks, start: w.now, context: d.w.InitialContext}
	d.task = t
	w.startStep(t)
}

// startStep makes the calls of the task's current step.
func (w *world) startStep(t *task) {
	d := t.dev
	st := &d.buf.steps[t.step]
	t.context = min(t.context+st.growth, d.w.ContextLimit)
	t.stepOut = 0
	if st.calls[0].kind == kindMain {
		t.pending = 1
		p := st.calls[0]
		p.input = t.context
		w.launch(w.newCall(t, d.main, p))
	} else {
		t.pending = len(st.calls)
		t.nextSub = 0
		for t.nextSub < len(st.calls) && t.nextSub < d.w.MaxToolUseConcurrency {
			w.launch(w.newCall(t, d.main, st.calls[t.nextSub]))
			t.nextSub++
		}
	}
	if st.hasBg {
		w.launch(w.newCall(t, d.small, st.background))
	}
}

// newCall prepares a call, splitting its input into cached and uncached
// parts when prompt caching is on. The main conversation re-reads what an
// earlier call of the task cached and writes the rest; a sub-agent writes
// its whole prompt; background calls are not cached.
func (w *world) newCall(t *task, m *modelInfo, p callPlan) *call {
	w.nextID++
	c := &call{task: t, dev: t.dev, m: m, plan: p, id: w.nextID}
	if !t.dev.w.PromptCaching || p.kind == kindBackground {
		return c
	}
	// Claude Code marks the end of the prompt for caching, so all but the
	// newest few tokens are read from or written to the cache.
	const uncached = 10
	total := p.input
	c.plan.input = min(uncached, total)
	rest := total - c.plan.input
	if p.kind == kindMain {
		c.cacheRead = min(t.cached, rest)
		t.cached = total
	}
	c.cacheWrite = rest - c.cacheRead
	return c
}

// launch sends a call's first attempt now.
func (w *world) launch(c *call) {
	c.firstSent = w.now
	w.at(0, event{kind: evSend, call: c})
}

// answer is the front door admitting an attempt: its answer streams for
// the model's latency, then evDone.
func (w *world) answer(c *call, reserved int64) {
	c.reserved = reserved
	s := &w.stats
	s.admitted++
	s.reservedSum += float64(reserved)
	s.queueWait = append(s.queueWait, float64(w.now-c.queuedAt)/float64(time.Second))
	if w.drainMatches(c) {
		s.held += reserved
		s.peakHeld = max(s.peakHeld, s.held)
		s.committedPeak = max(s.committedPeak, s.drainSettled+float64(s.held))
	}
	w.at(c.latency(), event{kind: evDone, call: c})
}

// refuse is the front door answering an attempt with a 429 after the
// usual throttle latency.
func (w *world) refuse(c *call, retryAfter time.Duration, noRetry, fromGateway bool) {
	c.retryAfter, c.noRetry, c.fromGateway = retryAfter, noRetry, fromGateway
	if w.stats.first429 == 0 {
		w.stats.first429 = c.ordinal
	}
	w.at(int64(c.dev.w.Latency.ThrottleSeconds*float64(time.Second)), event{kind: evThrottled, call: c})
}

func (w *world) drainMatches(c *call) bool {
	for _, i := range c.m.buckets {
		if i == w.drain {
			return true
		}
	}
	return false
}

// finished handles a complete answer: accounting, then the agent loop.
func (w *world) finished(c *call) {
	s := &w.stats
	s.calls++
	cost := w.profile.Settlement(c.usage(), c.m.burndown)
	for _, i := range c.m.buckets {
		n := float64(cost)
		if w.sc.Buckets[i].Kind == config.KindRPM {
			n = 1
		}
		c.dev.settled[i] += n
		s.bucketUse[i] += n
	}
	if w.drainMatches(c) {
		s.held -= c.reserved
		s.drainSettled += float64(cost)
		s.committedPeak = max(s.committedPeak, s.drainSettled+float64(s.held))
	}
	if c.truncated {
		s.truncated++
		s.cutOutput += int64(c.thinkingOut + c.textOut)
	}
	t := c.task
	if c.plan.kind == kindBackground || t.failed {
		return
	}
	t.stepOut += c.textOut
	if !c.truncated {
		w.callDone(t)
		return
	}
	wl := c.dev.w
	total := c.plan.input + c.cacheRead + c.cacheWrite
	var next callPlan
	if c.plan.tool > 0 {
		// A tool call cut mid-JSON: Claude Code runs the tool with the
		// unparsed input and sends back a tool_result error; the model
		// repeats the whole call, until it gives up.
		if c.toolRetry >= wl.ToolCalls.Retries {
			s.capFailedTool++
			w.failTask(t)
			return
		}
		next = callPlan{kind: c.plan.kind, tool: c.plan.tool, thinking: c.plan.thinking,
			input: total + c.textOut + toolErrorTokens}
	} else {
		// Cut text: Claude Code's recovery turn asks the model to resume
		// where it was cut, with the cut turn in the conversation, up to
		// RecoveryTurns times; then the turn fails.
		if c.recovery >= wl.RecoveryTurns {
			s.capFailedText++
			w.failTask(t)
			return
		}
		// The model picks up mid-answer: no new thinking (an assumption
		// that favours low caps).
		next = callPlan{kind: c.plan.kind, output: c.plan.output - c.textOut,
			input: total + c.textOut + recoveryPromptTokens}
	}
	nc := w.newCall(t, c.m, next)
	if wl.PromptCaching {
		// The conversation so far is in the cache; the cut turn is new.
		nc.cacheRead = c.cacheRead + c.cacheWrite
		nc.cacheWrite = next.input - nc.cacheRead - nc.plan.input
		if nc.cacheWrite < 0 {
			nc.cacheRead += nc.cacheWrite
			nc.cacheWrite = 0
		}
	}
	if c.plan.tool > 0 {
		nc.toolRetry, nc.answers = c.toolRetry+1, c.id
		s.toolRetries++
	} else {
		nc.recovery = c.recovery + 1
		s.recoveryTurns++
	}
	w.launch(nc)
}

// The tokens Claude Code adds to the conversation after a cut: its
// recovery message, and the tool_result error of a cut tool call
// ("InputValidationError: ... You sent (first 200 of N bytes): ...").
const (
	recoveryPromptTokens = 50
	toolErrorTokens      = 120
)

// callDone counts one finished call of the current step; the last one
// ends the step and starts the think time.
func (w *world) callDone(t *task) {
	d := t.dev
	st := &d.buf.steps[t.step]
	if st.calls[0].kind == kindSub && t.nextSub < len(st.calls) {
		w.launch(w.newCall(t, d.main, st.calls[t.nextSub]))
		t.nextSub++
	}
	t.pending--
	if t.pending > 0 {
		return
	}
	t.context = min(t.context+t.stepOut, d.w.ContextLimit)
	w.at(int64(st.think), event{kind: evStep, task: t})
}

// nextStep moves the task on after the think time.
func (w *world) nextStep(t *task) {
	if t.failed {
		return
	}
	d := t.dev
	t.step++
	if t.step < len(d.buf.steps) {
		w.startStep(t)
		return
	}
	d.task = nil
	d.completed++
	w.stats.completed++
	w.stats.taskTimes = append(w.stats.taskTimes, float64(w.now-t.start)/float64(time.Second))
	w.at(int64(d.buf.gap), event{kind: evTaskStart, dev: d})
}

// throttled is Claude Code receiving a 429: it retries up to MaxRetries
// times, waiting exactly Retry-After when given and a growing backoff
// otherwise, and gives up at once on x-should-retry: false.
func (w *world) throttled(c *call) {
	s := &w.stats
	s.client429++
	c.dev.client429++
	if c.fromGateway {
		s.gateway429++
	}
	// Claude Code gives up at once on x-should-retry: false and on a
	// Retry-After above 60 s (BEDROCK.md section 6).
	if c.noRetry || c.retryAfter > maxRetryAfter || c.attempt >= c.dev.w.MaxRetries {
		switch {
		case c.noRetry:
			s.gaveUpNoRetry++
		case c.retryAfter > maxRetryAfter:
			s.gaveUpRetryAfter++
		}
		w.callFailed(c)
		return
	}
	c.attempt++
	delay := c.retryAfter
	if delay <= 0 {
		delay = backoff(c.attempt, c.dev.jitter)
	}
	w.at(int64(delay), event{kind: evSend, call: c})
}

// maxRetryAfter is the longest Retry-After Claude Code waits for; above
// it, it gives up at once (measured on 2.1.272, BEDROCK.md section 6).
const maxRetryAfter = 60 * time.Second

// backoff is Claude Code's retry delay when no Retry-After is given:
// 500 ms doubling per attempt, capped at 32 s, plus up to 25% jitter. Ten
// retries wait about 160-200 s in all.
func backoff(attempt int, r *rand.Rand) time.Duration {
	base := 500 * time.Millisecond * time.Duration(math.Pow(2, float64(attempt-1)))
	base = min(base, 32*time.Second)
	return base + time.Duration(r.Float64()*0.25*float64(base))
}

// callFailed is a call that failed finally: its task fails, unless it was a
// background call, whose failure Claude Code ignores.
func (w *world) callFailed(c *call) {
	if c.plan.kind == kindBackground {
		w.stats.backgroundFailed++
		return
	}
	if c.task.failed {
		return
	}
	w.failTask(c.task)
}

func (w *world) failTask(t *task) {
	t.failed = true
	t.dev.task = nil
	t.dev.failed++
	w.stats.failed++
	w.at(int64(t.dev.buf.gap), event{kind: evTaskStart, dev: t.dev})
}
