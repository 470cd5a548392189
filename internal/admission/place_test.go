package admission

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
)

// twoRegions is a route of two upstreams, each with one TPM of 600 (10
// tokens/s), sharing key budgets as a server's controllers do.
func twoRegions() (east, west *Controller) {
	b := NewBudgets()
	l := func() *quota.Ledger {
		return quota.NewLedger([]quota.BucketSpec{{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 600}}, quota.Windows{}, t0)
	}
	return New(l(), Options{Budgets: b}), New(l(), Options{Budgets: b})
}

func cands(k Key, cost int64, deadline time.Time, cs ...*Controller) []Candidate {
	var out []Candidate
	for _, c := range cs {
		out = append(out, Candidate{C: c, Req: Request{Key: k, Set: 1, Cost: quota.Tokens(cost), Deadline: deadline}})
	}
	return out
}

func winner(t *testing.T, g *Group) int {
	t.Helper()
	i, tk := g.Winner()
	if (i >= 0) != (tk != nil) {
		t.Fatalf("Winner() = %d, %v", i, tk)
	}
	if tk != nil && tk.State() != Granted {
		t.Fatalf("winner's ticket is %v", tk.State())
	}
	return i
}

func TestPlacePrefersFirstWithRoom(t *testing.T) {
	east, west := twoRegions()
	deadline := t0.Add(time.Minute)
	// East has room: the request goes there, and west never sees it.
	g, err := Place(t0, cands(alice, 400, deadline, east, west))
	if err != nil {
		t.Fatal(err)
	}
	if got := winner(t, g); got != 0 {
		t.Fatalf("first request placed on candidate %d, want 0 (east has room)", got)
	}
	if st := west.Status(t0); st.Queued != 0 || st.InFlight != 0 {
		t.Errorf("west: %d queued, %d in flight; want nothing", st.Queued, st.InFlight)
	}
	// East holds 400 of 600: the next 400 goes west at once, not queued
	// behind east.
	g2, err := Place(t0, cands(bob, 400, deadline, east, west))
	if err != nil {
		t.Fatal(err)
	}
	if got := winner(t, g2); got != 1 {
		t.Fatalf("second request placed on candidate %d, want 1 (west has room, east not)", got)
	}
	if st := east.Status(t0); st.Queued != 0 {
		t.Errorf("east still queues %d tickets of a request west admitted", st.Queued)
	}
}

func TestPlaceWaitsForFirstThatFrees(t *testing.T) {
	east, west := twoRegions()
	deadline := t0.Add(time.Minute)
	var held []*Ticket
	for range 2 { // fill both
		g, err := Place(t0, cands(alice, 600, deadline, east, west))
		if err != nil {
			t.Fatal(err)
		}
		_, tk := g.Winner()
		held = append(held, tk)
	}
	g, err := Place(t0, cands(bob, 300, deadline, east, west))
	if err != nil {
		t.Fatal(err)
	}
	if i := winner(t, g); i != -1 {
		t.Fatalf("placed on %d while both are full", i)
	}
	if east.Status(t0).Queued != 1 || west.Status(t0).Queued != 1 {
		t.Fatal("the waiting request should queue on both candidates")
	}
	// West's request ends first, refunding all: west frees first.
	held[1].Cancel(t0.Add(time.Second))
	if i := winner(t, g); i != 1 {
		t.Fatalf("placed on %d, want 1 (west freed first)", i)
	}
	if q := east.Status(t0.Add(time.Second)).Queued; q != 0 {
		t.Errorf("east still queues %d after west granted the request", q)
	}
	// East frees later: nothing of bob's is granted there.
	held[0].Cancel(t0.Add(2 * time.Second))
	if st := east.Status(t0.Add(2 * time.Second)); st.InFlight != 0 || st.Queued != 0 {
		t.Errorf("east: %d in flight, %d queued after the group was granted west", st.InFlight, st.Queued)
	}
}

func TestPlaceSkipsTooLargeAndRefusesWhenAllDo(t *testing.T) {
	b := NewBudgets()
	zero := New(quota.NewLedger([]quota.BucketSpec{{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 0}}, quota.Windows{}, t0), Options{Budgets: b})
	ok := New(quota.NewLedger([]quota.BucketSpec{{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 600}}, quota.Windows{}, t0), Options{Budgets: b})
	g, err := Place(t0, cands(alice, 100, t0.Add(time.Minute), zero, ok))
	if err != nil {
		t.Fatal(err)
	}
	if i := winner(t, g); i != 1 {
		t.Fatalf("placed on %d, want 1 (the quota-0 upstream can never admit it)", i)
	}
	_, err = Place(t0, cands(alice, 100, t0.Add(time.Minute), zero))
	var big *TooLarge
	if !errors.As(err, &big) {
		t.Fatalf("Place on the quota-0 upstream alone: %v, want *TooLarge", err)
	}
	// Both full and no wait allowed: the refusal that ends soonest.
	east, west := twoRegions()
	Place(t0, cands(alice, 600, t0.Add(time.Minute), east))
	Place(t0, cands(alice, 300, t0.Add(time.Minute), west))
	_, err = Place(t0, cands(bob, 500, t0, east, west))
	var ref *Refusal
	if !errors.As(err, &ref) {
		t.Fatalf("Place on two full upstreams without waiting: %v, want *Refusal", err)
	}
	if ref.RetryAfter > 30*time.Second {
		t.Errorf("RetryAfter %v: want west's (200 more tokens at 10/s, 20 s), not east's", ref.RetryAfter)
	}
}

