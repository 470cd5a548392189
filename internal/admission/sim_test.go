package admission

import (
	"container/heap"
	"errors"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
)

var t0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

// sim is a small discrete-event loop driving the non-blocking core on a
// virtual clock, as the simulator does.
type sim struct {
	t   testing.TB
	c   *Controller
	now time.Time
	q   eventQueue
	seq int

	// per ticket: what to do when granted
	onGrant  map[*Ticket]func(now time.Time, t *Ticket)
	onRefuse map[*Ticket]func(now time.Time, r *Refusal)
	wakeAt   time.Time
}

type event struct {
	at  time.Time
	seq int
	f   func(now time.Time)
}

type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func newSim(t testing.TB, c *Controller) *sim {
	return &sim{t: t, c: c, now: t0, onGrant: map[*Ticket]func(time.Time, *Ticket){}, onRefuse: map[*Ticket]func(time.Time, *Refusal){}}
}

func (s *sim) at(at time.Time, f func(now time.Time)) {
	s.seq++
	heap.Push(&s.q, event{at: at, seq: s.seq, f: f})
}

// submit enqueues req at now; granted/refused run when it is decided.
func (s *sim) submit(now time.Time, req Request, granted func(time.Time, *Ticket), refused func(time.Time, *Refusal)) {
	t, err := s.c.Enqueue(now, req)
	var r *Refusal
	switch {
	case errors.As(err, &r):
		refused(now, r)
	case err != nil:
		s.t.Fatalf("enqueue %+v: %v", req, err)
	case t.State() == Granted:
		granted(now, t)
	default:
		s.onGrant[t] = granted
		s.onRefuse[t] = refused
	}
}

// run processes events until end.
func (s *sim) run(end time.Time) {
	for s.q.Len() > 0 {
		e := heap.Pop(&s.q).(event)
		if e.at.After(end) {
			return
		}
		if e.at.Before(s.now) {
			s.t.Fatalf("event at %v before now %v", e.at, s.now)
		}
		s.now = e.at
		e.f(s.now)
		s.settle()
	}
}

// settle pumps until quiet and schedules the next wake.
func (s *sim) settle() {
	for _, t := range s.c.Pump(s.now) {
		switch t.State() {
		case Granted:
			f := s.onGrant[t]
			delete(s.onGrant, t)
			delete(s.onRefuse, t)
			f(s.now, t)
		case Refused:
			var r *Refusal
			if !errors.As(t.Err(), &r) {
				s.t.Fatalf("refused ticket error %v", t.Err())
			}
			f := s.onRefuse[t]
			delete(s.onGrant, t)
			delete(s.onRefuse, t)
			f(s.now, r)
		}
	}
	// A pending wake at now has run already (events at one instant run
	// before this): schedule again.
	if at, ok := s.c.NextWake(s.now); ok && (!s.wakeAt.After(s.now) || at.Before(s.wakeAt)) {
		if at.Before(s.now) {
			at = s.now
		}
		s.wakeAt = at
		s.at(at, func(time.Time) {})
	}
}

func jain(xs []float64) float64 {
	var sum, sq float64
	for _, x := range xs {
		sum += x
		sq += x * x
	}
	if sq == 0 {
		return 1
	}
	return sum * sum / (float64(len(xs)) * sq)
}

// TestFairness: one heavy key (10 concurrent, long outputs) and three light
// keys (one request at a time) on a small TPM. Light keys get their share
// with bounded queue wait; served tokens have Jain's index >= 0.9.
func TestFairness(t *testing.T) {
	l := quota.NewLedger([]quota.BucketSpec{
		{Name: "sonnet-tpm", Kind: quota.TokensPerMinute, Limit: 40000},
		{Name: "account-tpd", Kind: quota.TokensPerDay, Limit: 100000000},
	}, quota.Windows{}, t0)
	c := New(l, Options{})
	s := newSim(t, c)
	set := l.All()

	type stats struct {
		served   int64
		requests int
		maxWait  time.Duration
		refused  int
	}
	keys := []Key{{Name: "heavy"}, {Name: "light1"}, {Name: "light2"}, {Name: "light3"}}
	st := map[string]*stats{}
	var loop func(now time.Time, k Key, cost int64, dur time.Duration)
	loop = func(now time.Time, k Key, cost int64, dur time.Duration) {
		enq := now
		s.submit(now, Request{Key: k, Set: set, Cost: quota.Tokens(4000)},
			func(now time.Time, tk *Ticket) {
				ks := st[k.Name]
				ks.maxWait = max(ks.maxWait, now.Sub(enq))
				s.at(now.Add(dur), func(now time.Time) {
					tk.Settle(now, quota.Tokens(cost))
					ks.served += cost
					ks.requests++
					loop(now, k, cost, dur)
				})
			},
			func(now time.Time, r *Refusal) {
				st[k.Name].refused++
				s.at(now.Add(r.RetryAfter), func(now time.Time) { loop(now, k, cost, dur) })
			})
	}
	for _, k := range keys {
		st[k.Name] = &stats{}
	}
	for range 10 {
		loop(t0, keys[0], 4000, 20*time.Second) // long outputs: the whole reservation
	}
	for i, k := range keys[1:] {
		s.at(t0.Add(time.Duration(i+1)*time.Second), func(now time.Time) { loop(now, k, 1500, 3*time.Second) })
	}
	end := t0.Add(30 * time.Minute)
	s.run(end)

	var served []float64
	var total int64
	for _, k := range keys {
		x := st[k.Name]
		t.Logf("%-7s served %7d tokens in %3d requests, max queue wait %v, refused %d", k.Name, x.served, x.requests, x.maxWait, x.refused)
		served = append(served, float64(x.served))
		total += x.served
	}
	if j := jain(served); j < 0.9 {
		t.Errorf("Jain's index of served tokens = %.3f, want >= 0.9", j)
	} else {
		t.Logf("Jain's index %.3f; total served %d of %d minutes × 40,000", j, total, 30)
	}
	for _, k := range keys[1:] {
		x := st[k.Name]
		if share := total / 4; x.served < share*8/10 {
			t.Errorf("%s served %d, less than 80%% of an equal share %d", k.Name, x.served, share)
		}
		// Bounded: the heavy key's ten 20-second holds can fill the whole
		// minute, so a light request waits for one of them to end (up to
		// 20 s) and for what it consumed to drain (4,000 at 40,000 per
		// minute: 6 s), behind at most the other light keys.
		if x.maxWait > 35*time.Second || x.refused > 0 {
			t.Errorf("%s: max queue wait %v, %d refusals; want bounded waits and no refusal", k.Name, x.maxWait, x.refused)
		}
	}
	if total < 30*40000*9/10 {
		t.Errorf("served %d, less than 90%% of the bucket's %d: not work-conserving", total, 30*40000)
	}
}

