package admission

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
)

func bubbleLedger() *quota.Ledger {
	return quota.NewLedger([]quota.BucketSpec{
		{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 600},
	}, quota.Windows{}, time.Now())
}

func TestAdmitWaitsForRefill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(bubbleLedger(), Options{})
		first, err := c.Admit(t.Context(), Request{Key: alice, Set: 1, Cost: quota.Tokens(600)})
		if err != nil {
			t.Fatal(err)
		}
		first.Settle(time.Now(), quota.Tokens(600)) // consumed: the window drains it at 10/s
		start := time.Now()
		var second *Ticket
		done := make(chan error)
		go func() {
			var err error
			second, err = c.Admit(t.Context(), Request{Key: bob, Set: 1, Cost: quota.Tokens(100)})
			done <- err
		}()
		synctest.Wait()
		if got := c.Status(time.Now()).Queued; got != 1 {
			t.Fatalf("queued = %d, want bob waiting", got)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, want := time.Since(start), 10*time.Second; got != want {
			t.Errorf("bob waited %v, want %v (100 tokens at 10/s)", got, want)
		}
		second.Settle(time.Now(), quota.Tokens(100))
	})
}

func TestAdmitWokenBySettle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(bubbleLedger(), Options{MaxInFlight: 1})
		first, err := c.Admit(t.Context(), Request{Key: alice, Set: 1, Cost: quota.Tokens(10)})
		if err != nil {
			t.Fatal(err)
		}
		checkWokenBySettle(t, first, func() (*Ticket, error) {
			return c.Admit(t.Context(), Request{Key: bob, Set: 1, Cost: quota.Tokens(10)})
		})
	})
}

// checkWokenBySettle runs admit, which must block behind first, in a
// synctest bubble; settles first 3 s later; and checks that admit's ticket
// was granted at that moment, after waiting 3 s.
func checkWokenBySettle(t *testing.T, first *Ticket, admit func() (*Ticket, error)) {
	t.Helper()
	done := make(chan *Ticket)
	go func() {
		tk, err := admit()
		if err != nil {
			t.Error(err)
		}
		done <- tk
	}()
	synctest.Wait()
	time.Sleep(3 * time.Second)
	start := time.Now()
	first.Settle(time.Now(), quota.Tokens(10))
	tk := <-done
	if time.Since(start) != 0 || tk.Waited() != 3*time.Second {
		t.Errorf("second request granted %v after the first settled, waited %v; want at once, 3s", time.Since(start), tk.Waited())
	}
	tk.Settle(time.Now(), quota.Tokens(10))
}

func TestAdmitDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(bubbleLedger(), Options{DefaultMaxWait: 4 * time.Second})
		first, _ := c.Admit(t.Context(), Request{Key: alice, Set: 1, Cost: quota.Tokens(600)})
		first.Settle(time.Now(), quota.Tokens(600))
		start := time.Now()
		_, err := c.Admit(t.Context(), Request{Key: bob, Set: 1, Cost: quota.Tokens(100)})
		var r *Refusal
		if !errors.As(err, &r) {
			t.Fatalf("Admit = %v, want *Refusal", err)
		}
		if got := time.Since(start); got != 4*time.Second {
			t.Errorf("refused after %v, want the 4 s deadline", got)
		}
		if r.RetryAfter != 6*time.Second || r.Bucket != "tpm" || r.Daily {
			t.Errorf("refusal = %+v", r)
		}
	})
}

func TestAdmitContextCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(bubbleLedger(), Options{})
		first, _ := c.Admit(t.Context(), Request{Key: alice, Set: 1, Cost: quota.Tokens(600)})
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := c.Admit(ctx, Request{Key: bob, Set: 1, Cost: quota.Tokens(100)})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Admit = %v, want the context's error", err)
		}
		st := c.Status(time.Now())
		if st.Queued != 0 || st.InFlight != 1 {
			t.Errorf("after cancel: queued %d in flight %d", st.Queued, st.InFlight)
		}
		first.Cancel(time.Now())
		if got := c.Ledger().Available(time.Now(), 0); got != 600 {
			t.Errorf("available %d after everything ended, want 600", got)
		}
		if _, err := c.Admit(ctx, Request{Key: bob, Set: 1, Cost: quota.Tokens(1)}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Admit with a done context = %v", err)
		}
	})
}

// TestAdmitManyNoLeak: many callers, some giving up, all served or refused;
// afterwards nothing is held, queued or pending.
func TestAdmitManyNoLeak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(bubbleLedger(), Options{MaxInFlight: 4, DefaultMaxWait: 8 * time.Second})
		var wg sync.WaitGroup
		var mu sync.Mutex
		outcome := map[string]int{}
		for i := range 40 {
			wg.Go(func() {
				ctx := t.Context()
				if i%7 == 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, time.Duration(i)*100*time.Millisecond)
					defer cancel()
				}
				k := Key{Name: []string{"a", "b", "c"}[i%3], MaxConcurrency: 2}
				tk, err := c.Admit(ctx, Request{Key: k, Set: 1, Cost: quota.Tokens(50 + int64(i))})
				var r *Refusal
				mu.Lock()
				switch {
				case err == nil:
					outcome["granted"]++
				case errors.As(err, &r):
					outcome["refused"]++
				case ctx.Err() != nil:
					outcome["cancelled"]++
				default:
					t.Errorf("Admit: %v", err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
				defer tk.Cancel(time.Now())
				time.Sleep(2 * time.Second)
				tk.Settle(time.Now(), quota.Tokens(20))
			})
		}
		wg.Wait()
		t.Logf("%v", outcome)
		if outcome["granted"] == 0 || outcome["granted"]+outcome["refused"]+outcome["cancelled"] != 40 {
			t.Errorf("outcomes %v", outcome)
		}
		st := c.Status(time.Now())
		if st.Queued != 0 || st.InFlight != 0 || st.Buckets[0].InFlight != 0 || st.Buckets[0].Reserved != 0 {
			t.Errorf("leak: %+v", st)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.timer != nil || c.blockingWaiting != 0 {
			t.Errorf("timer %v still armed, %d blocking waiters", c.timer, c.blockingWaiting)
		}
	})
}
