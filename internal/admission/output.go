package admission

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// The output policy decides the max_tokens a request goes upstream with.
// The fixed mode is Clamp: one hard cap. It keeps reservations small but
// fails Claude Code tasks: an answer longer than the cap is cut, and a tool
// call cut mid-JSON is never run (BEDROCK.md section 6). The learned mode
// keeps reservations small and never lets the cap fail a task:
//
//   - Learn the cap: a quantile (p99) of the output lengths (thinking
//     included) each model and each key produced, from settled usage, never
//     below a floor (4,096) and never above what the client asked or the
//     model allows. A new deployment starts from a prior per model family.
//     An answer the cap cut is censored: its true length is at least the
//     cap, so it counts as CensoredFactor × the cap, which raises the
//     estimate. Learning only from uncut answers would lower it (the long
//     answers it cut never count), and counting a cut answer at the cap
//     would pin the estimate to the cap: both are self-fulfilling.
//   - Quota-aware: when nobody waits and the request's buckets have room,
//     a request keeps more of what it asked (up to RoomFraction of the
//     room); under contention the cap tightens toward the key's fair share
//     of the smallest bucket, never below the floor.
//   - Grow when cut: the call after a cut gets a larger cap (EscalateFactor
//     × the cap that cut it, up to what the client asked). The signals are
//     a tool_result for a tool call this policy's cap cut (the ids are
//     remembered, bounded, with a TTL) and Claude Code's recovery turn
//     ("Output token limit hit..."), whose previous cap is remembered per
//     session id.
//
// OutputPolicy takes time as a parameter and reads nothing else, so the
// simulator runs the same code on a virtual clock.

// Output policy modes.
const (
	ModeLearned = "learned"
	ModeFixed   = "fixed"
)

// Prior is the output-length distribution a model starts from, as a
// log-normal given by its median and 99th percentile in tokens.
type Prior struct {
	// Match is a substring of the model's foundation ID; "" matches every
	// model. The first match wins.
	Match  string
	Median int
	P99    int
}

// OutputSettings are every knob of the output policy.
// DefaultOutputSettings documents the defaults.
type OutputSettings struct {
	// Mode is ModeLearned or ModeFixed.
	Mode string
	// Caps returns the fixed mode's max_tokens and thinking-budget caps for
	// a model (nil: Clamp's defaults, 4,096 and 1,024).
	Caps func(model string) (maxTokens, thinkingBudget int)

	// Percentile of the learned distribution used as the cap (0.95).
	Percentile float64
	// Floor is the smallest learned cap, also under contention (4,096).
	Floor int
	// Priors are the distributions models start from, first match wins; a
	// model matching none starts from Floor alone until it has answers.
	Priors []Prior
	// PriorWeight is how many answers the prior counts as (50).
	PriorWeight float64
	// KeyMinSamples is how many answers (decayed weight) a key's own
	// distribution needs before it replaces its model's (100).
	KeyMinSamples float64
	// HalfLife is how fast old answers fade (24 h; 0: never).
	HalfLife time.Duration
	// MaxModels and MaxKeys bound the distributions kept: models, and keys
	// per model; the least recently seen is forgotten first (64, 1,000).
	MaxModels, MaxKeys int
	// CensoredFactor: a cut answer counts as this × the cap it was cut at
	// (2).
	CensoredFactor float64

	// RoomFraction: with nobody waiting, a request may keep max_tokens up
	// to where its reservation is this fraction of the room left in every
	// bucket it draws from (default 0, off: in the simulator a fraction of
	// 0.01 already raised the mean reservation 1.24x in team-50 and 2.2x
	// in heavy-user over p95 alone, and brought 429s back).
	RoomFraction float64
	// FairShare tightens the cap under contention (someone waits, or the
	// learned reservation does not fit now) toward the key's weighted
	// share of the smallest bucket, never below Floor (true).
	FairShare bool

	// EscalateFactor: the call after a cut gets this × the cap that cut
	// it, at most what the client asked; at most 1 means at once what the
	// client asked (4).
	EscalateFactor float64
	// CutTTL is how long a cut tool call's id and a session's last cut are
	// remembered (30 min).
	CutTTL time.Duration
	// MaxCuts and MaxSessions bound those memories; the oldest is
	// forgotten first (10,000 each).
	MaxCuts, MaxSessions int
}

