package gateway

import (
	"context"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/forecast"
	"github.com/headroomhq/headroom/internal/metrics"
	"github.com/headroomhq/headroom/internal/quota"
)

// topConsumers is how many keys /v1/status and a spent bucket's 429 name.
const topConsumers = 3

// newTracker registers every upstream's buckets with a usage tracker.
func newTracker(ups []*Upstream, now time.Time) *forecast.Tracker {
	start, _ := ups[0].Ledger().DayWindow(now) // every upstream counts days alike (config.Windows)
	tr := forecast.NewTracker(now, start.Hour())
	for _, u := range ups {
		l := u.Ledger()
		u.series = make([]int, l.Len())
		for i := range u.series {
			u.series[i] = tr.Series(u.Name, l.Spec(i).Name)
		}
	}
	return tr
}

// record counts a settled cost in the usage tracker: its total against
// the key's budget, and in each bucket of set what that bucket counts.
func (ch *charge) record(cost quota.Cost) {
	l := ch.u.Ledger()
	var buf [8]forecast.Part
	parts := buf[:0]
	for m := ch.set; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(uint64(m))
		parts = append(parts, forecast.Part{Series: ch.u.series[i], Tokens: cost.Of(l.Spec(i).Kind)})
	}
	ch.g.usage.Record(ch.g.now(), ch.key, cost.Total(), parts)
}

// bucketStatus adds to u's buckets their recent use and, for the daily
// ones, their forecasts.
func (g *Gateway) bucketStatus(now time.Time, u *Upstream, bs []admission.BucketStatus, snap forecast.Snapshot) []BucketStatus {
	l := u.Ledger()
	_, dayEnd := l.DayWindow(now)
	out := make([]BucketStatus, len(bs))
	for i, b := range bs {
		su := snap.Series[u.series[i]]
		out[i] = BucketStatus{BucketStatus: b, Rates: su.Rates, Top5m: su.Top5m, TopToday: su.TopToday}
		if !b.Kind.Daily() {
			continue
		}
		var regains []forecast.Regain
		for _, r := range l.Regains(now, dayEnd, i) {
			regains = append(regains, forecast.Regain{At: r.At, Tokens: r.Tokens})
		}
		f := forecast.Project(forecast.Input{Name: g.bucketName(u, b.Name), Now: now, Left: b.Available, Limit: b.Effective,
			DayEnd: dayEnd, Regains: regains, Rates: su.Rates})
		out[i].Forecast = &f
	}
	return out
}

// budgetForecasts sets the forecast of every key with a daily budget.
// Budgets count days as the ledgers do.
func (g *Gateway) budgetForecasts(now time.Time, ks []KeyStatus, snap forecast.Snapshot) {
	_, dayEnd := g.ordered[0].Ledger().DayWindow(now)
	for i := range ks {
		k := &ks[i]
		if k.DailyBudget <= 0 {
			continue
		}
		f := forecast.Project(forecast.Input{Name: "key " + k.Name + "'s budget", Now: now, Left: k.DailyBudget - k.UsedToday,
			Limit: k.DailyBudget, DayEnd: dayEnd, Rates: snap.Keys[k.Name]})
		k.BudgetForecast = &f
	}
}

// bucketName names a bucket for people: with its upstream when there are
// several.
func (g *Gateway) bucketName(u *Upstream, bucket string) string {
	if len(g.ordered) > 1 {
		return "bucket " + u.Name + "/" + bucket
	}
	return "bucket " + bucket
}

// StateMetrics is what /metrics reads of the gateway at each scrape: the
// forecasts (seconds until each daily bucket and key budget runs out) and
// each key's queue.
func (g *Gateway) StateMetrics() metrics.State {
	now := g.now()
	s := g.Status(now)
	var st metrics.State
	for _, u := range s.Upstreams {
		for _, b := range u.Buckets {
			if b.Forecast != nil {
				low, high := b.Forecast.Seconds(now)
				st.Exhaustion = append(st.Exhaustion, metrics.Exhaustion{Upstream: u.Name, Bucket: b.Name, Low: low, High: high})
			}
		}
	}
	for _, k := range s.Keys {
		if k.BudgetForecast != nil {
			low, high := k.BudgetForecast.Seconds(now)
			st.Exhaustion = append(st.Exhaustion, metrics.Exhaustion{Key: k.Name, Low: low, High: high})
		}
		st.Keys = append(st.Keys, metrics.KeyQueue{Key: k.Name, Queued: k.Queued, InFlight: k.InFlight})
	}
	return st
}

