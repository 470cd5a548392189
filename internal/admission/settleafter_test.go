package admission

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/headroomhq/headroom/internal/quota"
)

// TestSettleAfterCorrectsFairOrderAtOnce: SettleAfter ranks the key by the
// final cost at once while the ledger keeps the hold until the delay has
// passed, and NextWake names that moment.
//
// TPM 900. Bob, alice and carol hold 300 each; bob and alice each queue
// another 300 (bob first: he wins a tie). Alice's request ends costing 30,
// bob's 270, both with the refund held 200 ms. At +100 ms carol cancels:
// the 300 she gives back goes to alice, who is behind by 240 now, not
// when the refunds land (then both tags would still be 300 and bob would go
// first). At +200 ms the refunds land and bob's request fits.
func TestSettleAfterCorrectsFairOrderAtOnce(t *testing.T) {
	l := quota.NewLedger([]quota.BucketSpec{{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 900}}, quota.Windows{}, t0)
	c := New(l, Options{})
	b1 := enqueue(t, c, t0, Request{Key: bob, Set: 1, Cost: quota.Tokens(300)})
	a1 := enqueue(t, c, t0, Request{Key: alice, Set: 1, Cost: quota.Tokens(300)})
	c1 := enqueue(t, c, t0, Request{Key: carol, Set: 1, Cost: quota.Tokens(300)})
	b2 := enqueue(t, c, t0, Request{Key: bob, Set: 1, Cost: quota.Tokens(300)})
	a2 := enqueue(t, c, t0, Request{Key: alice, Set: 1, Cost: quota.Tokens(300)})
	if diff := cmp.Diff([]State{Granted, Granted, Granted, Waiting, Waiting}, states(b1, a1, c1, b2, a2)); diff != "" {
		t.Fatalf("states (-want +got):\n%s", diff)
	}

	const delay = 200 * time.Millisecond
	if !a1.SettleAfter(t0, quota.Tokens(30), delay) || !b1.SettleAfter(t0, quota.Tokens(270), delay) {
		t.Fatal("SettleAfter did not end the tickets")
	}
	if a1.SettleAfter(t0, quota.Tokens(1), delay) || a1.Settle(t0, quota.Tokens(1)) || a1.Cancel(t0) {
		t.Error("a ticket ended by SettleAfter ended again")
	}
	st := c.Status(t0)
	if got, want := [3]int{st.InFlight, st.Queued, st.Settling}, [3]int{1, 2, 2}; got != want {
		t.Errorf("in flight, queued, settling after SettleAfter = %v, want %v", got, want)
	}
	if got := l.Bucket(t0, 0); got.Reserved != 900 || got.Used != 0 {
		t.Errorf("ledger before the delay: reserved %d used %d, want the holds kept (900, 0)", got.Reserved, got.Used)
	}
	if wake, ok := c.NextWake(t0); !ok || !wake.Equal(t0.Add(delay)) {
		t.Errorf("NextWake = %v, %v; want the refunds at +%v", wake, ok, delay)
	}

	c1.Cancel(t0.Add(100 * time.Millisecond))
	if got := c.Pump(t0.Add(100 * time.Millisecond)); len(got) != 1 || got[0] != a2 || b2.State() != Waiting {
		t.Fatalf("after carol's cancel, decided %v (alice's %v, bob's %v); want alice's second request granted", got, a2.State(), b2.State())
	}
	if got := c.Pump(t0.Add(delay - time.Nanosecond)); len(got) != 0 || l.Bucket(t0.Add(delay-time.Nanosecond), 0).Reserved != 900 {
		t.Fatalf("Pump before the refunds decided %d tickets, ledger %+v", len(got), l.Bucket(t0, 0))
	}
	if got := c.Pump(t0.Add(delay)); len(got) != 1 || got[0] != b2 {
		t.Fatalf("Pump when the refunds are due = %v, want bob's second request", got)
	}
	// The refunds settled at their due time: 300 consumed, the holds of
	// the two live requests left.
	if got, want := l.Bucket(t0.Add(delay), 0), (quota.BucketState{Name: "tpm", Kind: quota.TokensPerMinute, KindName: "tpm",
		Limit: 900, Effective: 900, Used: 300, Reserved: 600, InFlight: 2, Available: 0}); got != want {
		t.Errorf("ledger after the refunds: %+v, want %+v", got, want)
	}
	if st := c.Status(t0.Add(delay)); st.Settling != 0 {
		t.Errorf("settling = %d after the refunds", st.Settling)
	}
}