// DefaultOutputSettings is the learned policy with its defaults.
func DefaultOutputSettings() OutputSettings {
	return OutputSettings{
		Mode:       ModeLearned,
		Percentile: 0.95,
		Floor:      4096,
		Priors: []Prior{
			// Opus 5 and later think on every call (adaptive thinking
			// cannot be turned off), and thinking counts as output.
			{Match: "claude-opus-5", Median: 1500, P99: 12288},
			{Match: "", Median: 800, P99: 8192},
		},
		PriorWeight:    50,
		KeyMinSamples:  100,
		HalfLife:       24 * time.Hour,
		MaxModels:      64,
		MaxKeys:        1000,
		CensoredFactor: 2,
		RoomFraction:   0,
		FairShare:      true,
		EscalateFactor: 4,
		CutTTL:         30 * time.Minute,
		MaxCuts:        10000,
		MaxSessions:    10000,
	}
}

// Reason says why a Decision chose its max_tokens.
type Reason uint8

const (
	ReasonFixed             Reason = iota // fixed mode: Clamp
	ReasonLearned                         // the learned percentile
	ReasonFloor                           // the floor, above the learned percentile
	ReasonAsked                           // what the client asked is within the cap
	ReasonRoom                            // more kept: the buckets have room
	ReasonContention                      // tightened toward the key's fair share
	ReasonKeyCap                          // the key's own max output
	ReasonEscalatedTool                   // the call after a cut tool call
	ReasonEscalatedRecovery               // Claude Code's recovery turn after a cut
	reasonCount
)

// Label is the reason's Prometheus label value.
func (r Reason) Label() string {
	return [...]string{"fixed", "learned", "floor", "asked", "room", "contention", "key_cap",
		"escalated_tool", "escalated_recovery"}[r]
}

// Escalated reports whether the reason is a growth after a cut.
func (r Reason) Escalated() bool { return r == ReasonEscalatedTool || r == ReasonEscalatedRecovery }

// Room is what the admission controller knows, before admission, about the
// buckets a request draws from (Controller.Room).
type Room struct {
	// Known is false when no controller was asked (room and contention
	// rules are then off).
	Known bool
	// Available is the least any token bucket of the set could admit now,
	// after the other keys' protected daily shares.
	Available int64
	// Waiting is the number of requests queued at the controller.
	Waiting int
	// FairShare is the key's weighted share, among the keys active now, of
	// the smallest effective limit of the set's token buckets.
	FairShare int64
}

// Ask is one request as the output policy sees it.
type Ask struct {
	Model string // foundation ID (bedrock.Model.Base)
	Key   Key
	Req   bedrock.Request
	// ModelMax is the model's output limit (bedrock.DefaultMaxOutput).
	ModelMax int
	// Cost is the admission charge of the request with a given max_tokens
	// (nil: max_tokens itself). Room and contention are in its units.
	Cost func(maxTokens int) int64
	Room Room
	// Session is Claude Code's X-Claude-Code-Session-Id ("" if none).
	Session string
}

// Decision is the output limit a request goes upstream with, and why.
type Decision struct {
	Clamped
	Reason Reason
	// Learned is the learned cap the decision started from (0 in fixed
	// mode).
	Learned int
}

// Outcome is what a finished request tells the policy.
type Outcome struct {
	Model, Key, Session string
	// Known is set when usage came from the upstream; estimates (a client
	// gone mid-answer) are not learned from.
	Known bool
	// Output is the settled output tokens, thinking included.
	Output int
	// Applied is the max_tokens sent upstream; Asked what the client asked
	// (the model's limit when it asked nothing).
	Applied, Asked int
	StopReason     string
	// LastToolUse is bedrock.ToolUseKey of the id of the answer's last
	// tool_use block (0: none).
	LastToolUse uint64
}

// Cut reports whether the policy's cap cut the answer: it stopped at
// max_tokens while the cap was below what the client asked.
func (o Outcome) Cut() bool {
	return o.Applied < o.Asked && (o.StopReason == "max_tokens" || o.StopReason == "max_tokens_exceeded")
}

// OutputPolicy is the output policy with its learned state. It is safe for
// concurrent use.
type OutputPolicy struct {
	s OutputSettings

	mu       sync.Mutex
	models   map[string]*modelState
	cuts     memo[uint64]
	sessions memo[string]
}

