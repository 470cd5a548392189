package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/store/redistest"
)

// shareReplica is one replica's upstream: its local ledger, controller and
// shared ledger, running until the test ends.
type shareReplica struct {
	local  *quota.Ledger
	ctl    *admission.Controller
	sh     *Shared
	budget int64 // key k's daily budget
}

var shareSpecs = []quota.BucketSpec{
	{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 60_000},
	{Name: "tpd", Kind: quota.TokensPerDay, Limit: 200_000},
}

func startShareReplica(t *testing.T, srv *redistest.Server, name string, localShare bool) *shareReplica {
	t.Helper()
	// Short timeouts, as serve's ledger client has: a Redis that does not
	// answer turns into a decision quickly.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	now := time.Now()
	local := quota.NewLedger(shareSpecs, quota.Windows{}, now)
	ctl := admission.New(local, admission.Options{ProtectedFraction: -1})
	sl, err := NewLedger(rdb, shareSpecs, quota.Windows{}, LedgerOptions{Upstream: "u", Replica: name})
	if err != nil {
		t.Fatal(err)
	}
	sh := NewShared(sl, local, SharedOptions{LocalShare: localShare, Poll: 10 * time.Millisecond,
		Beat: 100 * time.Millisecond, Timeout: 300 * time.Millisecond, Keys: &KeyShares{Every: 50 * time.Millisecond}})
	ctl.ShareWith(sh)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sh.Run(ctx, ctl); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &shareReplica{local: local, ctl: ctl, sh: sh}
}

// admit asks for n tokens for key k, waiting at most wait.
func (r *shareReplica) admit(n int64, wait time.Duration) (*admission.Ticket, error) {
	req := admission.Request{Key: admission.Key{Name: "k", DailyTokens: r.budget}, Set: r.local.All(), Cost: quota.Tokens(n), Deadline: time.Now().Add(wait)}
	return r.ctl.Admit(context.Background(), req)
}

func waitMode(t *testing.T, mode string, rs ...*shareReplica) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ok := true
		for _, r := range rs {
			ok = ok && r.sh.State().Mode == mode
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			for i, r := range rs {
				t.Logf("replica %d: %+v", i, r.sh.State())
			}
			t.Fatalf("replicas not %s after 5 s", mode)
		}
	}
}

// Two replicas set to carry on (local_share) while Redis is paused, then
// while it is stopped and restarted empty: alone, each admits against
// half of every bucket (and no more), requests go on, and once Redis
// answers the shared ledger has exactly what they used: settlements
// queued before, consumption alone, holds still in flight, once each.
func TestLocalShareCarriesOnAndReconciles(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	r0, r1 := startShareReplica(t, srv, "r0", true), startShareReplica(t, srv, "r1", true)
	for deadline := time.Now().Add(3 * time.Second); r0.sh.State().Replicas < 2 || r1.sh.State().Replicas < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the replicas do not see each other: %+v %+v", r0.sh.State(), r1.sh.State())
		}
	}
	must := func(tk *admission.Ticket, err error) *admission.Ticket {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	peek, err := NewLedger(rdb, shareSpecs, quota.Windows{}, LedgerOptions{Upstream: "u", Replica: "peek"})
	if err != nil {
		t.Fatal(err)
	}
	shared := func() (used, res, key int64) { // tpd, and k's tokens today
		ctx := context.Background()
		rep, err := peek.Peek(ctx)
		if err != nil {
			t.Fatal(err)
		}
		key, _ = rdb.HGet(ctx, "headroom:{ledger}:keyday:"+r0.local.Day(time.Now()), "k").Int64()
		return rep.Buckets[1].Used, rep.Buckets[1].Reserved, key
	}

	// Shared: r0 uses 8,000; r1 holds 10,000 across the outage.
	must(r0.admit(10_000, time.Second)).Settle(time.Now(), quota.Tokens(8_000))
	before := must(r1.admit(10_000, time.Second))
	time.Sleep(250 * time.Millisecond) // r0 beats: it hears of r1's hold

	// Redis paused (as cut off): r0's next request finds it out, goes on
	// its half: 60,000/2 a minute and half the room there was.
	srv.Pause()
	tk := must(r0.admit(15_000, 5*time.Second))
	st := r0.sh.State()
	if b := r0.local.Bucket(time.Now(), 0); st.Mode != admission.SharedLocalShare || st.Share != 2 || b.Limit != 30_000 || b.Share != 2 {
		t.Fatalf("r0 alone: %+v, tpm %+v; want local_share 1/2, a limit of 30,000", st, b)
	}
	// Its half is about (60,000 - 8,000 - 10,000)/2 = 21,000, less its
	// 15,000: 15,000 more does not fit now.
	var ref *admission.Refusal
	if _, err := r0.admit(15_000, 0); !errors.As(err, &ref) {
		t.Fatalf("15,000 more on r0's half: %v, want a refusal", err)
	}
	tk.Settle(time.Now(), quota.Tokens(12_000))
	before.Settle(time.Now(), quota.Tokens(9_000)) // queued for Redis
	waitMode(t, admission.SharedLocalShare, r1)
	must(r1.admit(5_000, 5*time.Second)).Settle(time.Now(), quota.Tokens(5_000))
	inflight := must(r1.admit(4_000, 5*time.Second)) // in flight when Redis is back

	// Redis answers again: all of it published, once.
	srv.Resume()
	waitMode(t, admission.SharedUp, r0, r1)
	if used, res, key := shared(); used != 8_000+9_000+12_000+5_000 || res != 4_000 || key != used+res {
		t.Fatalf("after Redis answers again: tpd used %d, held %d, k's tokens today %d; want 34000, 4000, 38000", used, res, key)
	}
	if b := r0.local.Bucket(time.Now(), 0); b.Limit != 60_000 || b.Share != 0 {
		t.Fatalf("r0 back on the shared ledger: tpm %+v, want the whole limit", b)
	}
	inflight.Settle(time.Now(), quota.Tokens(3_000))
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if used, res, key := shared(); used == 37_000 && res == 0 && key == 37_000 {
			break
		}
		if time.Now().After(deadline) {
			used, res, key := shared()
			t.Fatalf("the hold published after the outage settled: tpd used %d, held %d, k %d; want 37000, 0, 37000", used, res, key)
		}
	}

	// Redis stopped and restarted empty: what r0 used alone meanwhile is
	// re-published with everything else, once.
	srv.Stop()
	must(r0.admit(6_000, 5*time.Second)).Settle(time.Now(), quota.Tokens(6_000))
	waitMode(t, admission.SharedLocalShare, r1)
	srv.Restart(t)
	waitMode(t, admission.SharedUp, r0, r1)
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if used, res, key := shared(); used == 43_000 && res == 0 && key == 43_000 {
			break
		}
		if time.Now().After(deadline) {
			used, res, key := shared()
			t.Fatalf("after Redis restarted empty: tpd used %d, held %d, k %d; want 43000, 0, 43000", used, res, key)
		}
	}
}

