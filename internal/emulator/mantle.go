package emulator

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
)

// Mantle's ledger: bedrock-mantle's own quotas, separate from the runtime
// buckets of the same region (BEDROCK.md section 6; AWS quotas-mantle.html).
// This is the specification the gateway's mirror follows, so it is written
// out exactly:
//
//   - A model draws from at most two buckets of its region's mantle list:
//     the first input-tpm bucket and the first output-tpm bucket whose scope
//     matches it (list order decides, so "claude-opus-5-5" listed before
//     "claude-opus-5" takes Opus 5.5). No bucket of a kind: not limited by it.
//   - input-tpm. Admission needs C = input + cacheWrite + max_tokens (the
//     model's maximum output when max_tokens is unset); cache reads never
//     count. It is refused unless C <= limit - used - held. When admitted,
//     input + cacheWrite count as used at once (and refill from then on) and
//     max_tokens is held; at the end the hold is given back, so the request
//     settles to input + cacheWrite whatever it generated.
//   - output-tpm. Nothing is taken at admission, but a request is refused
//     while the bucket is in debt: used > limit (used == limit is admitted).
//     Output tokens count as used as they are generated (no burndown), and
//     the count at the end is final. A request refused by either bucket
//     takes nothing from the other.
//   - Both refill as the runtime per-minute buckets do (windows.minute:
//     continuously at limit per 60 s, or reset at every clock minute);
//     windows never shrink what is held. There is no requests-per-minute and
//     no daily bucket.
//   - Queue (mantle.queue.max_wait > 0): a request that does not fit waits up
//     to max_wait, retrying whenever a Mantle request of its region ends or
//     the window has refilled enough, and is refused when the wait is over.
//     A charge larger than the input bucket's limit is refused at once.
//
// The code is its own (the gateway's internal/quota is not used); it reuses
// only the emulator's window arithmetic (bucket.go).

// mantleRegion is one region's Mantle buckets and requests in flight.
type mantleRegion struct {
	name string

	mu       sync.Mutex
	buckets  []*bucket
	matches  map[string]mantlePair // by Model.Base, cached
	inflight map[*MantleReservation]struct{}
	ended    chan struct{} // closed and replaced whenever a request ends: queued requests retry
	queued   int           // requests waiting in the queue
}

// mantlePair is what one model draws from; nil for a kind no bucket covers.
type mantlePair struct{ input, output *bucket }

func newMantleRegion(rc config.EmulatorRegion, w config.Windows, now time.Time) *mantleRegion {
	mr := &mantleRegion{name: rc.Name, matches: map[string]mantlePair{}, inflight: map[*MantleReservation]struct{}{}, ended: make(chan struct{})}
	for _, bc := range rc.Mantle {
		mr.buckets = append(mr.buckets, newBucket(bc, w, now))
	}
	return mr
}

// match returns the buckets model m draws from. Call with mr.mu held.
func (mr *mantleRegion) match(m bedrock.Model) mantlePair {
	if p, ok := mr.matches[m.Base]; ok {
		return p
	}
	var p mantlePair
	for _, b := range mr.buckets {
		if !b.scope.Matches(mr.name, m) {
			continue
		}
		switch {
		case b.kind == config.KindInputTPM && p.input == nil:
			p.input = b
		case b.kind == config.KindOutputTPM && p.output == nil:
			p.output = b
		}
	}
	if len(mr.matches) < maxMatchCache {
		mr.matches[m.Base] = p
	}
	return p
}

// MantleCharge is what a Mantle request needs from its input-tpm bucket at
// admission: input + cacheWrite + max_tokens. Cache reads never count.
func MantleCharge(d bedrock.Demand) int64 {
	return int64(d.InputTokens) + int64(d.CacheWriteTokens) + int64(d.MaxTokens)
}

