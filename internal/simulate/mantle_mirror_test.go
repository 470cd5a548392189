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

// The differential test of the gateway's mirror of Mantle's ledger
// (BEDROCK.md section 6): quota.Ledger with input-tpm and output-tpm
// buckets, driven as the gateway drives it for a bedrock-mantle upstream,
// against the emulator's own Mantle ledger (emulator.Account.AdmitMantle),
// the same way TestLedgerMirrorsEmulator compares the runtime ledgers.
//
// The gateway's side of one request: Reserve quota.Cost{Input: input +
// cacheWrite + max_tokens} from the model's buckets; once the upstream has
// taken it, Adjust quota.Cost{Input: input + cacheWrite} (Mantle counts
// the input as used at admission and holds only max_tokens); while it
// streams, Adjust with the output so far; Settle at quota.Cost{Input:
// input + cacheWrite, Output: output}. A request the upstream never took
// is cancelled before the input is adjusted, so it leaves nothing.

var mantleMirrorModels = []string{
	"anthropic.claude-opus-4-7",
	"anthropic.claude-sonnet-4-6",
	"anthropic.claude-haiku-4-5-20251001-v1:0",
}

var mantleMirrorScopes = []bedrock.Scope{
	{},
	{Models: []string{"claude-opus-4-7"}},
	{Models: []string{"claude-sonnet-4-6", "claude-haiku-4-5"}},
	{Models: []string{"claude-haiku-4-5"}},
}

// mantlePair is one request both sides admitted.
type mantlePair struct {
	ledger   quota.Reservation
	upstream *emulator.MantleReservation
	usage    bedrock.Usage
}

type mantleMirror struct {
	rng    *rand.Rand
	desc   string
	region string
	models []bedrock.Model
	sets   []quota.Set
	acct   *emulator.Account
	ledger *quota.Ledger
	now    time.Time
	live   []*mantlePair
}

// mantleSet is what a model draws from on Mantle, as the gateway computes
// it for a bedrock-mantle upstream and the emulator matches it: the first
// input-tpm and the first output-tpm bucket whose scope matches.
func mantleSet(buckets []config.Bucket, region string, m bedrock.Model) quota.Set {
	var set quota.Set
	var seen []string
	for i, b := range buckets {
		if !b.Scope.Matches(region, m) || contains(seen, b.Kind) {
			continue
		}
		seen = append(seen, b.Kind)
		set |= quota.Bit(i)
	}
	return set
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func newMantleMirror(t *testing.T, seed uint64) *mantleMirror {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x6d616e746c65))
	m := &mantleMirror{rng: rng, region: "us-west-2"}
	win := config.Windows{
		Minute:          []string{config.MinuteRefill, config.MinuteClock}[rng.IntN(2)],
		Day:             config.DayFixed,
		DayResetHourUTC: rng.IntN(24),
	}
	var buckets []config.Bucket
	for i := range 2 + rng.IntN(4) {
		b := config.Bucket{Name: fmt.Sprintf("m%d", i), Scope: mantleMirrorScopes[rng.IntN(len(mantleMirrorScopes))]}
		if rng.IntN(2) == 0 {
			b.Kind, b.Limit = config.KindInputTPM, 20000+rng.Int64N(300000)
		} else {
			b.Kind, b.Limit = config.KindOutputTPM, 2000+rng.Int64N(60000)
		}
		if rng.IntN(30) == 0 {
			b.Limit = 0 // a new account's applied value
		}
		buckets = append(buckets, b)
	}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
	m.now = start

	cfg := config.DefaultEmulator()
	cfg.Scenario = ""
	cfg.DefaultRegion = m.region
	cfg.Windows = win
	cfg.Regions = []config.EmulatorRegion{{Name: m.region, Mantle: buckets}}
	acct, err := emulator.NewAccount(cfg, start)
	if err != nil {
		t.Fatalf("seed %d: emulator: %v", seed, err)
	}
	m.acct = acct

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
	for _, id := range mantleMirrorModels {
		mod, err := bedrock.ParseModel(id)
		if err != nil {
			t.Fatal(err)
		}
		m.models = append(m.models, mod)
		m.sets = append(m.sets, mantleSet(buckets, m.region, mod))
	}
	m.desc = fmt.Sprintf("seed %d (window %s, buckets %v)", seed, win.Minute, buckets)
	return m
}

// advance moves virtual time on: mostly within seconds, sometimes across
// minutes.
func (m *mantleMirror) advance() {
	var d time.Duration
	switch r := m.rng.IntN(100); {
	case r < 75:
		d = time.Duration(m.rng.Int64N(int64(3 * time.Second)))
	case r < 97:
		d = time.Duration(m.rng.Int64N(int64(time.Minute)))
	default:
		d = time.Duration(m.rng.Int64N(int64(20 * time.Minute)))
	}
	m.now = m.now.Add(d)
}

