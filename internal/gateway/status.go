package gateway

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/forecast"
)

// Status is the gateway at one instant, as GET /v1/status shows it: each
// upstream once with its buckets and queue, then each key once with its
// own figures (summed over upstreams) and only the daily buckets it used.
// Earlier versions nested the keys in every upstream and repeated every
// daily bucket in every key; the field names are those of then.
type Status struct {
	Time string `json:"time"`
	Day  string `json:"day"`
	// Mode is policy.enforcement: enforce or shadow; Shadow is shadow
	// mode's record (shadow.go), absent in enforce mode.
	Mode      string             `json:"mode"`
	Shadow    *ShadowStatus      `json:"shadow,omitempty"`
	Upstreams []UpstreamStatus   `json:"upstreams"`
	Keys      []KeyStatus        `json:"keys"`
	Estimates map[string]float64 `json:"input_estimate_factors"`
}

// UpstreamStatus is one upstream's controller: queue, requests in flight
// and every bucket of its ledger.
type UpstreamStatus struct {
	Name        string         `json:"name"`
	Region      string         `json:"region"`
	Queued      int            `json:"queued"`
	InFlight    int            `json:"in_flight"`
	MaxInFlight int            `json:"max_in_flight,omitempty"`
	Settling    int            `json:"settling,omitempty"`
	Buckets     []BucketStatus `json:"buckets"`
	// Routing is the upstream's circuit breaker and the requests it
	// served, by why it was chosen.
	Routing RouteStatus `json:"routing"`
	// SharedLedger is how the ledger shared with the other replicas runs
	// (with Redis only): shared, refusing, or local_share while Redis
	// does not answer.
	SharedLedger *admission.SharedState `json:"shared_ledger,omitempty"`
}

// BucketStatus is one bucket of an upstream: the ledger's state, its
// recent rates and top consumers, and for a daily bucket when it runs out
// at the recent rate (forecast.go).
type BucketStatus struct {
	admission.BucketStatus
	Rates forecast.Rates `json:"tokens_per_minute"`
	// Top5m and TopToday are the keys that used it most over the last five
	// minutes and today, heaviest first, with their shares (0-1).
	Top5m    []forecast.Consumer `json:"top_5m"`
	TopToday []forecast.Consumer `json:"top_today"`
	Forecast *forecast.Forecast  `json:"forecast,omitempty"`
}

// KeyStatus is one key over every upstream. UsedToday and HeldNow are its
// budget use (counted once per admission.Budgets, so once when the
// upstreams share them, as serve's do); Requests, InFlight and Queued are
// summed over upstreams.
type KeyStatus struct {
	Name        string  `json:"name"`
	Weight      float64 `json:"weight"`
	DailyBudget int64   `json:"daily_budget,omitempty"`
	UsedToday   int64   `json:"used_today"`
	HeldNow     int64   `json:"held_now"`
	Requests    int64   `json:"requests_today"`
	InFlight    int     `json:"in_flight"`
	Queued      int     `json:"queued"`
	// Protected lists the daily buckets the key used today; in the others
	// its protected share is Weight × the bucket's protected_per_weight.
	Protected []KeyShare `json:"protected,omitempty"`
	// BudgetForecast is when the key's daily budget runs out at its recent
	// rate, for a key with a budget.
	BudgetForecast *forecast.Forecast `json:"budget_forecast,omitempty"`
}

// KeyShare is a key's use and protected share of one upstream's daily bucket.
type KeyShare struct {
	Upstream string `json:"upstream"`
	admission.KeyShare
}

// Status returns the gateway's state at now.
func (g *Gateway) Status(now time.Time) Status {
	out := Status{Time: now.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Estimates: g.estimator.snapshot(),
		Upstreams: []UpstreamStatus{}, Keys: []KeyStatus{}, Mode: "enforce"}
	if g.shadow {
		out.Mode, out.Shadow = "shadow", g.record.status()
	}
	tr, pooled := g.usageView(now)
	snap := tr.Snapshot(now, topConsumers)
	index := map[string]int{}
	counted := map[string][]*admission.Budgets{} // per key, the budgets already added in
	for _, u := range g.ordered {
		st := u.Admission.Status(now)
		out.Day = st.Day
		out.Upstreams = append(out.Upstreams, UpstreamStatus{Name: u.Name, Region: u.Client.Region(), Queued: st.Queued,
			InFlight: st.InFlight, MaxInFlight: st.MaxInFlight, Settling: st.Settling, Buckets: g.bucketStatus(now, u, st.Buckets, snap),
			Routing: u.RouteStatus(), SharedLedger: st.Shared})
		b := u.Admission.Budgets()
		for _, k := range st.Keys {
			i, ok := index[k.Name]
			if !ok {
				i = len(out.Keys)
				index[k.Name] = i
				out.Keys = append(out.Keys, KeyStatus{Name: k.Name, Weight: k.Weight, DailyBudget: k.DailyBudget})
			}
			ks := &out.Keys[i]
			if !slices.Contains(counted[k.Name], b) {
				counted[k.Name] = append(counted[k.Name], b)
				ks.UsedToday += k.UsedToday
				ks.HeldNow += k.HeldNow
			}
			ks.Requests += k.Requests
			ks.InFlight += k.InFlight
			ks.Queued += k.Queued
			for _, p := range k.Protected {
				ks.Protected = append(ks.Protected, KeyShare{Upstream: u.Name, KeyShare: p})
			}
		}
	}
	if pooled {
		// Every replica's settlements: the key's day across the account.
		for i := range out.Keys {
			out.Keys[i].UsedToday = max(out.Keys[i].UsedToday, tr.Today(now, out.Keys[i].Name))
		}
	}
	slices.SortFunc(out.Keys, func(a, b KeyStatus) int { return strings.Compare(a.Name, b.Name) })
	g.budgetForecasts(now, out.Keys, snap)
	return out
}

// serveStatus answers GET /v1/status, for `headroom doctor`, the dashboard
// and scripts.
func (g *Gateway) serveStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(g.Status(g.now()))
}
