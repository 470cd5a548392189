package redisstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/headroomhq/headroom/internal/quota"
)

// The shared mirror ledger (README, "Replicas on Redis").
//
// Every replica keeps its own quota.Ledger and fair queue as the fast path;
// Redis keeps the one ledger they share, per upstream: its buckets (the
// same arithmetic, ledger.lua), the holds of every replica's requests in
// flight, the AIMD effective limits, each key's fair-order tag and each
// key's tokens today. A request admitted locally then makes one atomic
// reserve in Redis across its buckets (one EVALSHA round trip, Redis's
// clock); its settlement, cancellation and throttles go there too. Each
// reply carries every bucket's global state, which the replica's local
// ledger takes as what the other replicas use (quota.Ledger.SetExternal),
// so the local queue waits for room the others hold instead of trying in
// vain.
//
// Error bound: none for admission. The reserve is atomic across buckets
// and replicas, so the sum of every replica's holds and consumption never
// exceeds what quota.Ledger would allow one process; the replicas' local
// views only decide when to try. The clock is Redis's, so replicas'
// clock skew does not matter. Refill arithmetic is exact for effective
// limits below 150 million tokens per minute (Lua numbers are doubles).

//go:embed ledger.lua
var ledgerLua string

// ledgerScript is immutable: loaded once per Redis with EVALSHA, reloaded
// by go-redis after NOSCRIPT (a Redis restart).
var ledgerScript = redis.NewScript(ledgerLua)

// Outcome is what Redis answered a ledger operation.
type Outcome uint8

const (
	OK     Outcome = iota // done
	Full                  // a bucket lacks room now (the reply's state says which)
	Fair                  // the key is ahead of a key another replica has waiting
	Budget                // the key's daily budget is spent across replicas
	Never                 // the cost exceeds a bucket's limit
	Gone                  // the generation the call counted on is lost (Absorb)
)

func (o Outcome) String() string {
	return [...]string{"ok", "full", "fair", "budget", "never", "gone"}[o]
}

// BucketView is one bucket as every replica together uses it.
type BucketView struct {
	Effective, Used, Reserved int64
}

// Available is what the bucket could admit now, across replicas.
func (b BucketView) Available() int64 { return b.Effective - b.Used - b.Reserved }

// Reply is a ledger operation's outcome and the shared state after it.
type Reply struct {
	Outcome Outcome
	// Gen changes when Redis lost the ledger (a restart without
	// persistence): replicas then re-publish what they hold (Restore).
	Gen string
	// Replicas is how many replicas hold a live lease.
	Replicas int
	// Buckets is every bucket, in ledger order.
	Buckets []BucketView
}

// LedgerOptions configure a Ledger. Upstream and Replica are required.
type LedgerOptions struct {
	// Upstream names the upstream whose quota the buckets mirror; replicas
	// share the ledger of the same name.
	Upstream string
	// Replica identifies this process; it must be unique among the
	// replicas and new at every start.
	Replica string
	// Lease is how long a replica's holds outlive its last call (0: 3 s):
	// the holds of a replica that was killed are settled, at what they
	// hold, by the first call after it ran out.
	Lease time.Duration
	// Backlog is how long a key counts as waiting after a replica last
	// said so (0: 1 s).
	Backlog time.Duration
	// Prefix starts every key (empty: DefaultPrefix). The ledger's keys
	// share one hash tag, {ledger}, so that on Redis Cluster one script
	// reaches all of them.
	Prefix string
	// Clock, when set, replaces Redis's clock (tests).
	Clock func() time.Time
}

// Ledger is the shared ledger of one upstream's buckets in Redis. Its
// methods make one round trip each and are safe for concurrent use.
type Ledger struct {
	rdb   redis.UniversalClient
	opts  LedgerOptions
	n     int
	up    string       // KEYS[1]
	gen   atomic.Value // any(string): the last generation heard
	specs []any        // ARGV 7.. : the bucket count and each bucket's window

	// The arguments every call repeats, converted to any once (a
	// conversion of a string or a large number allocates): the script's
	// hash, KEYS[1], the replica, its lease, the reserve's backlog.
	sha, upArg, replica, lease, backlog any
	cand                                atomic.Value           // any(string): the generation candidate (newGen)
	keyday                              atomic.Pointer[dayKey] // KEYS[2] of the last day
	sets                                sync.Map               // quota.Set -> any(setArg)
	argv                                sync.Pool              // *[]any: a call's arguments
}