// TestSettleAfterNothingToRefund: a settlement at or above what is held
// lands at once, as does a zero delay.
func TestSettleAfterNothingToRefund(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cost  int64
		delay time.Duration
	}{
		{"extra charge", 700, time.Second},
		{"whole reservation", 500, time.Second},
		{"no delay", 100, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := quota.NewLedger([]quota.BucketSpec{{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 1000}}, quota.Windows{}, t0)
			c := New(l, Options{})
			tk := enqueue(t, c, t0, Request{Key: alice, Set: 1, Cost: quota.Tokens(500)})
			tk.SettleAfter(t0, quota.Tokens(tt.cost), tt.delay)
			if got := l.Bucket(t0, 0); got.Reserved != 0 || got.Used != tt.cost {
				t.Errorf("ledger: reserved %d used %d, want 0 and %d", got.Reserved, got.Used, tt.cost)
			}
			if _, ok := c.NextWake(t0); ok {
				t.Error("NextWake with nothing held back")
			}
		})
	}
}

// TestSettleAfterFromAdmit: a ticket from the blocking Admit has its
// refund settled by the controller's timer even when nobody waits, and the
// timer is gone afterwards.
func TestSettleAfterFromAdmit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(bubbleLedger(), Options{})
		tk, err := c.Admit(t.Context(), Request{Key: alice, Set: 1, Cost: quota.Tokens(600)})
		if err != nil {
			t.Fatal(err)
		}
		tk.SettleAfter(time.Now(), quota.Tokens(100), 200*time.Millisecond)
		if got := c.Ledger().Bucket(time.Now(), 0).Reserved; got != 600 {
			t.Fatalf("reserved %d before the delay, want 600", got)
		}
		time.Sleep(200*time.Millisecond + refundSlack(200*time.Millisecond))
		synctest.Wait()
		if got := c.Ledger().Bucket(time.Now(), 0); got.Reserved != 0 || got.Used != 100 {
			t.Errorf("after the delay: reserved %d used %d, want 0 and 100", got.Reserved, got.Used)
		}
		c.mu.Lock()
		timer := c.timer
		c.mu.Unlock()
		if timer != nil {
			t.Error("the timer outlived the held refunds")
		}
	})
}

