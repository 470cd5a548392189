package admission

import (
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
)

// TestShadowRecord: Shadow grants everything at once and says what Admit
// would have done: admit, queue with the ledger's wait, or refuse and why.
// What does not fit is held once confirmed (the upstream admitted it), as
// an overdraft: the ledger goes below zero, as the upstream that received
// it. Settling every ticket leaves the ledger exact.
func TestShadowRecord(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	l := quota.NewLedger([]quota.BucketSpec{
		{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 600},
		{Name: "tpd", Kind: quota.TokensPerDay, Limit: 100_000},
	}, quota.Windows{}, now)
	c := New(l, Options{ProtectedFraction: -1})
	carol := Key{Name: "carol", DailyTokens: 1000}
	all := l.All()
	deadline := now.Add(time.Minute)

	var tickets []*Ticket
	shadow := func(k Key, cost, enforced int64, deadline time.Time) (Verdict, Verdict) {
		t.Helper()
		tk, would, fits := c.Shadow(now, Request{Key: k, Set: all, Cost: quota.Tokens(cost), Deadline: deadline}, quota.Tokens(enforced))
		if tk.State() != Granted {
			t.Fatalf("shadow ticket is %v, want granted", tk.State())
		}
		tickets = append(tickets, tk)
		return would, fits
	}

	// 600 fits; settled, it is consumed and the window drains it at 10/s.
	if would, fits := shadow(alice, 600, 600, deadline); would != (Verdict{}) || fits != would {
		t.Errorf("first: would %+v fits %+v, want admit", would, fits)
	}
	tickets[0].Settle(now, quota.Tokens(600))

	// 100 more: the minute bucket has no room for 10 s.
	would, fits := shadow(bob, 100, 100, deadline)
	if want := (Verdict{Action: WouldQueue, Wait: 10 * time.Second, Bucket: "tpm"}); would != want || fits != want {
		t.Errorf("second: would %+v fits %+v, want %+v", would, fits, want)
	}
	if got := l.Available(now, 0); got != -100 {
		t.Errorf("tpm available = %d, want -100: the overdraft is held", got)
	}
	if tickets[1].Contested() {
		t.Error("the second is contested with nothing else in flight")
	}
	// The same with no time to wait: refused at its deadline.
	would, _ = shadow(bob, 50, 50, now)
	if would.Action != WouldRefuse || would.Reason != ReasonDeadline || would.Bucket != "tpm" || would.Wait != 15*time.Second {
		t.Errorf("no wait allowed: %+v, want a deadline refusal after 15 s on tpm", would)
	}
	// Too large for the bucket, ever.
	if would, _ = shadow(bob, 700, 700, deadline); would.Action != WouldRefuse || would.Reason != ReasonTooLarge || would.Bucket != "tpm" {
		t.Errorf("too large: %+v", would)
	}
	// Clamped by the policy it would have fitted once the window drained
	// (it waits less); as forwarded it waits more.
	would, fits = shadow(alice, 400, 10, deadline)
	if would.Action != WouldQueue || fits.Action != WouldQueue || would.Wait >= fits.Wait {
		t.Errorf("clamped: would %+v, fits %+v: the clamped charge waits less", would, fits)
	}
	// Requests pending meanwhile contest it: the upstream may admit them first.
	if !tickets[1].Contested() {
		t.Error("the second is not contested by the pending ones granted after it")
	}
	for _, tk := range tickets[1:] {
		tk.Cancel(now)
	}
	if got := l.Available(now, 0); got != 0 {
		t.Errorf("tpm available after cancelling = %d, want 0", got)
	}
	tickets = tickets[:1]

	// Carol's budget of 1,000: 900 settled, then 200 more is refused for the day.
	later := now.Add(2 * time.Minute) // the minute bucket is full again
	tk, _, _ := c.Shadow(later, Request{Key: carol, Set: all, Cost: quota.Tokens(500)}, quota.Tokens(500))
	tk.Settle(later, quota.Tokens(900))
	tk, would, _ = c.Shadow(later, Request{Key: carol, Set: all, Cost: quota.Tokens(200)}, quota.Tokens(200))
	if would.Action != WouldRefuse || would.Reason != ReasonBudget {
		t.Errorf("spent budget: %+v", would)
	}
	// Granted all the same, and charged: the key's usage follows reality.
	if st := c.Status(later); st.InFlight != 1 || keyUsed(st, "carol") != 1100 {
		t.Errorf("status: in flight %d, carol used %d; want 1 and 1,100", st.InFlight, keyUsed(st, "carol"))
	}
	tk.Settle(later, quota.Tokens(150))
	if b := l.Snapshot(later)[1]; b.Reserved != 0 || b.Used != 600+900+150 {
		t.Errorf("tpd after settling: used %d reserved %d, want 1,650 and 0", b.Used, b.Reserved)
	}
}

func keyUsed(st Status, name string) int64 {
	for _, k := range st.Keys {
		if k.Name == name {
			return k.UsedToday
		}
	}
	return -1
}
