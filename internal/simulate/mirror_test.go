package simulate

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/quota"
)

// The differential test of the gateway's mirror: quota.Ledger (the
// gateway's) and emulator.Account (Bedrock as Headroom plays it) are two
// independent implementations of the same accounting, and the headroom
// strategy is only as good as their agreement: a ledger that admits what
// the account refuses forwards calls Bedrock throttles.

// mirrorModels are the models the differential test calls: two burning
// output down at 5 (one through a cross-region profile), one at 1.
var mirrorModels = []string{
	"us.anthropic.claude-sonnet-4-20250514-v1:0",
	"anthropic.claude-haiku-4-5-20251001-v1:0",
	"anthropic.claude-3-5-haiku-20241022-v1:0",
}

// mirrorScopes are the scopes its buckets draw at random.
var mirrorScopes = []bedrock.Scope{
	{},
	{Models: []string{"claude-sonnet-4"}},
	{Models: []string{"claude-haiku-4-5", "claude-3-5"}},
	{Inference: bedrock.InferenceOnDemand},
	{Inference: bedrock.InferenceCrossRegion},
}

// mirrorPair is one request both sides admitted, or (upstream == nil) one
// the ledger reserved for a request the upstream never ran.
type mirrorPair struct {
	model    int
	ledger   quota.Reservation
	upstream *emulator.Reservation
	usage    bedrock.Usage
}

// mirror is one random account configured identically on both sides.
type mirror struct {
	rng     *rand.Rand
	desc    string
	region  string
	profile bedrock.Profile
	models  []bedrock.Model
	burn    []int
	sets    []quota.Set
	acct    *emulator.Account
	ledger  *quota.Ledger
	now     time.Time
	live    []*mirrorPair
}

func newMirror(t *testing.T, seed uint64) *mirror {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x6d6972726f72))
	m := &mirror{rng: rng, region: "us-east-1"}
	win := config.Windows{
		Minute:          []string{config.MinuteRefill, config.MinuteClock}[rng.IntN(2)],
		Day:             []string{config.DayFixed, config.DayRolling}[rng.IntN(2)],
		DayResetHourUTC: rng.IntN(24),
	}
	acc := config.Accounting{Profile: []string{"seed", "aws"}[rng.IntN(2)]}
	var buckets []config.Bucket
	for i := range 2 + rng.IntN(4) {
		b := config.Bucket{Name: fmt.Sprintf("b%d", i), Scope: mirrorScopes[rng.IntN(len(mirrorScopes))]}
		switch rng.IntN(3) {
		case 0:
			b.Kind, b.Limit = config.KindTPM, 20000+rng.Int64N(400000)
		case 1:
			b.Kind, b.Limit = config.KindTPD, 200000+rng.Int64N(3000000)
		default:
			b.Kind, b.Limit = config.KindRPM, 1+rng.Int64N(12)
		}
		buckets = append(buckets, b)
	}
	// Anywhere in the day, at any nanosecond: windows are not aligned to it.
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
	m.now = start

	cfg := config.DefaultEmulator()
	cfg.Scenario = ""
	cfg.DefaultRegion = m.region
	cfg.Accounting = acc
	cfg.Windows = win
	cfg.Regions = []config.EmulatorRegion{{Name: m.region, Buckets: buckets}}
	acct, err := emulator.NewAccount(cfg, start)
	if err != nil {
		t.Fatalf("seed %d: emulator: %v", seed, err)
	}
	m.acct = acct
	m.profile = acct.Profile()

	// The ledger as the gateway builds it from the same configuration.
	specs := make([]quota.BucketSpec, len(buckets))
	for i, b := range buckets {
		k, err := quota.ParseKind(b.Kind)
		if err != nil {
			t.Fatal(err)
		}
		specs[i] = quota.BucketSpec{Name: b.Name, Kind: k, Limit: b.Limit}
	}
	qw, err := quota.ParseWindows(win.Minute, win.Day, win.DayResetHourUTC)
	if err != nil {
		t.Fatal(err)
	}
	m.ledger = quota.NewLedger(specs, qw, start)

	burndown := bedrock.DefaultBurndown()
	for _, id := range mirrorModels {
		mod, err := bedrock.ParseModel(id)
		if err != nil {
			t.Fatal(err)
		}
		var set quota.Set
		for i, b := range buckets {
			if b.Scope.Matches(m.region, mod) {
				set |= quota.Bit(i)
			}
		}
		m.models = append(m.models, mod)
		m.burn = append(m.burn, burndown.Rate(mod))
		m.sets = append(m.sets, set)
	}
	m.desc = fmt.Sprintf("seed %d (%s, windows %s/%s reset %02d:00, buckets %v)", seed, acc.Profile, win.Minute, win.Day, win.DayResetHourUTC, buckets)
	return m
}