// AdmitMantle admits c against its region's Mantle buckets, all or nothing:
// it fails with *ThrottleError when the input-tpm bucket cannot take
// MantleCharge(c.Demand) or the output-tpm bucket is in debt, and with
// *UnknownRegionError for a region the account lacks. An admitted request
// must end with Settle.
func (a *Account) AdmitMantle(now time.Time, c Call) (*MantleReservation, error) {
	mr, ok := a.mantle[c.Region]
	if !ok {
		return nil, &UnknownRegionError{Region: c.Region, Served: a.Regions()}
	}
	charge := MantleCharge(c.Demand)
	mr.mu.Lock()
	defer mr.mu.Unlock()
	p := mr.match(c.Model)
	if in := p.input; in != nil {
		in.refresh(now)
		if !in.fits(charge) {
			return nil, mr.refusal(now, in, charge)
		}
	}
	if out := p.output; out != nil {
		out.refresh(now)
		if out.used > float64(out.limit)+epsilon {
			return nil, mr.refusal(now, out, 0)
		}
	}
	r := &MantleReservation{region: mr, call: c, pair: p, admitted: now, input: charge - int64(c.Demand.MaxTokens)}
	if in := p.input; in != nil {
		in.consume(now, r.input)
		r.held = int64(c.Demand.MaxTokens)
		in.reserved += r.held
	}
	mr.inflight[r] = struct{}{}
	return r, nil
}

// refusal describes b refusing a request that needed charge from it (0 for
// an output bucket in debt), with how long the window alone takes to make
// room. Call with mr.mu held, after b.refresh.
func (mr *mantleRegion) refusal(now time.Time, b *bucket, charge int64) *ThrottleError {
	e := &ThrottleError{Region: mr.name, Bucket: b.name, Kind: b.kind, Limit: b.limit, Charge: charge, Available: int64(b.available())}
	// What must drain from used before the request fits; what is held only
	// comes back when its request ends.
	var drain float64
	switch b.kind {
	case config.KindInputTPM:
		if charge > b.limit {
			return e // never fits
		}
		drain = float64(charge) - b.available()
	default:
		drain = b.used - float64(b.limit)
	}
	if drain > b.used+epsilon || b.limit == 0 {
		return e // only an ending request can make room
	}
	switch b.mode {
	case config.MinuteRefill:
		e.Refill = time.Duration(math.Ceil(drain / float64(b.limit) * float64(time.Minute)))
	case config.MinuteClock:
		e.Refill = b.anchor.Add(time.Minute).Sub(now) // the next clock minute empties used
	}
	return e
}

// mantleEnded returns a channel closed when the next Mantle request of
// region ends, or nil for a region the account lacks.
func (a *Account) mantleEnded(region string) <-chan struct{} {
	mr, ok := a.mantle[region]
	if !ok {
		return nil
	}
	mr.mu.Lock()
	defer mr.mu.Unlock()
	return mr.ended
}

// mantleQueued counts a request entering (+1) or leaving (-1) region's
// queue, for State.
func (a *Account) mantleQueued(region string, delta int) {
	if mr, ok := a.mantle[region]; ok {
		mr.mu.Lock()
		mr.queued += delta
		mr.mu.Unlock()
	}
}

// MantleReservation is one admitted Mantle request. It ends exactly once,
// by Settle; later calls do nothing. Safe for use from the request's
// goroutine while State runs elsewhere.
type MantleReservation struct {
	region   *mantleRegion
	call     Call
	pair     mantlePair
	admitted time.Time

	// Guarded by region.mu.
	input   int64 // input + cacheWrite, counted at admission
	held    int64 // max_tokens, held in the input bucket until the end
	output  int64 // output tokens counted so far
	done    bool
	phantom bool // held by the saturated scenario's other client
}

// Admission is what the request took from its input bucket at admission.
func (r *MantleReservation) Admission() int64 { return r.input + int64(r.call.Demand.MaxTokens) }

// Adjust counts the output generated so far (u.OutputTokens) against the
// output bucket. Output never shrinks: a smaller count does nothing.
func (r *MantleReservation) Adjust(now time.Time, u bedrock.Usage) {
	r.region.mu.Lock()
	defer r.region.mu.Unlock()
	if !r.done {
		r.adjust(now, u)
	}
}

