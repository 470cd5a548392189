package simulate

import (
	"math/rand/v2"
	"time"
)

// callKind says which part of Claude Code makes a call.
type callKind uint8

const (
	kindMain       callKind = iota // the agent loop, main model
	kindSub                        // a sub-agent in a parallel burst, main model
	kindBackground                 // a background call on the small model
)

// callPlan is what a call wants before any strategy touches it.
type callPlan struct {
	kind callKind
	// input is the call's context in tokens. For main calls it is filled
	// in when the call is made, from the task's context.
	input int
	// output is the length of the answer the model wants to give and
	// thinking the thinking it wants to do first.
	output   int
	thinking int
	// tool, when positive, makes the answer one large tool call of that
	// many tokens instead of output's text: cut, it cannot be resumed.
	tool int
}

// stepPlan is one turn of the agent loop: one main call, or a burst of
// sub-agent calls, possibly with a background call beside it.
type stepPlan struct {
	growth     int // tokens added to the context before the step
	calls      []callPlan
	background callPlan
	hasBg      bool
	think      time.Duration // pause after the step
}

// taskPlan is one agent task, drawn whole when it starts.
type taskPlan struct {
	steps []stepPlan
	gap   time.Duration // pause after the task, before the next
}

// planner draws a developer's tasks. Each developer has their own stream,
// consumed only here and in the same order whatever the strategy, so task
// k of developer d is the same task in every strategy's run.
type planner struct {
	w   *Workload
	rng *rand.Rand
}

func newPlanner(w *Workload, seed uint64, dev int) *planner {
	return &planner{w: w, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15^uint64(dev)))}
}

// startOffset draws when the developer starts their day.
func (p *planner) startOffset() time.Duration {
	return seconds(p.rng.Float64() * p.w.StartWithinMinutes * 60)
}

// next draws the next task, reusing buf's storage.
func (p *planner) next(buf *taskPlan) {
	w, r := p.w, p.rng
	n := w.CallsPerTask.draw(r)
	steps := buf.steps[:0]
	for i := 0; i < n; i++ {
		var st stepPlan
		if i > 0 {
			st.growth = w.ContextGrowth.drawInt(r, 0)
		}
		if len(steps) < cap(steps) {
			// Reuse the calls slice of the step this one overwrites.
			st.calls = steps[: len(steps)+1 : cap(steps)][len(steps)].calls[:0]
		}
		// The first step is always the main model reading the request.
		if i > 0 && r.Float64() < w.Parallel.Probability {
			k := w.Parallel.Calls.draw(r)
			for j := 0; j < k; j++ {
				st.calls = append(st.calls, p.answer(callPlan{kind: kindSub, input: w.Parallel.Input}))
			}
		} else {
			st.calls = append(st.calls, p.answer(callPlan{kind: kindMain}))
		}
		// Claude Code names the session with the small model when a task
		// starts, beside the first main call.
		if bg := r.Float64() < w.Background.Probability; (i == 0 && w.Background.Probability > 0) || bg {
			st.hasBg = true
			st.background = callPlan{kind: kindBackground, input: w.Background.Input,
				output: w.Background.Output.drawInt(r, 1)}
		}
		st.think = seconds(w.ThinkSeconds.draw(r))
		steps = append(steps, st)
	}
	buf.steps = steps
	buf.gap = seconds(w.TaskGapSeconds.draw(r))
}

// answer draws what a main-model call answers: text (or a small tool
// call), or one large tool call. It always makes the same draws.
func (p *planner) answer(c callPlan) callPlan {
	w, r := p.w, p.rng
	c.output = w.Output.drawInt(r, 1)
	c.thinking = p.thinking()
	isTool := r.Float64() < w.ToolCalls.Probability
	size := w.ToolCalls.Size.drawInt(r)
	if isTool && w.ToolCalls.Probability > 0 {
		c.tool, c.output = size, 0
	}
	return c
}

func (p *planner) thinking() int {
	if p.rng.Float64() >= p.w.Thinking.Probability {
		return 0
	}
	return p.w.Thinking.Tokens.drawInt(p.rng, 0)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
