package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headroomhq/headroom/internal/gateway"
)

// Step is how often Run samples the buckets: the page polls as often.
const Step = 2 * time.Second

const (
	hourPoints  = int(time.Hour / Step)
	dayPoints   = 24 * 60
	waitEvery   = time.Minute // queue-wait histograms for the p95
	waitKeep    = 61          // an hour of them
	gatherFresh = time.Second // pages polling together share a gather
)

//go:embed static
var static embed.FS

// Options are what a Dashboard reads.
type Options struct {
	// Status is the gateway's state at an instant (gateway.Gateway.Status).
	Status func(now time.Time) gateway.Status
	// Gatherer is the registry the gateway's metrics are on.
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
}

// Dashboard samples the gateway and serves the page and its data.
type Dashboard struct {
	status func(time.Time) gateway.Status
	gath   prometheus.Gatherer
	log    *slog.Logger
	now    func() time.Time // the page's requests; Sample takes its time

	mu        sync.Mutex
	names     []SeriesName
	hour, day *ring
	cur       minute
	// waits are the keys' queue-wait histograms every waitEvery, for the
	// last hour's p95.
	waits []waitSnapshot
	// gathered is the last gather, reused for gatherFresh.
	gathered   counters
	gatheredAt time.Time
}

type waitSnapshot struct {
	t     time.Time
	waits map[string][]uint64
}

// SeriesName says which bucket a column of the series is.
type SeriesName struct {
	Upstream string `json:"upstream"`
	Bucket   string `json:"bucket"`
	Kind     string `json:"kind"`
}

// New returns a Dashboard; Run must sample it.
func New(o Options) *Dashboard {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dashboard{status: o.Status, gath: o.Gatherer, log: log, now: time.Now, hour: newRing(hourPoints), day: newRing(dayPoints)}
}

// Run samples every Step until ctx ends.
func (d *Dashboard) Run(ctx context.Context) {
	t := time.NewTicker(Step)
	defer t.Stop()
	d.Sample(d.now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			d.Sample(now)
		}
	}
}