func (r *MantleReservation) adjust(now time.Time, u bedrock.Usage) {
	delta := int64(u.OutputTokens) - r.output
	if delta <= 0 {
		return
	}
	if out := r.pair.output; out != nil {
		out.refresh(now)
		out.consume(now, delta)
	}
	r.output += delta
}

// Settle ends the request with its final usage: the output is counted and
// max_tokens is given back to the input bucket. It returns what the request
// cost the input bucket (input + cacheWrite) and the output bucket.
func (r *MantleReservation) Settle(now time.Time, u bedrock.Usage) (input, output int64) {
	mr := r.region
	mr.mu.Lock()
	defer mr.mu.Unlock()
	if !r.done {
		r.adjust(now, u)
		r.release()
	}
	return r.input, r.output
}

// release gives the hold back and ends r. Call with region.mu held.
func (r *MantleReservation) release() {
	if in := r.pair.input; in != nil {
		in.reserved -= r.held
	}
	r.held, r.done = 0, true
	mr := r.region
	delete(mr.inflight, r)
	close(mr.ended)
	mr.ended = make(chan struct{})
}

// reset empties every Mantle window as of now and ends the phantom
// reservations; requests in flight keep their holds.
func (mr *mantleRegion) reset(now time.Time) {
	mr.mu.Lock()
	defer mr.mu.Unlock()
	for _, b := range mr.buckets {
		b.restart(now)
	}
	for r := range mr.inflight {
		if r.phantom {
			r.release()
		}
	}
}

// saturate plays the saturated scenario on Mantle: another client holds
// every input bucket's whole capacity.
func (mr *mantleRegion) saturate(now time.Time) {
	for _, b := range mr.buckets {
		if b.kind != config.KindInputTPM {
			continue
		}
		r := &MantleReservation{region: mr, pair: mantlePair{input: b}, admitted: now, held: b.limit, phantom: true,
			call: Call{ID: "another-client-of-the-account", Region: mr.name}}
		b.reserved += b.limit
		mr.inflight[r] = struct{}{}
	}
}

// MantleInFlight is a Mantle request in flight, as State shows it.
type MantleInFlight struct {
	ID       string    `json:"id"`
	Model    string    `json:"model"`
	Admitted time.Time `json:"admitted"`
	Input    int64     `json:"input"`  // input + cacheWrite, counted at admission
	Held     int64     `json:"held"`   // max_tokens, held in the input bucket
	Output   int64     `json:"output"` // output tokens counted so far
}

func (mr *mantleRegion) state(now time.Time, rs *RegionState) {
	mr.mu.Lock()
	defer mr.mu.Unlock()
	rs.Mantle, rs.MantleInFlight, rs.MantleQueued = []BucketState{}, []MantleInFlight{}, mr.queued
	for _, b := range mr.buckets {
		rs.Mantle = append(rs.Mantle, b.state(now))
	}
	for r := range mr.inflight {
		rs.MantleInFlight = append(rs.MantleInFlight, MantleInFlight{
			ID: r.call.ID, Model: r.call.Model.ID, Admitted: r.admitted, Input: r.input, Held: r.held, Output: r.output,
		})
	}
	sort.Slice(rs.MantleInFlight, func(i, j int) bool {
		x, y := rs.MantleInFlight[i], rs.MantleInFlight[j]
		if !x.Admitted.Equal(y.Admitted) {
			return x.Admitted.Before(y.Admitted)
		}
		return x.ID < y.ID
	})
}

// mantleMessage is the message of a Mantle refusal. AWS does not publish
// Mantle's wording; these name the quota, as the runtime's messages do.
func mantleMessage(kind string) string {
	if kind == config.KindOutputTPM {
		return "Too many output tokens per minute, please wait before trying again."
	}
	return "Too many input tokens per minute, please wait before trying again."
}