// dayKey is the key-day hash of one day, as a call's argument.
type dayKey struct {
	day string
	key any
}

// Hold is a live hold as a replica re-publishes it (Restore).
type Hold struct {
	ID     string
	Set    quota.Set
	Held   quota.Cost
	Key    string
	Tokens int64 // charged to the key
	Weight float64
}

// NewLedger returns the shared ledger of the buckets specs under windows
// w, as quota.NewLedger builds them.
func NewLedger(rdb redis.UniversalClient, specs []quota.BucketSpec, w quota.Windows, opts LedgerOptions) (*Ledger, error) {
	if opts.Upstream == "" || opts.Replica == "" {
		return nil, errors.New("redisstore: a shared ledger needs an upstream and a replica name")
	}
	if strings.ContainsAny(opts.Replica, "|") {
		return nil, fmt.Errorf("redisstore: replica name %q has a '|'", opts.Replica)
	}
	if len(specs) > quota.MaxBuckets {
		return nil, fmt.Errorf("redisstore: %d buckets, at most %d", len(specs), quota.MaxBuckets)
	}
	if opts.Lease <= 0 {
		opts.Lease = 3 * time.Second
	}
	if opts.Backlog <= 0 {
		opts.Backlog = time.Second
	}
	if opts.Prefix == "" {
		opts.Prefix = "headroom:"
	}
	l := &Ledger{rdb: rdb, opts: opts, n: len(specs), up: opts.Prefix + "{ledger}:up:" + opts.Upstream}
	l.sha, l.upArg, l.replica = ledgerScript.Hash(), l.up, opts.Replica
	l.lease, l.backlog = opts.Lease.Microseconds(), opts.Backlog.Microseconds()
	l.cand.Store(any(newGen()))
	l.gen.Store(any(""))
	l.specs = append(l.specs, len(specs))
	for _, s := range specs {
		win, part, period, off := 0, 0, time.Minute, time.Duration(0)
		switch s.Kind {
		case quota.TokensPerDay:
			period = 24 * time.Hour
			win = 1
			off = time.Duration(w.DayResetHour) * time.Hour
			if w.Day == quota.Rolling {
				win, off = 2, 0
			}
		case quota.RequestsPerMinute:
			part = -1
		case quota.InputTokensPerMinute:
			part = 1
		case quota.OutputTokensPerMinute:
			part = 2
		}
		if s.Kind != quota.TokensPerDay && w.Minute == quota.Clock {
			win = 1
		}
		l.specs = append(l.specs, win, part, max(s.Limit, 0), period.Microseconds(), off.Microseconds())
	}
	return l, nil
}

// all is the Set of every bucket.
func (l *Ledger) all() quota.Set { return quota.Set(1)<<uint(l.n) - 1 }

// newGen is a candidate generation: the first call after Redis lost the
// ledger sets it, so it must not repeat. A Ledger offers the same one
// until it is taken or a call fails (call).
func newGen() string { return strconv.FormatUint(rand.Uint64(), 36) }

// Replica is this replica's name.
func (l *Ledger) Replica() string { return l.opts.Replica }

// run calls the script with op and its arguments, on the key-day hash of day.
func (l *Ledger) run(ctx context.Context, op, day string, args ...any) (Reply, error) {
	argv := l.begin(op, day)
	*argv = append(*argv, args...)
	return l.call(ctx, op, argv)
}

// begin returns a call's arguments up to the op's own (which the caller
// appends), in a slice that call gives back. They carry the last
// generation heard: if Redis lost the ledger since, the script admits
// nothing for half a lease while the replicas re-publish (Restore).
func (l *Ledger) begin(op, day string) *[]any {
	argv, _ := l.argv.Get().(*[]any)
	if argv == nil {
		argv = new([]any)
	}
	var now any = 0
	if l.opts.Clock != nil {
		now = l.opts.Clock().UnixMicro()
	}
	*argv = append((*argv)[:0], "evalsha", l.sha, 2, l.upArg, l.dayArg(day),
		op, now, l.replica, l.lease, l.cand.Load(), l.gen.Load())
	*argv = append(*argv, l.specs...)
	return argv
}

