package emulator

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
)

// Account is the quota state of one emulated AWS account: per region, the
// buckets of config.Emulator.Regions and the requests in flight. Every method
// takes the time as a parameter, so a simulator can drive it on a virtual
// clock; it never reads a clock itself. It is safe for concurrent use; each
// region has its own mutex.
type Account struct {
	profile  bedrock.Profile
	burndown bedrock.Burndown
	regions  map[string]*region       // fixed after NewAccount
	mantle   map[string]*mantleRegion // bedrock-mantle's ledger, per region (mantle.go)
	order    []string                 // region names in configuration order
}

type region struct {
	name string

	mu       sync.Mutex
	buckets  []*bucket
	matches  map[matchKey][]*bucket // which buckets a model draws from, cached
	inflight map[*Reservation]struct{}
}

// matchKey is what bedrock.Scope.Matches reads of a model within one region.
type matchKey struct {
	base        string
	crossRegion bool
}

const maxMatchCache = 1024 // distinct models cached per region; beyond, matched each time

// Call is a request as admission sees it.
type Call struct {
	// ID names the request in State (the x-amzn-RequestId).
	ID     string
	Region string
	Model  bedrock.Model
	Demand bedrock.Demand
}

// NewAccount builds the account of cfg, whose scenario is applied, with
// every window starting at now.
func NewAccount(cfg config.Emulator, now time.Time) (*Account, error) {
	cfg = applyScenario(cfg)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p, b, err := cfg.Accounting.ProfileAndBurndown()
	if err != nil {
		return nil, err
	}
	a := &Account{profile: p, burndown: b, regions: map[string]*region{}, mantle: map[string]*mantleRegion{}}
	for _, rc := range cfg.Regions {
		rg := &region{name: rc.Name, matches: map[matchKey][]*bucket{}, inflight: map[*Reservation]struct{}{}}
		for _, bc := range rc.Buckets {
			rg.buckets = append(rg.buckets, newBucket(bc, cfg.Windows, now))
		}
		a.regions[rc.Name] = rg
		a.mantle[rc.Name] = newMantleRegion(rc, cfg.Windows, now)
		a.order = append(a.order, rc.Name)
	}
	if cfg.Scenario == config.ScenarioSaturated {
		a.saturate(now)
	}
	return a, nil
}

// Profile is the accounting profile in force.
func (a *Account) Profile() bedrock.Profile { return a.profile }

// HasRegion reports whether the account serves region.
func (a *Account) HasRegion(name string) bool { _, ok := a.regions[name]; return ok }

// Regions lists the regions served, in configuration order.
func (a *Account) Regions() []string { return slices.Clone(a.order) }

// Charge is what admission reserves for d on model m under the account's
// profile and burndown table.
func (a *Account) Charge(m bedrock.Model, d bedrock.Demand) int64 {
	return a.profile.Admission(d, a.burndown.Rate(m))
}

// Admit reserves the admission charge of c from every bucket of its region
// whose scope matches, all or nothing, and one request from each
// requests-per-minute bucket. It fails with *ThrottleError when any bucket
// cannot take it (a charge larger than a bucket's limit never fits, as on
// Bedrock) and with *UnknownRegionError for a region the account lacks.
// An admitted request must end with Settle.
func (a *Account) Admit(now time.Time, c Call) (*Reservation, error) {
	rg, ok := a.regions[c.Region]
	if !ok {
		return nil, &UnknownRegionError{Region: c.Region, Served: a.Regions()}
	}
	burn := a.burndown.Rate(c.Model)
	cost := a.profile.Admission(c.Demand, burn)

	rg.mu.Lock()
	defer rg.mu.Unlock()
	bs := rg.match(c.Model)
	var refused *bucket
	for _, b := range bs {
		b.refresh(now)
		if !b.fits(chargeFor(b, cost)) && (refused == nil || kindRank(b.kind) < kindRank(refused.kind)) {
			refused = b
		}
	}
	if refused != nil {
		return nil, &ThrottleError{
			Region: rg.name, Bucket: refused.name, Kind: refused.kind,
			Limit: refused.limit, Charge: chargeFor(refused, cost), Available: int64(refused.available()),
		}
	}
	r := &Reservation{region: rg, call: c, burndown: burn, profile: a.profile, admitted: now, admission: cost, held: cost,
		buckets: make([]*bucket, 0, len(bs))}
	for _, b := range bs {
		if b.kind == config.KindRPM {
			b.consume(now, 1)
			continue
		}
		b.reserved += cost
		r.buckets = append(r.buckets, b)
	}
	rg.inflight[r] = struct{}{}
	return r, nil
}