// demand draws a Claude Code-like Messages request: large inputs, cache
// reads (which Mantle never counts), and max_tokens up to 128,000.
func (m *mantleMirror) demand() bedrock.Demand {
	d := bedrock.Demand{
		InputTokens: 10 + m.rng.IntN(30000),
		MaxTokens:   []int{1, 256, 4096, 8192, 32000, 64000, 128000}[m.rng.IntN(7)],
	}
	if m.rng.IntN(2) == 0 {
		d.CacheWriteTokens = m.rng.IntN(8000)
		d.CacheReadTokens = m.rng.IntN(80000)
	}
	return d
}

// admit offers the same request to both sides.
func (m *mantleMirror) admit(t *testing.T) (verdict, quota.Set, quota.Cost) {
	mi := m.rng.IntN(len(m.models))
	d := m.demand()
	set := m.sets[mi]
	cost := quota.Cost{Input: bedrock.MantleAdmission(d)}
	if want := emulator.MantleCharge(d); cost.Input != want {
		t.Fatalf("%s: the ledger is charged %d, the emulator %d", m.desc, cost.Input, want)
	}
	lr, lerr := m.ledger.Reserve(m.now, set, cost)
	ur, uerr := m.acct.AdmitMantle(m.now, emulator.Call{Region: m.region, Model: m.models[mi], Demand: d})
	var te *emulator.ThrottleError
	if uerr != nil && !errors.As(uerr, &te) {
		t.Fatalf("%s: emulator: %v", m.desc, uerr)
	}
	v := verdict{ledger: lerr == nil, upstream: uerr == nil}
	usage := bedrock.Usage{InputTokens: d.InputTokens, CacheWriteInputTokens: d.CacheWriteTokens, CacheReadInputTokens: d.CacheReadTokens}
	switch {
	case v.ledger && v.upstream:
		// The upstream took it: its input is used from now on.
		lr.Adjust(m.now, quota.Cost{Input: bedrock.MantleInput(usage)})
		m.live = append(m.live, &mantlePair{ledger: lr, upstream: ur, usage: usage})
	case v.ledger:
		lr.Cancel(m.now) // forwarded, throttled upstream: given back
	case v.upstream:
		ur.Settle(m.now, usage)
	}
	return v, set, cost
}

// upstreamWouldAdmit reads the emulator's Mantle state: the input bucket
// has room for the charge and the output bucket is not in debt.
func (m *mantleMirror) upstreamWouldAdmit(set quota.Set, cost quota.Cost) bool {
	for i, b := range m.acct.State(m.now).Regions[0].Mantle {
		if !set.Has(i) {
			continue
		}
		switch b.Kind {
		case config.KindInputTPM:
			if cost.Input > b.Limit-b.Used-b.Reserved {
				return false
			}
		case config.KindOutputTPM:
			if b.Used > b.Limit {
				return false
			}
		}
	}
	return true
}

// cancelled plays a request the gateway reserved and forwarded but the
// upstream never ran: reserved and, up to two seconds later with nothing
// else happening, cancelled before its input was adjusted. The account
// never sees it.
func (m *mantleMirror) cancelled() (verdict, quota.Set, quota.Cost) {
	mi := m.rng.IntN(len(m.models))
	set := m.sets[mi]
	cost := quota.Cost{Input: bedrock.MantleAdmission(m.demand())}
	v := verdict{upstream: m.upstreamWouldAdmit(set, cost)}
	r, err := m.ledger.Reserve(m.now, set, cost)
	v.ledger = err == nil
	m.now = m.now.Add(time.Duration(m.rng.Int64N(int64(2 * time.Second))))
	r.Cancel(m.now)
	return v, set, cost
}

// stream grows a live request's output on both sides: Adjust, or Settle
// with a final count that may fall short of what was adjusted (the final
// count never lowers what was counted, on either side).
func (m *mantleMirror) stream(settle bool) {
	i := m.rng.IntN(len(m.live))
	p := m.live[i]
	p.usage.OutputTokens += m.rng.IntN(6000)
	if settle && m.rng.IntN(8) == 0 {
		p.usage.OutputTokens = m.rng.IntN(p.usage.OutputTokens + 1)
	}
	cost := quota.Cost{Input: bedrock.MantleInput(p.usage), Output: bedrock.MantleOutput(p.usage)}
	if !settle {
		p.ledger.Adjust(m.now, cost)
		p.upstream.Adjust(m.now, p.usage)
		return
	}
	p.ledger.Settle(m.now, cost)
	p.upstream.Settle(m.now, p.usage)
	m.live = append(m.live[:i], m.live[i+1:]...)
}

