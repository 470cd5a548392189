package admission

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/quota"
)

// The output policy's tests run on a fake clock: every call takes now.

const opus55 = "anthropic.claude-opus-5-5"
const sonnet45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"

func asks(maxTokens int) bedrock.Request {
	return bedrock.Request{MaxTokens: maxTokens, HasMaxTokens: true}
}

// claudeCode is Claude Code 2.1.332's call to Opus 5.5: 128,000 with
// adaptive thinking.
func claudeCode() bedrock.Request {
	r := asks(128000)
	r.Thinking = bedrock.ThinkingAdaptive
	return r
}

func ask(model string, key Key, r bedrock.Request) Ask {
	return Ask{Model: model, Key: key, Req: r, ModelMax: 128000}
}

// observe feeds n uncut answers of the given lengths (cycled) at now.
func observe(p *OutputPolicy, now time.Time, model, key string, lengths ...int) {
	for _, n := range lengths {
		p.Observe(now, Outcome{Model: model, Key: key, Known: true, Output: n, Applied: 128000, Asked: 128000, StopReason: "end_turn"})
	}
}

func repeat(n, v int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestOutputPrior(t *testing.T) {
	p := NewOutputPolicy(mechanismSettings())
	d := p.Decide(t0, ask(opus55, alice, claudeCode()))
	// The Opus 5 prior's p99 is 12,288: the cap is the bucket bound at or
	// above it (buckets are 19% wide).
	if d.MaxTokens < 12288 || d.MaxTokens > 12288*120/100 || d.Reason != ReasonLearned {
		t.Errorf("fresh Opus 5.5: %+v, want about 12,288 (learned)", d)
	}
	if want := fmt.Sprintf("128000->%d (learned p99)", d.MaxTokens); d.Header != want {
		t.Errorf("header %q, want %q", d.Header, want)
	}
	if d.ThinkingBudget != 0 || !d.Changed {
		t.Errorf("adaptive thinking: %+v, want no budget, changed", d)
	}
	s := p.Decide(t0, ask(sonnet45, alice, asks(32000)))
	if s.MaxTokens < 8192 || s.MaxTokens > 8192*120/100 {
		t.Errorf("fresh Sonnet 4.5: %d, want about 8,192", s.MaxTokens)
	}
	// No prior matches: the floor.
	np := mechanismSettings()
	np.Priors = nil
	if d := NewOutputPolicy(np).Decide(t0, ask(opus55, alice, claudeCode())); d.MaxTokens != 4096 || d.Reason != ReasonFloor {
		t.Errorf("no prior: %+v, want the floor", d)
	}
}

func TestOutputLearns(t *testing.T) {
	p := NewOutputPolicy(mechanismSettings())
	// 2,000 answers: most short, 3% of 20,000-token file writes. The
	// model's p99 moves from the prior's 12,288 to above 20,000.
	var lengths []int
	for i := range 2000 {
		n := 300 + i%1500
		if i%33 == 0 {
			n = 20000
		}
		lengths = append(lengths, n)
	}
	observe(p, t0, opus55, "alice", lengths...)
	if got := p.Learned(t0, opus55, "alice"); got < 20000 || got > 24000 {
		t.Errorf("learned %d, want just above 20,000", got)
	}
	// A key of short answers only gets its own, smaller cap once it has
	// KeyMinSamples answers; until then its model's.
	observe(p, t0, opus55, "bob", repeat(99, 200)...)
	if got := p.Learned(t0, opus55, "bob"); got < 20000 {
		t.Errorf("bob with 99 answers: %d, want the model's (>= 20,000)", got)
	}
	observe(p, t0, opus55, "bob", 200)
	if d := p.Decide(t0, ask(opus55, bob, claudeCode())); d.MaxTokens != 4096 || d.Reason != ReasonFloor || d.Header != "128000->4096 (floor)" {
		t.Errorf("bob with 100 short answers: %+v, want the floor", d)
	}
	// Asking less than the cap: the ask, said so.
	if d := p.Decide(t0, ask(opus55, alice, asks(1000))); d.MaxTokens != 1000 || d.Changed || d.Reason != ReasonAsked {
		t.Errorf("small ask: %+v", d)
	}
}

func TestOutputHalfLife(t *testing.T) {
	p := NewOutputPolicy(mechanismSettings())
	observe(p, t0, sonnet45, "alice", repeat(500, 30000)...)
	if got := p.Learned(t0, sonnet45, "alice"); got < 30000 {
		t.Fatalf("learned %d after long answers, want >= 30,000", got)
	}
	// Ten half-lives later, 200 short answers outweigh the 500 long ones
	// (now worth about 0.5).
	later := t0.Add(10 * 24 * time.Hour)
	observe(p, later, sonnet45, "alice", repeat(200, 1000)...)
	if got := p.Learned(later, sonnet45, "alice"); got != 4096 {
		t.Errorf("learned %d, want the floor once old answers faded", got)
	}
	// Without decay the long answers still count.
	s := mechanismSettings()
	s.HalfLife = 0
	q := NewOutputPolicy(s)
	observe(q, t0, sonnet45, "alice", repeat(500, 30000)...)
	observe(q, later, sonnet45, "alice", repeat(200, 1000)...)
	if got := q.Learned(later, sonnet45, "alice"); got < 30000 {
		t.Errorf("no decay: learned %d, want >= 30,000", got)
	}
}

// Cut answers are censored: they count as twice the cap, so a cap that cuts
// more than 1% of answers rises. Counting them at their length (the cap)
// would keep it where it is.
func TestOutputCensored(t *testing.T) {
	s := mechanismSettings()
	s.Priors = nil
	p := NewOutputPolicy(s)
	for i := range 1000 {
		o := Outcome{Model: sonnet45, Key: "alice", Known: true, Output: 500, Applied: 4096, Asked: 32000, StopReason: "end_turn"}
		if i%20 == 0 { // 5% cut at the floor
			o.Output, o.StopReason = 4096, "max_tokens"
		}
		if cut := p.Observe(t0, o); cut != (i%20 == 0) {
			t.Fatalf("answer %d: cut = %v", i, cut)
		}
	}
	if got := p.Learned(t0, sonnet45, "alice"); got < 8192 {
		t.Errorf("learned %d after 5%% cut at 4,096, want >= 8,192", got)
	}
	// A stop at max_tokens that the client asked for is not a cut.
	if (Outcome{Applied: 4096, Asked: 4096, StopReason: "max_tokens"}).Cut() {
		t.Error("the client's own max_tokens counted as a cut")
	}
	// Probes (max_tokens 1) are not learned from: 1,000 of them leave the
	// cap where it was.
	r := NewOutputPolicy(s)
	observe(r, t0, sonnet45, "alice", repeat(100, 6000)...)
	before := r.Learned(t0, sonnet45, "alice")
	for range 1000 {
		r.Observe(t0, Outcome{Model: sonnet45, Key: "alice", Known: true, Output: 1, Applied: 1, Asked: 1, StopReason: "max_tokens"})
	}
	if got := r.Learned(t0, sonnet45, "alice"); got != before || before < 6000 {
		t.Errorf("learned %d after probes, %d before", got, before)
	}
	// Usage not known (client gone): nothing learned.
	q := NewOutputPolicy(s)
	q.Observe(t0, Outcome{Model: sonnet45, Key: "alice", Output: 90000, Applied: 128000, Asked: 128000})
	if got := q.Learned(t0, sonnet45, "alice"); got != 4096 {
		t.Errorf("learned %d from an estimate", got)
	}
}

func TestOutputRoomAndContention(t *testing.T) {
	p := NewOutputPolicy(mechanismSettings())
	costAt := func(rate int64) func(int) int64 {
		return func(mt int) int64 { return 50000 + int64(mt)*rate }
	}
	a := ask(opus55, alice, claudeCode())
	a.Cost = costAt(10)

	// An idle 15M TPM bucket: 10% of it is 1.5M, enough for 128,000 × 10.
	a.Room = Room{Known: true, Available: 15_000_000, FairShare: 15_000_000}
	if d := p.Decide(t0, a); d.MaxTokens != 128000 || d.Reason != ReasonRoom || d.Header != "128000->128000 (room)" {
		t.Errorf("idle: %+v, want the ask (room)", d)
	}
	// Less room: as much as 10% of it allows.
	a.Room.Available = 5_000_000 // 500,000 → (500,000 − 50,000) / 10 = 45,000
	if d := p.Decide(t0, a); d.MaxTokens != 45000 || d.Reason != ReasonRoom {
		t.Errorf("some room: %+v, want 45,000 (room)", d)
	}
	// Room below the learned cap's: the learned cap stays.
	a.Room.Available = 1_500_000
	if d := p.Decide(t0, a); d.Reason != ReasonLearned {
		t.Errorf("little room: %+v, want learned", d)
	}
	// Someone waits: toward the key's fair share (here 100,000 tokens:
	// 5,000 max_tokens), never below the floor.
	a.Room = Room{Known: true, Available: 15_000_000, Waiting: 3, FairShare: 100_000}
	if d := p.Decide(t0, a); d.MaxTokens != 5000 || d.Reason != ReasonContention || !strings.HasSuffix(d.Header, "(contention)") {
		t.Errorf("contention: %+v, want 5,000 (contention)", d)
	}
	a.Room.FairShare = 20_000
	if d := p.Decide(t0, a); d.MaxTokens != 4096 || d.Reason != ReasonContention {
		t.Errorf("contention, tiny share: %+v, want the floor", d)
	}
	// The learned reservation does not fit now: contention too.
	a.Room = Room{Known: true, Available: 60_000, FairShare: 100_000}
	if d := p.Decide(t0, a); d.MaxTokens != 5000 || d.Reason != ReasonContention {
		t.Errorf("no room: %+v, want 5,000 (contention)", d)
	}
	// Turned off.
	s := mechanismSettings()
	s.RoomFraction, s.FairShare = 0, false
	q := NewOutputPolicy(s)
	a.Room = Room{Known: true, Available: 15_000_000, FairShare: 15_000_000}
	if d := q.Decide(t0, a); d.Reason != ReasonLearned {
		t.Errorf("room off: %+v", d)
	}
	a.Room = Room{Known: true, Available: 15_000_000, Waiting: 3, FairShare: 100_000}
	if d := q.Decide(t0, a); d.Reason != ReasonLearned {
		t.Errorf("fair share off: %+v", d)
	}
}

// withToolResults is r answering the tool calls with the given ids.
func withToolResults(r bedrock.Request, ids ...string) bedrock.Request {
	for _, id := range ids {
		r.Last.ToolResults[r.Last.NToolResults] = bedrock.ToolUseKeyString(id)
		r.Last.NToolResults++
	}
	return r
}

// cut is an answer cut by the cap with its last tool call's id.
func cut(model, key, session, toolID string, applied, asked int) Outcome {
	o := Outcome{Model: model, Key: key, Session: session, Known: true, Output: applied,
		Applied: applied, Asked: asked, StopReason: "max_tokens"}
	if toolID != "" {
		o.LastToolUse = bedrock.ToolUseKeyString(toolID)
	}
	return o
}

func TestOutputEscalatesCutToolCall(t *testing.T) {
	s := mechanismSettings()
	s.Priors = nil // learned cap: the floor, 4,096
	p := NewOutputPolicy(s)
	a := ask(sonnet45, alice, asks(32000))
	if d := p.Decide(t0, a); d.MaxTokens != 4096 {
		t.Fatalf("first call: %+v", d)
	}
	if !p.Observe(t0, cut(sonnet45, "alice", "", "toolu_1", 4096, 32000)) {
		t.Fatal("a cut at 4,096 of 32,000 not reported")
	}
	// The retry answers the cut call with a tool_result: 4 × 4,096.
	a.Req = withToolResults(asks(32000), "toolu_0", "toolu_1")
	d := p.Decide(t0.Add(time.Second), a)
	if d.MaxTokens != 16384 || d.Reason != ReasonEscalatedTool || d.Header != "32000->16384 (escalated: cut tool call)" {
		t.Errorf("retry: %+v, want 16,384 (escalated: cut tool call)", d)
	}
	// Cut again (the model retried with a new id): now what was asked.
	p.Observe(t0.Add(2*time.Second), cut(sonnet45, "alice", "", "toolu_2", 16384, 32000))
	a.Req = withToolResults(asks(32000), "toolu_2")
	if d := p.Decide(t0.Add(3*time.Second), a); d.MaxTokens != 32000 || d.Reason != ReasonEscalatedTool {
		t.Errorf("second retry: %+v, want 32,000", d)
	}
	// Any other tool_result: the learned cap (which the cuts raised).
	a.Req = withToolResults(asks(32000), "toolu_9")
	if d := p.Decide(t0.Add(3*time.Second), a); d.Reason.Escalated() {
		t.Errorf("unrelated tool_result escalated: %+v", d)
	}
	// Factor <= 1: straight to the ask.
	s.EscalateFactor = 0
	q := NewOutputPolicy(s)
	q.Observe(t0, cut(sonnet45, "alice", "", "toolu_1", 4096, 32000))
	a.Req = withToolResults(asks(32000), "toolu_1")
	if d := q.Decide(t0, a); d.MaxTokens != 32000 {
		t.Errorf("factor 0: %+v, want the ask", d)
	}
	// In fixed mode nothing escalates, but cuts are still reported.
	s.Mode = ModeFixed
	f := NewOutputPolicy(s)
	if !f.Observe(t0, cut(sonnet45, "alice", "", "toolu_1", 4096, 32000)) {
		t.Error("fixed mode: cut not reported")
	}
	if d := f.Decide(t0, a); d.MaxTokens != 4096 || d.Header != "32000->4096 (fixed)" || d.Reason != ReasonFixed {
		t.Errorf("fixed mode: %+v", d)
	}
}

func TestOutputEscalatesRecoveryTurn(t *testing.T) {
	s := mechanismSettings()
	s.Priors = nil
	p := NewOutputPolicy(s)
	observe(p, t0, sonnet45, "alice", repeat(200, 500)...)
	p.Observe(t0, cut(sonnet45, "alice", "sess-1", "", 8192, 64000))
	a := ask(sonnet45, alice, asks(64000))
	a.Req.Last.Recovery = true
	a.Session = "sess-1"
	if d := p.Decide(t0, a); d.MaxTokens != 32768 || d.Reason != ReasonEscalatedRecovery || d.Header != "64000->32768 (escalated: recovery turn)" {
		t.Errorf("recovery in a session cut at 8,192: %+v, want 32,768", d)
	}
	// Unknown session: from the learned cap.
	a.Session = "sess-2"
	if d := p.Decide(t0, a); d.MaxTokens != 16384 || d.Reason != ReasonEscalatedRecovery {
		t.Errorf("recovery, unknown session: %+v, want 4 × 4,096", d)
	}
	// Without the recovery text, the session alone does not escalate.
	a.Req.Last.Recovery, a.Session = false, "sess-1"
	if d := p.Decide(t0, a); d.Reason.Escalated() {
		t.Errorf("session alone escalated: %+v", d)
	}
}

func TestOutputMemoryBounds(t *testing.T) {
	s := mechanismSettings()
	s.Priors = nil
	s.MaxCuts, s.MaxSessions = 2, 1
	p := NewOutputPolicy(s)
	for i := range 3 {
		p.Observe(t0, cut(sonnet45, "alice", fmt.Sprint("s", i), fmt.Sprint("toolu_", i), 4096, 32000))
	}
	if c, n := p.Len(); c != 2 || n != 1 {
		t.Fatalf("remembered %d cuts, %d sessions; want 2, 1", c, n)
	}
	escalates := func(now time.Time, id string) bool {
		return p.Decide(now, ask(sonnet45, alice, withToolResults(asks(32000), id))).Reason.Escalated()
	}
	if escalates(t0, "toolu_0") || !escalates(t0, "toolu_1") || !escalates(t0, "toolu_2") {
		t.Error("the oldest cut should be forgotten first, the others kept")
	}
	// TTL: 30 minutes.
	if !escalates(t0.Add(30*time.Minute), "toolu_2") {
		t.Error("forgotten before its TTL")
	}
	if escalates(t0.Add(30*time.Minute+time.Second), "toolu_2") {
		t.Error("remembered after its TTL")
	}
	if c, n := p.Len(); c != 0 || n != 0 {
		t.Errorf("after the TTL: %d cuts, %d sessions remembered", c, n)
	}
	// Many puts of one id never grow the memory past its bound.
	for i := range 10000 {
		p.Observe(t0.Add(time.Hour+time.Duration(i)), cut(sonnet45, "alice", "", "toolu_x", 4096, 32000))
	}
	if c, _ := p.Len(); c != 1 || len(p.cuts.order) > 2*2+16+1 {
		t.Errorf("one id put 10,000 times: %d remembered, order %d long", c, len(p.cuts.order))
	}

	// Models and keys: the least recently seen is forgotten.
	s.MaxModels, s.MaxKeys = 2, 2
	q := NewOutputPolicy(s)
	for i, m := range []string{"m1", "m2", "m3"} {
		observe(q, t0.Add(time.Duration(i)*time.Second), m, "alice", 100)
	}
	if len(q.models) != 2 || q.models["m1"] != nil {
		t.Errorf("models kept: %d, m1 kept: %v", len(q.models), q.models["m1"] != nil)
	}
	for i, k := range []string{"a", "b", "c"} {
		observe(q, t0.Add(time.Duration(10+i)*time.Second), "m3", k, 100)
	}
	if ks := q.models["m3"].keys; len(ks) != 2 || ks["alice"] != nil {
		t.Errorf("keys kept: %d", len(ks))
	}
}

func TestOutputThinking(t *testing.T) {
	s := mechanismSettings()
	s.Priors = nil
	p := NewOutputPolicy(s)
	// Enabled thinking, Claude Code's 32,000 / 31,999: the budget stays
	// below the cap (and is not lowered further: max_tokens, not the
	// budget, is what is reserved).
	r := asks(32000)
	r.Thinking, r.ThinkingBudget = bedrock.ThinkingEnabled, 31999
	d := p.Decide(t0, ask(sonnet45, alice, r))
	if d.MaxTokens != 4096 || d.ThinkingBudget != 4095 || d.Header != "32000->4096, thinking 31999->4095 (floor)" {
		t.Errorf("enabled: %+v", d)
	}
	// A budget already below the cap is kept.
	r.ThinkingBudget = 2048
	if d := p.Decide(t0, ask(sonnet45, alice, r)); d.MaxTokens != 4096 || d.ThinkingBudget != 2048 {
		t.Errorf("small budget: %+v", d)
	}
	// A floor under Bedrock's minimum budget: max_tokens grows to the
	// smallest valid request instead.
	s.Floor = 512
	q := NewOutputPolicy(s)
	r.ThinkingBudget = 1024
	if d := q.Decide(t0, ask(sonnet45, alice, r)); d.MaxTokens != 1025 || d.ThinkingBudget != 1024 {
		t.Errorf("floor 512: %+v, want 1,025 / 1,024", d)
	}
	// The learned cap covers thinking: output tokens include it, so a
	// model that thinks long learns a larger cap.
	observe(p, t0, opus55, "alice", repeat(200, 9000)...)
	if d := p.Decide(t0, ask(opus55, alice, claudeCode())); d.MaxTokens < 9000 || d.ThinkingBudget != 0 {
		t.Errorf("adaptive after long thinking: %+v", d)
	}
	// Unset max_tokens: the learned cap, said so.
	if d := p.Decide(t0, ask(sonnet45, alice, bedrock.Request{})); d.MaxTokens != 4096 || d.Header != "unset->4096 (floor)" {
		t.Errorf("unset: %+v", d)
	}
}

func TestOutputKeyCap(t *testing.T) {
	p := NewOutputPolicy(mechanismSettings())
	k := Key{Name: "intern", MaxOutputTokens: 2000}
	a := ask(opus55, k, claudeCode())
	a.Room = Room{Known: true, Available: 1 << 40, FairShare: 1 << 40}
	if d := p.Decide(t0, a); d.MaxTokens != 2000 || d.Reason != ReasonKeyCap {
		t.Errorf("key cap: %+v", d)
	}
}

func TestSketchQuantiles(t *testing.T) {
	var s sketch
	for v := 1; v <= 10000; v++ {
		s.add(t0, 0, float64(v), 1)
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		got, exact := s.quantile(q), int(q*10000)
		if got < exact || float64(got) > float64(exact)*1.2 {
			t.Errorf("quantile(%v) = %d, want within 20%% above %d", q, got, exact)
		}
	}
	for v := 1; v < 1<<21; v = v*3 + 1 {
		if i := sketchBucket(float64(v)); sketchUpper(i) < v && i < sketchBuckets-1 {
			t.Errorf("bucket of %d has upper bound %d", v, sketchUpper(i))
		}
	}
	var e sketch
	if e.quantile(0.99) != 0 {
		t.Error("empty sketch has a quantile")
	}
}

func TestControllerRoom(t *testing.T) {
	c := New(testLedger(), Options{ProtectedFraction: -1})
	r := c.Room(t0, alice, both)
	// tpm 600, tpd 10,000: the least room is 600; alone, alice's share is
	// the smallest limit.
	if r != (Room{Known: true, Available: 600, FairShare: 600}) {
		t.Errorf("idle: %+v", r)
	}
	a := enqueue(t, c, t0, Request{Key: bob, Set: both, Cost: quota.Tokens(400)})
	enqueue(t, c, t0, Request{Key: bob, Set: both, Cost: quota.Tokens(400)}) // waits
	r = c.Room(t0, alice, both)
	if r != (Room{Known: true, Available: 200, Waiting: 1, FairShare: 300}) {
		t.Errorf("bob in flight and waiting: %+v", r)
	}
	// Room only reads: the queue and the ledger are unchanged.
	if st := c.Status(t0); st.Queued != 1 || st.InFlight != 1 || st.Buckets[0].Reserved != 400 {
		t.Errorf("Room changed the controller: %+v", st)
	}
	a.Settle(t0, quota.Tokens(400))

	// Daily protection: the other keys' unused protected shares are not
	// room for alice.
	p := New(testLedger(), Options{ProtectedFraction: 0.5})
	p.SetKeys([]Key{alice, bob})
	if r := p.Room(t0, alice, tpd); r.Available != 10000-2500 {
		t.Errorf("protected: %+v, want 7,500 (bob's 2,500 protected)", r)
	}
	if r := p.Room(t0, carol, tpd); r.Available != 10000-2*1666 {
		t.Errorf("protected, unknown key: %+v, want 6,668", r)
	}
	// No token bucket: no limit.
	if r := c.Room(t0, alice, 0); r.Available < 1<<40 {
		t.Errorf("empty set: %+v", r)
	}
}

// TestOutputDecisionProperties: over random requests, room, history and
// signals, a decision never exceeds what the client asked (nor the model's
// limit), never goes below min(floor, ask) but for a key's own cap, keeps
// an enabled thinking budget valid, and always says why.
func TestOutputDecisionProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 1))
	p := NewOutputPolicy(mechanismSettings())
	models := []string{opus55, sonnet45, "anthropic.claude-haiku-4-5"}
	now := t0
	for i := range 20000 {
		now = now.Add(time.Duration(rng.IntN(int(time.Minute))))
		model := models[rng.IntN(len(models))]
		key := Key{Name: fmt.Sprint("k", rng.IntN(5))}
		if rng.IntN(10) == 0 {
			key.MaxOutputTokens = 1 + rng.IntN(20000)
		}
		modelMax := []int{8192, 64000, 128000}[rng.IntN(3)]
		r := bedrock.Request{}
		if rng.IntN(8) != 0 {
			r.MaxTokens, r.HasMaxTokens = 1+rng.IntN(modelMax), true
		}
		switch rng.IntN(3) {
		case 1:
			r.Thinking = bedrock.ThinkingAdaptive
		case 2:
			if !r.HasMaxTokens || r.MaxTokens > MinThinkingBudget+1 {
				hi := modelMax - 1
				if r.HasMaxTokens {
					hi = r.MaxTokens - 1
				}
				r.Thinking, r.ThinkingBudget = bedrock.ThinkingEnabled, MinThinkingBudget+rng.IntN(hi-MinThinkingBudget+1)
			}
		}
		if rng.IntN(4) == 0 {
			r = withToolResults(r, fmt.Sprint("toolu_", rng.IntN(50)))
		}
		r.Last.Recovery = rng.IntN(10) == 0
		a := Ask{Model: model, Key: key, Req: r, ModelMax: modelMax, Session: fmt.Sprint("s", rng.IntN(20)),
			Cost: func(mt int) int64 { return 20000 + int64(mt)*10 }}
		if rng.IntN(2) == 0 {
			a.Room = Room{Known: true, Available: rng.Int64N(20_000_000), Waiting: rng.IntN(3), FairShare: rng.Int64N(2_000_000)}
		}
		d := p.Decide(now, a)
		asked := modelMax
		if r.HasMaxTokens {
			asked = r.MaxTokens
		}
		lowest := min(p.s.Floor, asked)
		if key.MaxOutputTokens > 0 {
			lowest = min(lowest, key.MaxOutputTokens)
		}
		budgetOK := r.Thinking != bedrock.ThinkingEnabled || d.ThinkingBudget >= MinThinkingBudget && d.ThinkingBudget < d.MaxTokens
		if d.MaxTokens > asked || d.MaxTokens < lowest && !(r.Thinking == bedrock.ThinkingEnabled && d.MaxTokens == d.ThinkingBudget+1) || !budgetOK || !strings.Contains(d.Header, "(") {
			t.Fatalf("step %d: %+v for ask %+v (asked %d)", i, d, a, asked)
		}
		// The answer: sometimes cut at the cap, with a tool call.
		o := Outcome{Model: model, Key: key.Name, Session: a.Session, Known: rng.IntN(10) != 0, Applied: d.MaxTokens, Asked: asked,
			Output: rng.IntN(d.MaxTokens + 1), StopReason: "end_turn"}
		if rng.IntN(5) == 0 {
			o.Output, o.StopReason = d.MaxTokens, "max_tokens"
			o.LastToolUse = bedrock.ToolUseKeyString(fmt.Sprint("toolu_", rng.IntN(50)))
		}
		p.Observe(now, o)
	}
	if c, s := p.Len(); c > p.s.MaxCuts || s > p.s.MaxSessions {
		t.Errorf("memory %d cuts, %d sessions over its bounds", c, s)
	}
}

// mechanismSettings are the defaults with the cap at p99 and the room rule
// on (10% of the room), so the tests above see every mechanism; serve's
// defaults are p95 with the room rule off (README, "The max_tokens policy").
func mechanismSettings() OutputSettings {
	s := DefaultOutputSettings()
	s.Percentile, s.RoomFraction = 0.99, 0.1
	return s
}