// chargeFor is what a request costs bucket b: its admission charge in
// tokens, or one request.
func chargeFor(b *bucket, cost int64) int64 {
	if b.kind == config.KindRPM {
		return 1
	}
	return cost
}

// kindRank orders the kinds for the message of a request that several
// buckets refuse: the daily limit first, because waiting a minute does not
// lift it (the seed's "Too many tokens per day" on the first request).
func kindRank(kind string) int {
	switch kind {
	case config.KindTPD:
		return 0
	case config.KindTPM:
		return 1
	}
	return 2
}

// match returns the buckets model m draws from. Call with rg.mu held.
func (rg *region) match(m bedrock.Model) []*bucket {
	k := matchKey{m.Base, m.CrossRegion()}
	if bs, ok := rg.matches[k]; ok {
		return bs
	}
	var bs []*bucket
	for _, b := range rg.buckets {
		if b.scope.Matches(rg.name, m) {
			bs = append(bs, b)
		}
	}
	if len(rg.matches) < maxMatchCache {
		rg.matches[k] = bs
	}
	return bs
}

// Reservation is one admitted request's hold on its buckets. It is ended
// exactly once by Settle; further calls do nothing. Methods are safe to call
// from the request's goroutine while State runs elsewhere.
type Reservation struct {
	region   *region
	buckets  []*bucket // the token buckets it holds; requests-per-minute buckets were charged at admission
	call     Call
	profile  bedrock.Profile
	burndown int
	admitted time.Time

	// Guarded by region.mu.
	admission int64 // the admission charge
	held      int64 // still reserved in each bucket
	charged   int64 // counted as used so far
	done      bool
	phantom   bool // held by the saturated scenario's other client
}

// Admission is the charge reserved at admission.
func (r *Reservation) Admission() int64 { return r.admission }

// Adjust moves what usage u (so far) costs from reserved to used: Bedrock's
// "periodically adjusted" charge while a response streams. A charge beyond
// the reservation is counted as used anyway (the final charge can exceed
// the reservation). Usage never shrinks: a smaller u does nothing.
func (r *Reservation) Adjust(now time.Time, u bedrock.Usage) {
	rg := r.region
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if !r.done {
		r.adjust(now, u)
	}
}

func (r *Reservation) adjust(now time.Time, u bedrock.Usage) {
	target := r.profile.Settlement(u, r.burndown)
	delta := target - r.charged
	if delta <= 0 {
		return
	}
	take := min(delta, r.held)
	for _, b := range r.buckets {
		b.refresh(now)
		b.reserved -= take
		b.consume(now, delta)
	}
	r.held -= take
	r.charged = target
}

// Settle ends the request with its final usage u: the settlement charge
// (input + cacheWrite + output × burndown) is counted as used and what is
// left of the reservation is given back. It returns the settlement charge.
func (r *Reservation) Settle(now time.Time, u bedrock.Usage) int64 {
	rg := r.region
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if r.done {
		return r.charged
	}
	r.adjust(now, u)
	r.release()
	return r.charged
}

// release gives back what r still holds and ends it. Call with region.mu held.
func (r *Reservation) release() {
	for _, b := range r.buckets {
		b.reserved -= r.held
	}
	r.held = 0
	r.done = true
	delete(r.region.inflight, r)
}

// Reset empties every bucket's window as of now, as if the account had been
// idle for a day, and ends the saturated scenario's phantom reservations.
// Requests in flight keep theirs.
func (a *Account) Reset(now time.Time) {
	for _, name := range a.order {
		rg := a.regions[name]
		rg.mu.Lock()
		for _, b := range rg.buckets {
			b.restart(now)
		}
		for r := range rg.inflight {
			if r.phantom {
				r.release()
			}
		}
		rg.mu.Unlock()
		a.mantle[name].reset(now)
	}
}

// saturate plays the saturated scenario: another client of the account holds
// every per-minute token bucket's whole capacity, until Reset.
func (a *Account) saturate(now time.Time) {
	for _, name := range a.order {
		rg := a.regions[name]
		for _, b := range rg.buckets {
			if b.kind != config.KindTPM {
				continue
			}
			r := &Reservation{
				region: rg, buckets: []*bucket{b}, admitted: now, admission: b.limit, held: b.limit,
				call: Call{ID: "another-client-of-the-account", Region: name}, phantom: true,
			}
			b.reserved += b.limit
			rg.inflight[r] = struct{}{}
		}
		a.mantle[name].saturate(now)
	}
}