// TestDailyProtectionAgainstHeavyKey: a heavy key that starts first cannot
// eat the protected shares of keys that arrive hours later.
func TestDailyProtectionAgainstHeavyKey(t *testing.T) {
	l := quota.NewLedger([]quota.BucketSpec{
		{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 1000000},
		{Name: "tpd", Kind: quota.TokensPerDay, Limit: 400000},
	}, quota.Windows{}, t0)
	c := New(l, Options{}) // protected fraction 0.5: 50,000 per key
	keys := []Key{{Name: "heavy"}, {Name: "light1"}, {Name: "light2"}, {Name: "light3"}}
	c.SetKeys(keys)
	s := newSim(t, c)
	served := map[string]int64{}
	daily := map[string]*Refusal{}
	var loop func(now time.Time, k Key)
	loop = func(now time.Time, k Key) {
		s.submit(now, Request{Key: k, Set: l.All(), Cost: quota.Tokens(4000)},
			func(now time.Time, tk *Ticket) {
				s.at(now.Add(5*time.Second), func(now time.Time) {
					tk.Settle(now, quota.Tokens(4000))
					served[k.Name] += 4000
					loop(now, k)
				})
			},
			func(now time.Time, r *Refusal) {
				if r.Daily {
					if daily[k.Name] == nil {
						daily[k.Name] = r
					}
					return // the client stops: x-should-retry: false
				}
				s.at(now.Add(r.RetryAfter), func(now time.Time) { loop(now, k) })
			})
	}
	for range 10 {
		loop(t0, keys[0])
	}
	for _, k := range keys[1:] {
		s.at(t0.Add(2*time.Hour), func(now time.Time) { loop(now, k) })
	}
	s.run(t0.Add(4 * time.Hour))

	t.Logf("served %v", served)
	if got, limit := served["heavy"], int64(400000-3*50000); got > limit {
		t.Errorf("heavy used %d of the day, more than the %d unprotected by others", got, limit)
	}
	for _, k := range keys[1:] {
		if got := served[k.Name]; got < 48000 {
			t.Errorf("%s got %d after the heavy key drained the day, want its protected 50,000 (less one request)", k.Name, got)
		}
	}
	r := daily["heavy"]
	if r == nil {
		t.Fatal("heavy was never refused with Daily")
	}
	if r.Bucket != "tpd" || !r.Daily || r.KeyShare != 50000 || r.RetryAfter <= 0 || r.RetryAfter > 14*time.Hour {
		t.Errorf("heavy's refusal = %+v", r)
	}
}

// TestWeightedShares: two backlogged keys with weights 1 and 3 are served
// tokens in that ratio.
func TestWeightedShares(t *testing.T) {
	l := quota.NewLedger([]quota.BucketSpec{{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 40000}}, quota.Windows{}, t0)
	c := New(l, Options{})
	s := newSim(t, c)
	served := map[string]int64{}
	var loop func(now time.Time, k Key)
	loop = func(now time.Time, k Key) {
		s.submit(now, Request{Key: k, Set: 1, Cost: quota.Tokens(3000)},
			func(now time.Time, tk *Ticket) {
				s.at(now.Add(4*time.Second), func(now time.Time) {
					tk.Settle(now, quota.Tokens(2000))
					served[k.Name] += 2000
					loop(now, k)
				})
			},
			func(now time.Time, r *Refusal) { s.at(now.Add(r.RetryAfter), func(now time.Time) { loop(now, k) }) })
	}
	for _, k := range []Key{{Name: "one", Weight: 1}, {Name: "three", Weight: 3}} {
		for range 8 {
			loop(t0, k)
		}
	}
	s.run(t0.Add(30 * time.Minute))
	ratio := float64(served["three"]) / float64(served["one"])
	t.Logf("served %v, ratio %.2f", served, ratio)
	if ratio < 2.7 || ratio > 3.3 {
		t.Errorf("weight 3 : weight 1 served ratio %.2f, want 3 ± 10%%", ratio)
	}
}