// TestHopelessRefusedWhenItBecomesSo: a request that joined the queue with
// hope (a request in flight might give back what it needs) is refused as
// soon as that request ends having used it, with Daily set, not at its
// deadline a minute later; also when the ended request's ledger refund is
// held back (the ledger still holds it, but will consume it).
func TestHopelessRefusedWhenItBecomesSo(t *testing.T) {
	for _, tt := range []struct {
		name  string
		key   Key
		opts  Options
		first int64 // in flight, then consumed whole
		delay time.Duration
		next  int64
		want  *Refusal
	}{
		{
			name: "daily bucket", key: alice, opts: Options{ProtectedFraction: -1}, first: 6000, next: 5000,
			want: &Refusal{Bucket: "tpd", Kind: quota.TokensPerDay, Daily: true, RetryAfter: 14*time.Hour - time.Second, KeyShare: 10000, KeyUsed: 6000},
		},
		{
			name: "daily bucket, refund held back", key: alice, opts: Options{ProtectedFraction: -1}, first: 6000, delay: 200 * time.Millisecond, next: 5000,
			want: &Refusal{Bucket: "tpd", Kind: quota.TokensPerDay, Daily: true, RetryAfter: 14*time.Hour - time.Second, KeyShare: 10000, KeyUsed: 6000},
		},
		{
			name: "protected share", key: alice, opts: Options{}, first: 6000, next: 2000,
			want: &Refusal{Bucket: "tpd", Kind: quota.TokensPerDay, Daily: true, RetryAfter: 14*time.Hour - time.Second, KeyShare: 2500, KeyUsed: 6000},
		},
		{
			name: "key budget", key: Key{Name: "alice", DailyTokens: 1000}, opts: Options{ProtectedFraction: -1}, first: 600, next: 500,
			want: &Refusal{Daily: true, Budget: true, RetryAfter: 14*time.Hour - time.Second, KeyShare: 1000, KeyUsed: 600},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := New(testLedger(), tt.opts)
			c.SetKeys([]Key{tt.key, bob}) // protection: 2,500 each
			first := enqueue(t, c, t0, Request{Key: tt.key, Set: tpd, Cost: quota.Tokens(tt.first)})
			next := enqueue(t, c, t0, Request{Key: tt.key, Set: tpd, Cost: quota.Tokens(tt.next)})
			if next.State() != Waiting {
				t.Fatalf("second request %v, want it waiting on the first's hold", next.State())
			}
			settled := t0.Add(time.Second)
			first.SettleAfter(settled, quota.Tokens(tt.first), tt.delay)
			if got := c.Pump(settled); len(got) != 1 || got[0] != next {
				t.Fatalf("Pump after the first request ended = %v, want the second refused at once (%v)", got, next.State())
			}
			var r *Refusal
			if !errors.As(next.Err(), &r) {
				t.Fatalf("Err() = %v, want *Refusal", next.Err())
			}
			r.Message = ""
			if diff := cmp.Diff(tt.want, r); diff != "" {
				t.Errorf("refusal (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHeldRefundsLandTogether: while nothing waits, held refunds that fall
// due close together land at one timer wake-up, each at most refundSlack
// after it is due; Room and an arriving request land every refund due at
// once, without the timer; and a request waiting for a held refund is
// granted when the refund is due, not refundSlack later.
func TestHeldRefundsLandTogether(t *testing.T) {
	const delay = 200 * time.Millisecond
	slack := refundSlack(delay)
	if slack <= 0 || slack > delay/8 {
		t.Fatalf("refundSlack(%v) = %v", delay, slack)
	}
	synctest.Test(t, func(t *testing.T) {
		c := New(quota.NewLedger([]quota.BucketSpec{{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 6000}},
			quota.Windows{}, time.Now()), Options{})
		reserved := func() int64 { return c.Ledger().Bucket(time.Now(), 0).Reserved }
		start := time.Now()
		// Five requests hold 1,000 each and end 1 ms apart having used
		// 100: refunds of 900 due at +200 ms, +201 ms, ... +204 ms.
		for range 5 {
			tk, err := c.Admit(t.Context(), Request{Key: alice, Set: 1, Cost: quota.Tokens(1000)})
			if err != nil {
				t.Fatal(err)
			}
			tk.SettleAfter(time.Now(), quota.Tokens(100), delay)
			time.Sleep(time.Millisecond)
		}
		// +202 ms: three are due; the timer waits for the first one's slack.
		time.Sleep(time.Until(start.Add(delay + 2*time.Millisecond)))
		synctest.Wait()
		if got := reserved(); got != 5000 {
			t.Fatalf("at +202 ms before anyone looks: reserved %d, want 5000 (the timer lands them together)", got)
		}
		c.Room(time.Now(), alice, 1) // lands the three due
		if got := reserved(); got != 2000 {
			t.Fatalf("after Room at +202 ms: reserved %d, want 2000", got)
		}
		// The last two (due +203 and +204 ms) land at the wake-up, by the
		// first one's due time plus its slack.
		time.Sleep(time.Until(start.Add(delay + slack)))
		synctest.Wait()
		if got := reserved(); got != 0 {
			t.Fatalf("at +%v: reserved %d, want 0", time.Since(start), got)
		}
		c.mu.Lock()
		timer := c.timer
		c.mu.Unlock()
		if timer != nil {
			t.Error("the timer outlived the held refunds")
		}

		// A request that comes lands the due refunds itself.
		tk, err := c.Admit(t.Context(), Request{Key: alice, Set: 1, Cost: quota.Tokens(1000)})
		if err != nil {
			t.Fatal(err)
		}
		tk.SettleAfter(time.Now(), quota.Tokens(100), delay)
		time.Sleep(delay)
		synctest.Wait()
		tk2, err := c.Admit(t.Context(), Request{Key: alice, Set: 1, Cost: quota.Tokens(1000)})
		if err != nil {
			t.Fatal(err)
		}
		if got := reserved(); got != 1000 {
			t.Fatalf("a request admitted when a refund is due: reserved %d, want 1000 (its own)", got)
		}
		tk2.Settle(time.Now(), quota.Tokens(100))
	})

	synctest.Test(t, func(t *testing.T) {
		// TPM 1,000: the second request fits only once the first one's
		// refund of 900 lands, and waits for it.
		c := New(quota.NewLedger([]quota.BucketSpec{{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 1000}},
			quota.Windows{}, time.Now()), Options{})
		first, err := c.Admit(t.Context(), Request{Key: alice, Set: 1, Cost: quota.Tokens(1000)})
		if err != nil {
			t.Fatal(err)
		}
		ended := time.Now()
		first.SettleAfter(ended, quota.Tokens(100), delay)
		second, err := c.Admit(t.Context(), Request{Key: alice, Set: 1, Cost: quota.Tokens(800), Deadline: ended.Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(ended); waited != delay {
			t.Errorf("the waiting request was granted after %v, want %v (the refund's due time)", waited, delay)
		}
		second.Settle(time.Now(), quota.Tokens(800))
	})
}