// advance moves virtual time on: mostly within a minute, sometimes across
// minutes, now and then across hours (day windows).
func (m *mirror) advance() {
	var d time.Duration
	switch r := m.rng.IntN(100); {
	case r < 70:
		d = time.Duration(m.rng.Int64N(int64(3 * time.Second)))
	case r < 92:
		d = time.Duration(m.rng.Int64N(int64(time.Minute)))
	case r < 99:
		d = time.Duration(m.rng.Int64N(int64(20 * time.Minute)))
	default:
		d = time.Duration(m.rng.Int64N(int64(12 * time.Hour)))
	}
	m.now = m.now.Add(d)
}

// demand draws a Claude Code-like request.
func (m *mirror) demand() bedrock.Demand {
	d := bedrock.Demand{
		InputTokens: 10 + m.rng.IntN(20000),
		MaxTokens:   []int{256, 1024, 4096, 8192, 32000}[m.rng.IntN(5)],
	}
	if m.rng.IntN(2) == 0 {
		d.CacheWriteTokens = m.rng.IntN(8000)
		d.CacheReadTokens = m.rng.IntN(60000)
	}
	return d
}

// verdict is what one side decided about one request.
type verdict struct {
	ledger, upstream bool
}

// admit offers the same request to both sides.
func (m *mirror) admit(t *testing.T) (verdict, quota.Set, int64) {
	mi := m.rng.IntN(len(m.models))
	d := m.demand()
	set := m.sets[mi]
	charge := m.profile.Admission(d, m.burn[mi])
	lr, lerr := m.ledger.Reserve(m.now, set, quota.Tokens(charge))
	ur, uerr := m.acct.Admit(m.now, emulator.Call{Region: m.region, Model: m.models[mi], Demand: d})
	var te *emulator.ThrottleError
	if uerr != nil && !errors.As(uerr, &te) {
		t.Fatalf("%s: emulator: %v", m.desc, uerr)
	}
	if charge != m.acct.Charge(m.models[mi], d) {
		t.Fatalf("%s: the ledger is charged %d, the emulator %d", m.desc, charge, m.acct.Charge(m.models[mi], d))
	}
	v := verdict{ledger: lerr == nil, upstream: uerr == nil}
	switch {
	case v.ledger && v.upstream:
		m.live = append(m.live, &mirrorPair{model: mi, ledger: lr, upstream: ur, usage: bedrock.Usage{InputTokens: d.InputTokens, CacheWriteInputTokens: d.CacheWriteTokens, CacheReadInputTokens: d.CacheReadTokens}})
	case v.ledger:
		lr.Cancel(m.now)
	case v.upstream:
		ur.Settle(m.now, bedrock.Usage{})
	}
	return v, set, charge
}

// upstreamWouldAdmit reads the emulator's state: whether every bucket of
// set has room for charge (one request in requests-per-minute buckets).
// Its Used is rounded up like the ledger's.
func (m *mirror) upstreamWouldAdmit(set quota.Set, charge int64) bool {
	rs := m.acct.State(m.now).Regions[0]
	for i, b := range rs.Buckets {
		need := charge
		if b.Kind == config.KindRPM {
			need = 1
		}
		if set.Has(i) && need > b.Limit-b.Used-b.Reserved {
			return false
		}
	}
	return true
}

// cancelled plays a request the gateway reserved and forwarded but the
// upstream never ran (a 503 or a dropped connection): the ledger reserves
// and, up to two seconds later with nothing else happening, cancels. The
// account never sees it. Both must then be as if it had never been made.
func (m *mirror) cancelled() (verdict, quota.Set, int64) {
	mi := m.rng.IntN(len(m.models))
	set := m.sets[mi]
	charge := m.profile.Admission(m.demand(), m.burn[mi])
	v := verdict{upstream: m.upstreamWouldAdmit(set, charge)}
	r, err := m.ledger.Reserve(m.now, set, quota.Tokens(charge))
	v.ledger = err == nil
	m.now = m.now.Add(time.Duration(m.rng.Int64N(int64(2 * time.Second))))
	r.Cancel(m.now)
	return v, set, charge
}

// stream grows a live request's output on both sides: Adjust, or Settle
// with a final usage that may fall short of what was adjusted.
func (m *mirror) stream(settle bool) {
	i := m.rng.IntN(len(m.live))
	p := m.live[i]
	p.usage.OutputTokens += m.rng.IntN(3000)
	if settle && m.rng.IntN(8) == 0 {
		p.usage.OutputTokens = m.rng.IntN(p.usage.OutputTokens + 1)
	}
	cost := m.profile.Settlement(p.usage, m.burn[p.model])
	if !settle {
		p.ledger.Adjust(m.now, quota.Tokens(cost))
		p.upstream.Adjust(m.now, p.usage)
		return
	}
	p.ledger.Settle(m.now, quota.Tokens(cost))
	p.upstream.Settle(m.now, p.usage)
	m.live = append(m.live[:i], m.live[i+1:]...)
}