type modelState struct {
	all  sketch
	keys map[string]*sketch
	seen time.Time
}

// NewOutputPolicy returns a policy with settings s (zero fields are not
// defaulted: start from DefaultOutputSettings).
func NewOutputPolicy(s OutputSettings) *OutputPolicy {
	return &OutputPolicy{s: s, models: map[string]*modelState{},
		cuts: newMemo[uint64](s.MaxCuts), sessions: newMemo[string](s.MaxSessions)}
}

// Settings returns the policy's settings.
func (p *OutputPolicy) Settings() OutputSettings { return p.s }

// UsesRoom reports whether Decide reads Ask.Room (the learned mode with
// its room or fair-share rule on), so a caller may skip Controller.Room.
func (p *OutputPolicy) UsesRoom() bool {
	return p.s.Mode != ModeFixed && (p.s.RoomFraction > 0 || p.s.FairShare)
}

// Decide chooses the max_tokens (and thinking budget) for a at now.
func (p *OutputPolicy) Decide(now time.Time, a Ask) Decision {
	if p.s.Mode == ModeFixed {
		var pol Policy
		if p.s.Caps != nil {
			pol.MaxTokensCap, pol.ThinkingBudgetCap = p.s.Caps(a.Model)
		}
		cl := Clamp(pol, a.Key, a.Req, a.ModelMax)
		if cl.Changed {
			cl.Header += " (fixed)"
		}
		return Decision{Clamped: cl, Reason: ReasonFixed}
	}

	ceiling := a.ModelMax
	if ceiling <= 0 {
		ceiling = bedrock.MaxOutputLimit
	}
	if a.Req.HasMaxTokens {
		ceiling = min(ceiling, a.Req.MaxTokens)
	}
	asked := ceiling

	p.mu.Lock()
	learned, q := p.learnedLocked(now, a.Model, a.Key.Name)
	escalated, why := p.escalationLocked(now, a, learned, asked)
	p.mu.Unlock()

	capTo, reason := learned, ReasonLearned
	if q < p.s.Floor {
		reason = ReasonFloor
	}
	switch {
	case escalated > 0:
		capTo, reason = escalated, why
	case a.Room.Known && p.contended(a, learned):
		if p.s.FairShare {
			if share := maxFor(a.Cost, a.Room.FairShare, asked); share < capTo {
				capTo, reason = max(p.s.Floor, share), ReasonContention
			}
		}
	case a.Room.Known && p.s.RoomFraction > 0:
		budget := int64(p.s.RoomFraction * float64(a.Room.Available))
		if room := maxFor(a.Cost, budget, asked); room > capTo {
			capTo, reason = room, ReasonRoom
		}
	}
	if k := a.Key.MaxOutputTokens; k > 0 && k < capTo {
		capTo, reason = k, ReasonKeyCap
	}
	if capTo >= asked {
		capTo = asked
		if reason == ReasonLearned || reason == ReasonFloor {
			reason = ReasonAsked
		}
	}

	out := Clamped{MaxTokens: capTo}
	if a.Req.Thinking == bedrock.ThinkingEnabled {
		// max_tokens bounds thinking plus text: keep the budget below it,
		// never below Bedrock's minimum (then max_tokens grows instead).
		out.ThinkingBudget = a.Req.ThinkingBudget
		if out.ThinkingBudget >= out.MaxTokens && out.ThinkingBudget >= MinThinkingBudget {
			if out.MaxTokens-1 >= MinThinkingBudget {
				out.ThinkingBudget = out.MaxTokens - 1
			} else {
				out.MaxTokens = out.ThinkingBudget + 1
			}
		}
	}
	budgetChanged := a.Req.Thinking == bedrock.ThinkingEnabled && out.ThinkingBudget != a.Req.ThinkingBudget
	out.Changed = !a.Req.HasMaxTokens || out.MaxTokens != a.Req.MaxTokens || budgetChanged
	from := "unset"
	if a.Req.HasMaxTokens {
		from = strconv.Itoa(a.Req.MaxTokens)
	}
	out.Header = from + "->" + strconv.Itoa(out.MaxTokens)
	if budgetChanged {
		out.Header += ", thinking " + strconv.Itoa(a.Req.ThinkingBudget) + "->" + strconv.Itoa(out.ThinkingBudget)
	}
	out.Header += " (" + p.reasonText(reason) + ")"
	return Decision{Clamped: out, Reason: reason, Learned: learned}
}