// Set to refuse (the default), a replica answers *admission.Unavailable
// while Redis does not answer, and shares again when it does.
func TestRefuseWhileRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	r := startShareReplica(t, srv, "r", false)
	if _, err := r.admit(1_000, time.Second); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	var down *admission.Unavailable
	if _, err := r.admit(1_000, 5*time.Second); !errors.As(err, &down) {
		t.Fatalf("Redis paused, refuse: %v, want Unavailable", err)
	}
	if st := r.sh.State(); st.Mode != admission.SharedRefusing || st.Since.IsZero() {
		t.Fatalf("state while refusing: %+v", st)
	}
	srv.Resume()
	waitMode(t, admission.SharedUp, r)
	if _, err := r.admit(1_000, time.Second); err != nil {
		t.Fatalf("after Redis answers again: %v", err)
	}
}

// Alone, a key may be charged 1/N of what its daily budget had left across
// replicas (read while Redis answered), counted across requests: with
// 30,000 a day and 10,000 used, each of two replicas may charge it 10,000
// while Redis is paused, and no more.
func TestLocalShareKeyBudget(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	r0, r1 := startShareReplica(t, srv, "r0", true), startShareReplica(t, srv, "r1", true)
	r0.budget, r1.budget = 30_000, 30_000
	tk, err := r0.admit(10_000, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tk.Settle(time.Now(), quota.Tokens(10_000))
	time.Sleep(300 * time.Millisecond) // beats: both see two replicas and read k's 10,000
	srv.Pause()
	var ref *admission.Refusal
	for _, c := range []struct {
		r    *shareReplica
		n    int64
		fits bool
	}{{r0, 6_000, true}, {r0, 6_000, false}, {r1, 9_000, true}, {r1, 2_000, false}} {
		tk, err := c.r.admit(c.n, 3*time.Second)
		if c.fits && err != nil || !c.fits && !errors.As(err, &ref) {
			t.Fatalf("%d more for k while Redis is paused: %v; want fits=%v", c.n, err, c.fits)
		}
		if err == nil {
			tk.Settle(time.Now(), quota.Tokens(c.n))
		}
	}
	srv.Resume()
	waitMode(t, admission.SharedUp, r0, r1)
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n, _ := rdb.HGet(context.Background(), "headroom:{ledger}:keyday:"+r0.local.Day(time.Now()), "k").Int64()
		if n == 25_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("k's tokens today after Redis is back: %d, want 25000 (of its 30000)", n)
		}
	}
}