// topConsumersNote names the heaviest users today of a spent daily bucket
// of u, for its 429: "; top consumers today: alice 61%, bob 22%".
func (g *Gateway) topConsumersNote(u *Upstream, bucket string) string {
	i, ok := u.Ledger().Index(bucket)
	if !ok {
		return ""
	}
	now := g.now()
	tr, _ := g.usageView(now)
	top := tr.Top(now, u.series[i], topConsumers)
	if len(top) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("; top consumers today: ")
	for j, c := range top {
		if j > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.0f%%", c.Key, 100*c.Share)
	}
	return b.String()
}

// UsageShare is where the replicas of a gateway pool their usage counts
// (internal/store/redisstore implements it on Redis).
type UsageShare interface {
	// PublishCounts adds counts to the pool; start is when this replica
	// began counting.
	PublishCounts(ctx context.Context, start time.Time, counts []forecast.Count) error
	// FetchCounts returns the pool's counts of the last forecast.Minutes
	// minutes up to minute and of day, and when the earliest replica began
	// counting.
	FetchCounts(ctx context.Context, minute, day int64) ([]forecast.Count, time.Time, error)
}

// pooledUsage is every replica's counts as last fetched.
type pooledUsage struct {
	tr *forecast.Tracker
	at time.Time
}

// maxUnsent bounds the counts kept for a pool that does not answer.
const maxUnsent = 100_000

// ShareUsage publishes this replica's usage counts to the pool every
// interval and fetches every replica's, which the top consumers, rates and
// forecasts then show, until ctx ends. It does nothing without
// Options.UsageShare. While the pool does not answer, they show this
// replica's own counts again after a few intervals.
func (g *Gateway) ShareUsage(ctx context.Context, every time.Duration) {
	if g.pool == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var unsent []forecast.Count
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		unsent = append(unsent, g.usage.Take()...)
		if len(unsent) > maxUnsent {
			unsent = unsent[len(unsent)-maxUnsent:]
		}
		err := g.pool.PublishCounts(ctx, g.usage.Start(), unsent)
		if err == nil {
			unsent = unsent[:0]
			err = g.fetchPooled(ctx)
		}
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			g.log.Warn("sharing usage counts with the other replicas failed: top consumers and forecasts show this replica's own until it works", "err", err)
			failing = true
		case err == nil && failing:
			g.log.Info("sharing usage counts with the other replicas works again")
			failing = false
		}
	}
}

// fetchPooled builds the view of every replica's counts.
func (g *Gateway) fetchPooled(ctx context.Context) error {
	now := g.now()
	minute, day := g.usage.MinuteDay(now)
	counts, start, err := g.pool.FetchCounts(ctx, minute, day)
	if err != nil {
		return err
	}
	if start.IsZero() || start.After(g.usage.Start()) {
		start = g.usage.Start()
	}
	tr := forecast.Load(now, start, g.usage.ResetHour(), g.usage.Names(), counts)
	g.pooled.Store(&pooledUsage{tr: tr, at: now})
	// Keys' daily budgets count every replica's settlements: enforced at
	// once here (the shared ledger enforces them at its reserve anyway),
	// and judged whole in shadow mode.
	if today := tr.KeysToday(now); len(today) > 0 {
		for _, u := range g.ordered {
			u.Admission.RaiseKeysToday(now, today)
		}
	}
	return nil
}

// pooledFresh is how long a pooled view stands in for this replica's own.
const pooledFresh = 10 * time.Second

// usageView is the counts the top consumers and forecasts show at now:
// every replica's when pooled recently, else this replica's own.
func (g *Gateway) usageView(now time.Time) (tr *forecast.Tracker, pooled bool) {
	if p := g.pooled.Load(); p != nil && now.Sub(p.at) < pooledFresh {
		return p.tr, true
	}
	return g.usage, false
}