// Sample records the buckets at now, and the counters when they are due.
func (d *Dashboard) Sample(now time.Time) {
	st := d.status(now)
	var names []SeriesName
	var v []int64
	for _, u := range st.Upstreams {
		for _, b := range u.Buckets {
			names = append(names, SeriesName{Upstream: u.Name, Bucket: b.Name, Kind: b.KindName})
			v = append(v, b.Limit, b.Effective, b.Used, b.Reserved, int64(b.Queued))
		}
	}
	var c *counters
	d.mu.Lock()
	due := len(d.waits) == 0 || now.Sub(d.waits[len(d.waits)-1].t) >= waitEvery
	d.mu.Unlock()
	if due {
		if got, err := d.gather(now); err == nil {
			c = &got
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Equal(names, d.names) { // a new set of buckets: start again
		d.names, d.hour, d.day, d.cur = names, newRing(hourPoints), newRing(dayPoints), minute{}
	}
	ms := now.UnixMilli()
	d.hour.add(ms, v)
	if m := now.Unix() / 60; m != d.cur.start {
		if d.cur.have {
			d.day.add(d.cur.start*60_000, d.cur.v)
		}
		d.cur = minute{start: m}
	}
	d.cur.fold(v)
	if c != nil {
		d.waits = append(d.waits, waitSnapshot{t: now, waits: c.waits})
		if len(d.waits) > waitKeep {
			d.waits = slices.Delete(d.waits, 0, len(d.waits)-waitKeep)
		}
	}
}

// gather reads the registry, at most once per gatherFresh.
func (d *Dashboard) gather(now time.Time) (counters, error) {
	d.mu.Lock()
	if !d.gatheredAt.IsZero() && now.Sub(d.gatheredAt) < gatherFresh && now.After(d.gatheredAt) {
		c := d.gathered
		d.mu.Unlock()
		return c, nil
	}
	d.mu.Unlock()
	if d.gath == nil {
		return readCounters(nil), nil
	}
	mfs, err := d.gath.Gather()
	if err != nil {
		d.log.Warn("dashboard: gathering metrics failed", "error", err.Error())
		return counters{}, err
	}
	c := readCounters(mfs)
	d.mu.Lock()
	d.gathered, d.gatheredAt = c, now
	d.mu.Unlock()
	return c, nil
}

// View is the page's data: GET /v1/dashboard?hour=SEQ&day=SEQ returns the
// points after those sequence numbers (all of them without).
type View struct {
	Time   string       `json:"time"`
	StepMS int64        `json:"step_ms"`
	Series []SeriesName `json:"series"`
	Fields []string     `json:"fields"`
	Hour   Points       `json:"hour"`
	Day    Points       `json:"day"`
	// Status is /v1/status: the buckets (with their top consumers and
	// forecasts, when the gateway computes them) and the keys.
	Status    gateway.Status        `json:"status"`
	Throttles map[string]float64    `json:"throttles"`
	Upstream  float64               `json:"upstream_throttles_seen"`
	Policy    Policy                `json:"policy"`
	Keys      map[string]KeyFigures `json:"keys"`
}

// Points are a ring's points after a sequence number.
type Points struct {
	Seq int64 `json:"seq"`
	// Reset is set when the points are the whole ring, not a continuation.
	Reset bool      `json:"reset"`
	T     []int64   `json:"t"`
	V     [][]int64 `json:"v"`
}

// Policy is what the output policy did since serve started.
type Policy struct {
	Clamps      float64 `json:"clamps"`
	Cuts        float64 `json:"cuts"`
	CutTokens   float64 `json:"cut_tokens"`
	Escalations float64 `json:"escalations"`
}

// KeyFigures are a key's figures beyond /v1/status's.
type KeyFigures struct {
	// P95Wait is the 95th percentile of its admitted requests' queue wait
	// over the last hour, in seconds; nil without requests.
	P95Wait *float64 `json:"p95_wait_s"`
	keyCounters
}

func pointsOf(r *ring, since int64) Points {
	ps, whole := r.since(since)
	out := Points{Seq: r.seq, Reset: !whole || since == 0, T: make([]int64, 0, len(ps)), V: make([][]int64, 0, len(ps))}
	for _, p := range ps {
		out.T = append(out.T, p.t)
		out.V = append(out.V, p.v)
	}
	return out
}

// view builds the page's data at now.
func (d *Dashboard) view(now time.Time, hourSince, daySince int64) View {
	st := d.status(now)
	c, _ := d.gather(now)
	d.mu.Lock()
	defer d.mu.Unlock()
	v := View{Time: st.Time, StepMS: Step.Milliseconds(), Series: d.names,
		Fields: []string{"limit", "effective", "used", "reserved", "queued"},
		Hour:   pointsOf(d.hour, hourSince), Day: pointsOf(d.day, daySince), Status: st,
		Throttles: c.throttles, Upstream: c.upstreamThrottles,
		Policy: Policy{Clamps: c.clamps, Cuts: c.cuts, CutTokens: c.cutTokens, Escalations: c.escalations},
		Keys:   map[string]KeyFigures{}}
	if v.Series == nil {
		v.Series = []SeriesName{}
	}
	if v.Throttles == nil {
		v.Throttles = map[string]float64{}
	}
	var thenWaits map[string][]uint64
	if len(d.waits) > 0 && now.Sub(d.waits[0].t) >= time.Hour-waitEvery {
		thenWaits = d.waits[0].waits
	}
	for _, k := range st.Keys {
		f := KeyFigures{}
		if kc := c.perKey[k.Name]; kc != nil {
			f.keyCounters = *kc
		}
		if q, ok := quantile(0.95, c.waitBounds, thenWaits[k.Name], c.waits[k.Name]); ok {
			f.P95Wait = &q
		}
		v.Keys[k.Name] = f
	}
	return v
}

// ServeHTTP serves the page at / and its files under /dashboard/, and the
// data at /v1/dashboard. The gateway routes these here and guards the
// data with the operations token; the page itself holds no data.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the dashboard is read-only: use GET", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/v1/dashboard":
		q := r.URL.Query()
		hs, _ := strconv.ParseInt(q.Get("hour"), 10, 64)
		ds, _ := strconv.ParseInt(q.Get("day"), 10, 64)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(d.view(d.now(), hs, ds))
	case "/", "/index.html":
		d.file(w, "static/index.html", "text/html; charset=utf-8")
	case "/dashboard/app.js":
		d.file(w, "static/app.js", "text/javascript; charset=utf-8")
	case "/dashboard/app.css":
		d.file(w, "static/app.css", "text/css; charset=utf-8")
	default:
		http.NotFound(w, r)
	}
}

func (d *Dashboard) file(w http.ResponseWriter, name, ctype string) {
	b, err := static.ReadFile(name)
	if err != nil {
		http.Error(w, "missing "+name, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "no-cache")
	// The page loads only its own files and talks only to this gateway.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}