func TestPlaceBudgetCountsOnce(t *testing.T) {
	east, west := twoRegions()
	k := Key{Name: "dave", DailyTokens: 1000}
	for range 2 {
		g, _ := Place(t0, cands(alice, 600, t0.Add(time.Minute), east, west))
		_, tk := g.Winner()
		tk.Settle(t0, quota.Tokens(600)) // consumed: drains at 10 tokens/s
	}
	g, err := Place(t0, cands(k, 500, t0.Add(time.Minute), east, west))
	if err != nil {
		t.Fatal(err)
	}
	// Waiting on both: nothing is charged to the budget yet.
	if used := east.Status(t0).Keys; len(used) == 0 {
		t.Fatal("no key status")
	}
	for _, c := range []*Controller{east, west} {
		for _, ks := range c.Status(t0).Keys {
			if ks.Name == "dave" && ks.UsedToday != 0 {
				t.Fatalf("dave's budget charged %d while waiting", ks.UsedToday)
			}
		}
	}
	now := t0.Add(time.Minute) // both refill at once: one pump grants, the other must not
	east.Pump(now)
	west.Pump(now)
	if winner(t, g) < 0 {
		t.Fatal("not granted after both refilled")
	}
	for _, c := range []*Controller{east, west} {
		st := c.Status(now)
		for _, ks := range st.Keys {
			if ks.Name == "dave" && ks.UsedToday != 500 {
				t.Errorf("dave's budget use %d, want 500 (counted once)", ks.UsedToday)
			}
		}
	}
	if n := east.Status(now).InFlight + west.Status(now).InFlight; n != 1 {
		t.Errorf("%d requests in flight across the route, want 1", n)
	}
}

func TestAdmitAnyBlocksUntilOneFrees(t *testing.T) {
	b := NewBudgets()
	mk := func() *Controller {
		return New(quota.NewLedger([]quota.BucketSpec{{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 1000}}, quota.Windows{}, time.Now()), Options{Budgets: b, MaxInFlight: 1})
	}
	east, west := mk(), mk()
	c := func(k Key, cs ...*Controller) []Candidate {
		var out []Candidate
		for _, x := range cs {
			out = append(out, Candidate{C: x, Req: Request{Key: k, Set: 1, Cost: quota.Tokens(1)}})
		}
		return out
	}
	ctx := context.Background()
	_, a, err := AdmitAny(ctx, c(alice, east, west))
	if err != nil {
		t.Fatal(err)
	}
	i, b2, err := AdmitAny(ctx, c(bob, east, west))
	if err != nil || i != 1 {
		t.Fatalf("second AdmitAny = %d, %v; want west", i, err)
	}
	done := make(chan int)
	go func() {
		i, tk, err := AdmitAny(ctx, c(carol, east, west))
		if err != nil {
			t.Error(err)
		}
		tk.Cancel(time.Now())
		done <- i
	}()
	time.Sleep(20 * time.Millisecond)
	b2.Cancel(time.Now())
	if got := <-done; got != 1 {
		t.Errorf("third request went to %d, want 1 (west freed)", got)
	}
	a.Cancel(time.Now())
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	_, a2, _ := AdmitAny(ctx, c(alice, east))
	if _, _, err := AdmitAny(ctx2, c(bob, east)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("AdmitAny past its context: %v", err)
	}
	if st := east.Status(time.Now()); st.Queued != 0 {
		t.Errorf("%d left queued after the context ended", st.Queued)
	}
	a2.Cancel(time.Now())
}

// TestPlaceFairAcrossRoute: a heavy key (eight requests always queued) and
// a light key (two) on a route of two upstreams, each request on both
// candidates: the route's capacity is shared evenly (Jain's index of the
// tokens served at least 0.9) on a virtual clock, however unequal the
// backlogs.
func TestPlaceFairAcrossRoute(t *testing.T) {
	east, west := twoRegions()
	ctrls := []*Controller{east, west}
	type live struct {
		g   *Group
		key string
	}
	backlog := map[string]int{"heavy": 8, "light": 2}
	queued := map[string]int{}
	served := map[string]int64{}
	var waiting []live
	type running struct {
		t   *Ticket
		end time.Time
	}
	var inflight []running
	var now time.Time
	for step := 0; step < 6000; step++ { // 10 virtual minutes, 100 ms steps
		now = t0.Add(time.Duration(step) * 100 * time.Millisecond)
		// Requests end a second after their grant, costing what they reserved.
		keep := inflight[:0]
		for _, r := range inflight {
			if now.Before(r.end) {
				keep = append(keep, r)
				continue
			}
			r.t.Settle(now, quota.Tokens(100))
		}
		inflight = keep
		for _, c := range ctrls {
			c.Pump(now)
		}
		left := waiting[:0]
		for _, w := range waiting {
			if _, tk := w.g.Winner(); tk != nil {
				served[w.key] += 100
				queued[w.key]--
				inflight = append(inflight, running{tk, now.Add(time.Second)})
				continue
			}
			if w.g.Err() != nil {
				queued[w.key]--
				continue
			}
			left = append(left, w)
		}
		waiting = left
		for _, k := range []string{"heavy", "light"} {
			for queued[k] < backlog[k] {
				g, err := Place(now, cands(Key{Name: k}, 100, now.Add(time.Minute), east, west))
				if err != nil {
					t.Fatal(err)
				}
				queued[k]++
				waiting = append(waiting, live{g, k})
			}
		}
	}
	h, l := float64(served["heavy"]), float64(served["light"])
	jain := (h + l) * (h + l) / (2 * (h*h + l*l))
	t.Logf("served: heavy %v, light %v tokens (route capacity 1,200/min for 10 min); Jain %.3f", h, l, jain)
	if jain < 0.9 {
		t.Errorf("Jain's index %.3f < 0.9: heavy %v, light %v", jain, h, l)
	}
	if h+l < 10_000 {
		t.Errorf("served %v tokens in 10 minutes of 1,200/min: the route's capacity went unused", h+l)
	}
}