// compareStates checks what the decisions rest on: every bucket's holds
// are the same on both sides, and its usage the same up to the rounding
// of the emulator's float (both round up to whole tokens).
func (m *mirror) compareStates(t *testing.T, step int) {
	t.Helper()
	ours := m.ledger.Snapshot(m.now)
	for i, b := range m.acct.State(m.now).Regions[0].Buckets {
		o := ours[i]
		if d := o.Used - b.Used; o.Reserved != b.Reserved || d < -1 || d > 1 {
			t.Fatalf("%s, step %d at %v: bucket %s: ledger used %d reserved %d, emulator used %d reserved %d",
				m.desc, step, m.now.Format(time.RFC3339Nano), b.Name, o.Used, o.Reserved, b.Used, b.Reserved)
		}
	}
}

// roundingOnly reports whether a disagreement about charge in set is the
// emulator's floating point: it counts usage in float64 and lets a charge
// fit within 1e-6 tokens, so where its usage lies just above a whole number
// it has room for one token more than the ledger, which counts exactly.
func (m *mirror) roundingOnly(v verdict, set quota.Set, charge int64) bool {
	if v.ledger || !v.upstream {
		return false
	}
	for i, b := range m.ledger.Snapshot(m.now) {
		need := charge
		if b.Kind == quota.RequestsPerMinute {
			need = 1
		}
		if set.Has(i) && need == b.Available+1 {
			return true
		}
	}
	return false
}

// TestLedgerMirrorsEmulator drives quota.Ledger and emulator.Account with
// the same random operations (many seeds; tokens-per-minute, tokens-per-day
// and requests-per-minute buckets of random scopes and limits; every
// window mode; both accounting profiles; reserve, adjust, settle and
// cancel at increasing virtual times) and requires the same admit or
// refuse decision at every step.
//
// Tolerance: the emulator counts usage in float64 and admits a charge
// within 1e-6 tokens of the room left; the ledger counts in exact integers
// with the fraction of a drained token carried. They may disagree only
// where the emulator's usage lies within 1e-6 above a whole number (it
// then has room for one more token): such a step is accepted and ends the
// seed, whose two states now differ by one request. No such step is
// expected in practice (it needs a decision within a nanosecond or so of
// the boundary); any other disagreement fails.
func TestLedgerMirrorsEmulator(t *testing.T) {
	seeds, steps := uint64(300), 400
	if testing.Short() {
		seeds = 60
	}
	var admits, refusals, cancels, rounding int
	for seed := range seeds {
		m := newMirror(t, seed)
		for step := range steps {
			m.advance()
			var v verdict
			var set quota.Set
			var charge int64
			op := m.rng.IntN(100)
			switch {
			case op < 25 && len(m.live) > 0:
				m.stream(false)
				continue
			case op < 50 && len(m.live) > 0:
				m.stream(true)
				continue
			case op < 60:
				v, set, charge = m.cancelled()
				cancels++
			default:
				v, set, charge = m.admit(t)
			}
			if v.ledger == v.upstream {
				if v.ledger {
					admits++
				} else {
					refusals++
				}
				m.compareStates(t, step)
				continue
			}
			if m.roundingOnly(v, set, charge) {
				rounding++
				t.Logf("%s, step %d: rounding at a boundary (charge %d)", m.desc, step, charge)
				break
			}
			t.Fatalf("%s, step %d at %v: %d tokens in buckets %b: ledger admits %v, emulator admits %v\nledger: %+v\nemulator: %+v",
				m.desc, step, m.now.Format(time.RFC3339Nano), charge, set, v.ledger, v.upstream,
				m.ledger.Snapshot(m.now), m.acct.State(m.now).Regions[0].Buckets)
		}
		for _, p := range m.live {
			p.ledger.Settle(m.now, quota.Cost{})
			p.upstream.Settle(m.now, p.usage)
		}
	}
	t.Logf("%d seeds: %d requests admitted and %d refused by both (%d of all these were cancelled: the upstream never ran them), %d rounding differences",
		seeds, admits, refusals, cancels, rounding)
	if admits < 10*int(seeds) || refusals < 10*int(seeds) {
		t.Fatalf("too few admissions (%d) or refusals (%d) for the agreement to mean anything", admits, refusals)
	}
}