// dayArg is the key-day hash of day (KEYS[2]).
func (l *Ledger) dayArg(day string) any {
	if k := l.keyday.Load(); k != nil && k.day == day {
		return k.key
	}
	k := &dayKey{day: day, key: l.opts.Prefix + "{ledger}:keyday:" + day}
	l.keyday.Store(k)
	return k.key
}

// call runs the script with argv (from begin) and gives argv back. The
// command is built here rather than by redis.Script, which copies the
// arguments into a slice of its own; as Script.Run does, it sends the
// script itself after NOSCRIPT (a Redis restarted).
func (l *Ledger) call(ctx context.Context, op string, argv *[]any) (Reply, error) {
	args := *argv
	cmd := redis.NewCmd(ctx, args...)
	cmd.SetFirstKeyPos(3)
	_ = l.rdb.Process(ctx, cmd)
	v, err := cmd.Slice()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		args[0], args[1] = "eval", ledgerLua
		cmd = redis.NewCmd(ctx, args...)
		cmd.SetFirstKeyPos(3)
		_ = l.rdb.Process(ctx, cmd)
		v, err = cmd.Slice()
	}
	clear(args)
	*argv = args[:0]
	l.argv.Put(argv)
	if err != nil {
		// The call may have made its candidate the generation and its
		// reply be lost: the candidate must not be offered again.
		l.cand.Store(any(newGen()))
		return Reply{}, fmt.Errorf("redis ledger %s: %w", op, err)
	}
	r, err := l.parse(v)
	if err != nil {
		return r, err
	}
	if prev, _ := l.gen.Load().(string); prev != r.Gen {
		l.gen.Store(any(r.Gen))
	}
	// The candidate was taken (Redis lost the ledger and this replica's
	// call came first): the next loss needs another one.
	if cand, _ := l.cand.Load().(string); cand == r.Gen {
		l.cand.Store(any(newGen()))
	}
	return r, nil
}

// parse reads a reply: outcome, detail (for a person reading the script's
// replies, e.g. in MONITOR; not parsed), gen, replicas, then eff, used and
// reserved per bucket.
func (l *Ledger) parse(v []any) (Reply, error) {
	if len(v) != 4+3*l.n {
		return Reply{}, fmt.Errorf("redis ledger: reply of %d values for %d buckets", len(v), l.n)
	}
	str := func(x any) string { s, _ := x.(string); return s }
	num := func(x any) int64 {
		switch y := x.(type) {
		case int64:
			return y
		case string:
			n, _ := strconv.ParseInt(y, 10, 64)
			return n
		}
		return 0
	}
	r := Reply{Gen: str(v[2]), Replicas: int(num(v[3])), Buckets: make([]BucketView, l.n)}
	switch str(v[0]) {
	case "ok":
		r.Outcome = OK
	case "full":
		r.Outcome = Full
	case "fair":
		r.Outcome = Fair
	case "budget":
		r.Outcome = Budget
	case "never":
		r.Outcome = Never
	case "gone":
		r.Outcome = Gone
	default:
		return Reply{}, fmt.Errorf("redis ledger: unknown outcome %q", str(v[0]))
	}
	for i := range r.Buckets {
		r.Buckets[i] = BucketView{Effective: num(v[4+3*i]), Used: num(v[5+3*i]), Reserved: num(v[6+3*i])}
	}
	return r, nil
}

// setArg is setArg(s & l.all()), converted to any once per set.
func (l *Ledger) setArg(s quota.Set) any {
	s &= l.all()
	if v, ok := l.sets.Load(s); ok {
		return v
	}
	v := any(setArg(s))
	l.sets.Store(s, v)
	return v
}

func setArg(s quota.Set) string {
	var b strings.Builder
	s.Each(func(i int) {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i))
	})
	return b.String()
}

// ReserveArgs is one request's reserve.
type ReserveArgs struct {
	// ID names the hold; a reserve of an ID already held is OK and changes
	// nothing (a retry after a lost reply).
	ID   string
	Set  quota.Set
	Cost quota.Cost
	// Key is the developer key ("" for none: no fairness, no budget),
	// with its weight (0 means 1) and daily budget (0: none).
	Key         string
	Weight      float64
	DailyTokens int64
	// Day labels the key's day (quota.Ledger.Day).
	Day string
	// Before are operations run first in the same call (Op): a replica's
	// settlements carried by its next reserve need no round trip of their
	// own. Those that end holds must be of Day.
	Before []Op
}