// ThrottleError is a request refused because a bucket could not take it.
type ThrottleError struct {
	Region    string
	Bucket    string
	Kind      string // config.KindTPM, KindTPD, KindRPM, or Mantle's KindInputTPM, KindOutputTPM
	Limit     int64
	Charge    int64 // what the request needed from the bucket (0 for an output-tpm bucket in debt)
	Available int64 // what the bucket had left
	// Refill is, for a Mantle bucket, how long the window alone takes to
	// make room for the request; 0 when only a request ending can (or
	// nothing can: a charge above the limit).
	Refill time.Duration
}

func (e *ThrottleError) Error() string {
	return fmt.Sprintf("bucket %s (%s) in %s: request needs %d, %d of %d available",
		e.Bucket, e.Kind, e.Region, e.Charge, e.Available, e.Limit)
}

// Message is the message Bedrock sends for the bucket kind that refused.
func (e *ThrottleError) Message() string {
	switch e.Kind {
	case config.KindTPD:
		return bedrock.MsgTooManyTokensPerDay
	case config.KindRPM:
		return bedrock.MsgTooManyRequests
	case config.KindInputTPM, config.KindOutputTPM:
		return mantleMessage(e.Kind)
	}
	return bedrock.MsgTooManyTokens
}

// UnknownRegionError is a request for a region the account does not serve.
type UnknownRegionError struct {
	Region string
	Served []string
}

func (e *UnknownRegionError) Error() string {
	return fmt.Sprintf("region %q is not served by this emulator (it serves %v)", e.Region, e.Served)
}

// State is a snapshot of the account, as GET /_emulator/state shows it.
type State struct {
	Profile string        `json:"profile"`
	Regions []RegionState `json:"regions"`
}

// RegionState is one region's buckets and requests in flight.
type RegionState struct {
	Name     string        `json:"name"`
	Buckets  []BucketState `json:"buckets"`
	InFlight []InFlight    `json:"in_flight"`
	// Mantle, MantleInFlight and MantleQueued are the region's
	// bedrock-mantle ledger and the requests waiting in its queue.
	Mantle         []BucketState    `json:"mantle"`
	MantleInFlight []MantleInFlight `json:"mantle_in_flight"`
	MantleQueued   int              `json:"mantle_queued"`
}

// BucketState is one bucket. Used is rounded up to whole tokens; Available
// is Limit - Used - Reserved, at least 0. An output-tpm bucket in debt shows
// Used above Limit.
type BucketState struct {
	Name      string        `json:"name"`
	Kind      string        `json:"kind"`
	Scope     bedrock.Scope `json:"scope"`
	Limit     int64         `json:"limit"`
	Used      int64         `json:"used"`
	Reserved  int64         `json:"reserved"`
	Available int64         `json:"available"`
}

// InFlight is a request that holds a reservation.
type InFlight struct {
	ID        string    `json:"id"`
	Model     string    `json:"model"`
	Admitted  time.Time `json:"admitted"`
	Admission int64     `json:"admission"` // reserved at admission
	Reserved  int64     `json:"reserved"`  // still held
	Charged   int64     `json:"charged"`   // counted as used so far
}

// State returns a snapshot as of now.
func (a *Account) State(now time.Time) State {
	st := State{Profile: a.profile.Name}
	for _, name := range a.order {
		rs := a.regions[name].state(now)
		a.mantle[name].state(now, &rs)
		st.Regions = append(st.Regions, rs)
	}
	return st
}

func (rg *region) state(now time.Time) RegionState {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	rs := RegionState{Name: rg.name, Buckets: []BucketState{}, InFlight: []InFlight{}}
	for _, b := range rg.buckets {
		rs.Buckets = append(rs.Buckets, b.state(now))
	}
	for r := range rg.inflight {
		rs.InFlight = append(rs.InFlight, InFlight{
			ID: r.call.ID, Model: r.call.Model.ID, Admitted: r.admitted,
			Admission: r.admission, Reserved: r.held, Charged: r.charged,
		})
	}
	sort.Slice(rs.InFlight, func(i, j int) bool {
		x, y := rs.InFlight[i], rs.InFlight[j]
		if !x.Admitted.Equal(y.Admitted) {
			return x.Admitted.Before(y.Admitted)
		}
		return x.ID < y.ID
	})
	return rs
}

// state refreshes b as of now and describes it.
func (b *bucket) state(now time.Time) BucketState {
	b.refresh(now)
	used := int64(math.Ceil(b.used - epsilon))
	return BucketState{
		Name: b.name, Kind: b.kind, Scope: b.scope, Limit: b.limit,
		Used: used, Reserved: b.reserved, Available: max(0, b.limit-used-b.reserved),
	}
}