// reasonText is the reason as the response header says it.
func (p *OutputPolicy) reasonText(r Reason) string {
	switch r {
	case ReasonLearned:
		return "learned " + percentileName(p.s.Percentile)
	case ReasonFloor:
		return "floor"
	case ReasonAsked:
		return "asked, within learned " + percentileName(p.s.Percentile)
	case ReasonRoom:
		return "room"
	case ReasonContention:
		return "contention"
	case ReasonKeyCap:
		return "key cap"
	case ReasonEscalatedTool:
		return "escalated: cut tool call"
	case ReasonEscalatedRecovery:
		return "escalated: recovery turn"
	}
	return "fixed"
}

func percentileName(q float64) string {
	return "p" + strings.TrimSuffix(strconv.FormatFloat(q*100, 'f', 3, 64), ".000")
}

// contended reports contention: someone waits, or the learned cap's
// reservation does not fit the room now.
func (p *OutputPolicy) contended(a Ask, learned int) bool {
	return a.Room.Waiting > 0 || cost(a.Cost, learned) > a.Room.Available
}

func cost(f func(int) int64, maxTokens int) int64 {
	if f == nil {
		return int64(maxTokens)
	}
	return f(maxTokens)
}

// maxFor is the largest max_tokens in [0, limit] whose cost is within
// budget (cost grows with max_tokens; 0 when even 1 does not fit).
func maxFor(f func(int) int64, budget int64, limit int) int {
	lo, hi := 0, limit
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if cost(f, mid) <= budget {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// Learned returns the learned cap for a model and key at now (the floor
// when nothing is known), for status pages and tests.
func (p *OutputPolicy) Learned(now time.Time, model, key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, _ := p.learnedLocked(now, model, key)
	return c
}

// learnedLocked returns the learned cap, max(Floor, q), and q, the
// quantile of the key's distribution (its model's until the key has
// KeyMinSamples answers).
func (p *OutputPolicy) learnedLocked(now time.Time, model, key string) (capTo, q int) {
	ms := p.model(now, model)
	sk := &ms.all
	sk.decay(now, p.s.HalfLife)
	if ks := ms.keys[key]; ks != nil {
		ks.decay(now, p.s.HalfLife)
		if ks.total >= p.s.KeyMinSamples && ks.total > 0 {
			sk = ks
		}
	}
	q = sk.quantile(p.s.Percentile)
	return max(p.s.Floor, q), q
}

// model returns the model's state, creating it from its prior (and
// forgetting the least recently seen model when the table is full).
func (p *OutputPolicy) model(now time.Time, model string) *modelState {
	if ms := p.models[model]; ms != nil {
		return ms
	}
	if p.s.MaxModels > 0 && len(p.models) >= p.s.MaxModels {
		var oldest string
		var at time.Time
		for name, ms := range p.models {
			if oldest == "" || ms.seen.Before(at) {
				oldest, at = name, ms.seen
			}
		}
		delete(p.models, oldest)
	}
	ms := &modelState{keys: map[string]*sketch{}, seen: now}
	ms.all.at = now
	for _, pr := range p.s.Priors {
		if strings.Contains(model, pr.Match) {
			ms.all.fillPrior(pr.Median, pr.P99, p.s.PriorWeight)
			break
		}
	}
	p.models[model] = ms
	return ms
}

// escalationLocked returns the escalated cap for a (0: none) and why.
func (p *OutputPolicy) escalationLocked(now time.Time, a Ask, learned, asked int) (int, Reason) {
	p.cuts.expire(now, p.s.CutTTL)
	p.sessions.expire(now, p.s.CutTTL)
	base, why := 0, Reason(0)
	last := a.Req.Last
	for _, id := range last.ToolResults[:last.NToolResults] {
		if applied, ok := p.cuts.get(id); ok && applied > base {
			base, why = applied, ReasonEscalatedTool
		}
	}
	if base == 0 && last.Recovery {
		// The cap that cut the session's last answer, else (a session not
		// seen, or no session id) the learned cap, which most likely did.
		base, why = learned, ReasonEscalatedRecovery
		if applied, ok := p.sessions.get(a.Session); ok && a.Session != "" {
			base = applied
		}
	}
	if base == 0 {
		return 0, 0
	}
	grown := asked
	if p.s.EscalateFactor > 1 {
		grown = int(min(float64(asked), float64(base)*p.s.EscalateFactor))
	}
	return max(grown, learned), why
}

// Observe learns from a finished request at now and remembers a cut: the
// id of its last tool call and its session. It reports whether the policy's
// cap cut the answer.
func (p *OutputPolicy) Observe(now time.Time, o Outcome) (cut bool) {
	cut = o.Cut()
	if p.s.Mode == ModeFixed {
		return cut
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// A call that asked less than the floor (Claude Code's max_tokens 1
	// probes, short utility calls) is bounded by its own ask and says
	// nothing about what a full turn needs: not learned from.
	if o.Known && o.Output >= 0 && o.Asked >= p.s.Floor {
		v := float64(o.Output)
		if cut {
			v = max(v, float64(o.Applied)) * max(p.s.CensoredFactor, 1)
		}
		ms := p.model(now, o.Model)
		ms.seen = now
		ms.all.add(now, p.s.HalfLife, v, 1)
		ks := ms.keys[o.Key]
		if ks == nil {
			if p.s.MaxKeys > 0 && len(ms.keys) >= p.s.MaxKeys {
				var oldest string
				var at time.Time
				for name, k := range ms.keys {
					if oldest == "" || k.seen.Before(at) {
						oldest, at = name, k.seen
					}
				}
				delete(ms.keys, oldest)
			}
			ks = &sketch{}
			ms.keys[o.Key] = ks
		}
		ks.add(now, p.s.HalfLife, v, 1)
	}
	if cut {
		if o.LastToolUse != 0 {
			p.cuts.put(now, o.LastToolUse, o.Applied)
		}
		if o.Session != "" {
			p.sessions.put(now, o.Session, o.Applied)
		}
	}
	return cut
}

// memo remembers a cap per id, at most max ids, each for a TTL; the oldest
// goes first.
type memo[K comparable] struct {
	max   int
	m     map[K]memoEntry
	order []memoKey[K] // insertion order; stale entries are skipped
	head  int
}

type memoEntry struct {
	applied int
	at      time.Time
}

type memoKey[K comparable] struct {
	k  K
	at time.Time
}

func newMemo[K comparable](max int) memo[K] { return memo[K]{max: max, m: map[K]memoEntry{}} }

func (m *memo[K]) put(now time.Time, k K, applied int) {
	if m.max <= 0 {
		return
	}
	m.m[k] = memoEntry{applied: applied, at: now}
	m.order = append(m.order, memoKey[K]{k, now})
	for len(m.m) > m.max {
		m.pop()
	}
	if live := len(m.order) - m.head; live > 2*m.max+16 || m.head > len(m.order)/2 && m.head > 64 {
		m.compact()
	}
}

func (m *memo[K]) get(k K) (int, bool) {
	e, ok := m.m[k]
	return e.applied, ok
}

// pop forgets the oldest entry in insertion order.
func (m *memo[K]) pop() {
	for m.head < len(m.order) {
		o := m.order[m.head]
		m.head++
		if e, ok := m.m[o.k]; ok && e.at.Equal(o.at) {
			delete(m.m, o.k)
			return
		}
	}
}

// expire forgets the entries older than ttl.
func (m *memo[K]) expire(now time.Time, ttl time.Duration) {
	for ttl > 0 && m.head < len(m.order) && now.Sub(m.order[m.head].at) > ttl {
		o := m.order[m.head]
		m.head++
		if e, ok := m.m[o.k]; ok && e.at.Equal(o.at) {
			delete(m.m, o.k)
		}
	}
}

// compact drops the order's consumed and stale entries.
func (m *memo[K]) compact() {
	kept := make([]memoKey[K], 0, len(m.m))
	for _, o := range m.order[m.head:] {
		if e, ok := m.m[o.k]; ok && e.at.Equal(o.at) {
			kept = append(kept, o)
		}
	}
	m.order, m.head = kept, 0
}

// Len reports how many cut tool calls and sessions are remembered.
func (p *OutputPolicy) Len() (cuts, sessions int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.cuts.m), len(p.sessions.m)
}