// compareStates checks what the decisions rest on: every bucket's holds are
// the same on both sides, and its usage the same up to the rounding of the
// emulator's float (both round up to whole tokens).
func (m *mantleMirror) compareStates(t *testing.T, step int) {
	t.Helper()
	ours := m.ledger.Snapshot(m.now)
	for i, b := range m.acct.State(m.now).Regions[0].Mantle {
		o := ours[i]
		if d := o.Used - b.Used; o.Reserved != b.Reserved || d < -1 || d > 1 {
			t.Fatalf("%s, step %d at %v: bucket %s: ledger used %d reserved %d, emulator used %d reserved %d",
				m.desc, step, m.now.Format(time.RFC3339Nano), b.Name, o.Used, o.Reserved, b.Used, b.Reserved)
		}
	}
}

// roundingOnly reports whether a disagreement is the emulator's floating
// point (see TestLedgerMirrorsEmulator): the ledger refuses by one token
// (an input bucket one short, or an output bucket's debt one over).
func (m *mantleMirror) roundingOnly(v verdict, set quota.Set, cost quota.Cost) bool {
	if v.ledger || !v.upstream {
		return false
	}
	for i, b := range m.ledger.Snapshot(m.now) {
		if set.Has(i) && cost.Of(b.Kind) == b.Available+1 {
			return true
		}
	}
	return false
}

// TestMantleLedgerMirrorsEmulator drives quota.Ledger's Mantle buckets and
// the emulator's Mantle ledger with the same random operations (many
// seeds; input-tpm and output-tpm buckets of random scopes and limits,
// zero limits included; both minute windows; admission, streamed output,
// settlement, cancellation and clock steps) and requires the same admit
// or refuse decision at every step, and the same holds and usage.
//
// Tolerance, as for the runtime ledger: the emulator counts usage in
// float64 and lets a charge fit within 1e-6 tokens; the ledger counts
// whole tokens exactly. A disagreement is accepted only where the ledger
// is one token short (the emulator's usage just above a whole number);
// it ends the seed. Any other disagreement fails.
func TestMantleLedgerMirrorsEmulator(t *testing.T) {
	seeds, steps := uint64(300), 400
	if testing.Short() {
		seeds = 60
	}
	var admits, refusals, cancels, rounding, outputRefusals int
	for seed := range seeds {
		m := newMantleMirror(t, seed)
		for step := range steps {
			m.advance()
			var v verdict
			var set quota.Set
			var cost quota.Cost
			op := m.rng.IntN(100)
			switch {
			case op < 30 && len(m.live) > 0:
				m.stream(false)
				continue
			case op < 50 && len(m.live) > 0:
				m.stream(true)
				continue
			case op < 60:
				v, set, cost = m.cancelled()
				cancels++
			default:
				v, set, cost = m.admit(t)
			}
			if v.ledger == v.upstream {
				if v.ledger {
					admits++
				} else {
					refusals++
					var le *quota.LimitError
					if err := m.ledger.Fits(m.now, set, cost); errors.As(err, &le) && le.Kind == quota.OutputTokensPerMinute {
						outputRefusals++
					}
				}
				m.compareStates(t, step)
				continue
			}
			if m.roundingOnly(v, set, cost) {
				rounding++
				t.Logf("%s, step %d: rounding at a boundary (cost %+v)", m.desc, step, cost)
				break
			}
			t.Fatalf("%s, step %d at %v: cost %+v in buckets %b: ledger admits %v, emulator admits %v\nledger: %+v\nemulator: %+v",
				m.desc, step, m.now.Format(time.RFC3339Nano), cost, set, v.ledger, v.upstream,
				m.ledger.Snapshot(m.now), m.acct.State(m.now).Regions[0].Mantle)
		}
		for _, p := range m.live {
			p.ledger.Settle(m.now, quota.Cost{})
			p.upstream.Settle(m.now, p.usage)
		}
	}
	t.Logf("%d seeds: %d requests admitted and %d refused by both (%d by output debt; %d of all these were cancelled: the upstream never ran them), %d rounding differences",
		seeds, admits, refusals, outputRefusals, cancels, rounding)
	if admits < 10*int(seeds) || refusals < 10*int(seeds) || outputRefusals < int(seeds) {
		t.Fatalf("too few admissions (%d), refusals (%d) or refusals by output debt (%d) for the agreement to mean anything", admits, refusals, outputRefusals)
	}
}