// OpKind is what an Op does.
type OpKind uint8

const (
	OpAdjust OpKind = iota
	OpSettle
	OpCancel
	OpThrottle
	// OpOverdraw makes shadow mode's hold ID of Cost in Set for Key
	// whether or not it fits, and checks neither the key's budget nor fair
	// order (quota.Ledger.Overdraw): the request goes upstream anyway.
	// It ends as a reserved hold does.
	OpOverdraw
)

// Op is an adjustment, settlement, cancellation or throttle carried by
// another call (ReserveArgs.Before, Batch). A call retried after a lost
// reply counts none twice.
type Op struct {
	Kind OpKind
	ID   string     // the hold (not for OpThrottle)
	Cost quota.Cost // OpAdjust, OpSettle, OpOverdraw
	Set  quota.Set  // OpThrottle, OpOverdraw
	// Key and Weight (0 means 1): OpOverdraw's developer key.
	Key    string
	Weight float64
}

// opArgs appends the count of ops and their arguments, as runOps in
// ledger.lua reads them.
func (l *Ledger) opArgs(args []any, ops []Op) []any {
	args = append(args, len(ops))
	for _, o := range ops {
		c := o.Cost
		switch o.Kind {
		case OpThrottle:
			args = append(args, "throttle", l.setArg(o.Set), 0, 0, 0)
		case OpOverdraw:
			c, w := c.Max(quota.Cost{}), o.Weight
			if w <= 0 {
				w = 1
			}
			args = append(args, "overdraw", o.ID, l.setArg(o.Set), c.Tokens, c.Input, c.Output, o.Key, weightArg(w))
		default:
			args = append(args, [...]string{"adjust", "settle", "cancel"}[o.Kind], o.ID, c.Tokens, c.Input, c.Output)
		}
	}
	return args
}

// Batch runs ops in order in one call; those that end holds must be of
// day.
func (l *Ledger) Batch(ctx context.Context, day string, ops []Op) (Reply, error) {
	return l.run(ctx, "batch", day, l.opArgs(nil, ops)...)
}

// Reserve holds a.Cost in every bucket of a.Set at once, or none, as
// quota.Ledger.Reserve does, across replicas; it also refuses a key that
// is ahead, in fair order, of a key another replica has waiting, or whose
// daily budget is spent across replicas.
func (l *Ledger) Reserve(ctx context.Context, a ReserveArgs) (Reply, error) {
	c := a.Cost.Max(quota.Cost{})
	w := a.Weight
	if w <= 0 {
		w = 1
	}
	argv := l.begin("reserve", a.Day)
	*argv = append(*argv, a.ID, l.setArg(a.Set), c.Tokens, c.Input, c.Output,
		a.Key, weightArg(w), a.DailyTokens, l.backlog)
	*argv = l.opArgs(*argv, a.Before)
	return l.call(ctx, "reserve", argv)
}

// weightArg is a key's weight as the script reads it.
func weightArg(w float64) any {
	if w == 1 {
		return "1"
	}
	return strconv.FormatFloat(w, 'g', -1, 64)
}

// Beat renews the replica's lease, says which keys it has waiting for
// quota (replacing what it said before) and returns the shared state.
func (l *Ledger) Beat(ctx context.Context, waiting []string) (Reply, error) {
	args := make([]any, 0, 1+len(waiting))
	args = append(args, l.opts.Backlog.Microseconds())
	for _, k := range waiting {
		args = append(args, k)
	}
	return l.run(ctx, "beat", "", args...)
}

// Peek returns the shared state as it is, without renewing a lease or
// writing anything (tests, tools). The ledger's buckets must be the
// replicas'.
func (l *Ledger) Peek(ctx context.Context) (Reply, error) {
	return l.run(ctx, "peek", "")
}

// RestoreArgs is what a replica re-publishes into a ledger Redis lost.
type RestoreArgs struct {
	// Used is what this replica consumed today in each day bucket, by index.
	Used map[int]int64
	// Keys is what this replica charged each key today.
	Keys  map[string]int64
	Day   string
	Holds []Hold
}

// Restore re-publishes a replica's share of a ledger Redis lost: once per
// replica and generation (a second call changes nothing).
func (l *Ledger) Restore(ctx context.Context, a RestoreArgs) (Reply, error) {
	return l.run(ctx, "restore", a.Day, l.publishArgs(nil, a)...)
}
