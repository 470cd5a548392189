package gateway

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/upstream"
)

// Why a request was served by its upstream (the reason label of
// headroom_routed_requests_total, the log's route field, /v1/status).
const (
	ReasonPreferred    = "preferred"     // the route's first choice, with room
	ReasonWeighted     = "weighted"      // drawn by the route's weights
	ReasonAffinity     = "affinity"      // the upstream that served the session last
	ReasonOverflow     = "overflow"      // the first choice had no room now; this one had
	ReasonPreferredOut = "preferred_out" // the first choice is out of the route (circuit breaker)
	ReasonFailover     = "failover"      // an upstream before it failed this request before the first byte
)

// RouteOptions is how a route spreads its requests (config.Route).
type RouteOptions struct {
	// Weights maps upstream names to the share of first choices they get
	// (smooth weighted round robin); nil keeps preference order.
	Weights map[string]float64
	// Affinity prefers the upstream that served the request's session
	// (HeaderSession) last.
	Affinity bool
}

// placement is one upstream a request may be sent to, as that upstream
// counts and names it.
type placement struct {
	u     *Upstream
	model bedrock.Model // as sent to u (ID rewritten for it)
	set   quota.Set
	cost  quota.Cost
}

// plan is a request's route: its candidate upstreams in the order they
// are tried, and why the first is first.
type plan struct {
	ups      []*Upstream
	reason   string // of ups[0]
	affinity bool   // remember the session's upstream
}

// route finds the upstreams that may serve a model for a key, in the
// order to try them: the session's last upstream first (affinity), else
// the weighted or first choice, then the rest as listed; upstreams out of
// the route (circuit breaker) are left out unless none is left. The
// Bedrock operations exist only on bedrock-runtime: a Mantle upstream is
// passed over for them. All candidates share the first one's service, so
// that one rewritten body fits them all.
func (g *Gateway) plan(m bedrock.Model, key string, op bedrock.Operation, session string) (plan, error) {
	names := g.route(m.Base, key)
	var ups []*Upstream
	for _, name := range names {
		u := g.upstreams[name]
		if u == nil || !op.Anthropic() && u.Client.Service() != upstream.ServiceRuntime || slices.Contains(ups, u) {
			continue
		}
		if ups == nil {
			ups = u.alone // the common one-upstream route allocates nothing
			continue
		}
		if len(ups) == 1 && cap(ups) == 1 {
			ups = append(make([]*Upstream, 0, len(names)), ups[0])
		}
		ups = append(ups, u)
	}
	if len(ups) == 0 {
		if len(names) > 0 {
			return plan{}, bedrock.Errorf(bedrock.ValidationException,
				"%s needs a bedrock-runtime upstream, and Headroom routes model %s (for this key) only to bedrock-mantle upstreams %v, which serve the Messages API alone; use the Messages API (/v1/messages) or ask the operator to route this model to a bedrock-runtime upstream",
				op, m.ID, names)
		}
		return plan{}, bedrock.Errorf(bedrock.ValidationException,
			"Headroom has no route for model %s (for this key); ask the operator to add one", m.ID)
	}
	if len(ups) == 1 {
		return plan{ups: ups, reason: ReasonPreferred}, nil
	}
	opts := RouteOptions{Affinity: true}
	if g.routing != nil {
		opts = g.routing(m.Base, key)
	}
	p := plan{ups: ups, reason: ReasonPreferred, affinity: opts.Affinity}
	if len(opts.Weights) > 0 {
		if first := g.upstreams[g.wrr.next(names, opts.Weights)]; first != nil && slices.Contains(ups, first) {
			p.ups = moveFirst(ups, first)
			p.reason = ReasonWeighted
		}
	}
	if opts.Affinity && session != "" {
		if last := g.upstreams[g.sessions.get(session)]; last != nil && slices.Contains(ups, last) {
			p.ups = moveFirst(p.ups, last)
			p.reason = ReasonAffinity
		}
	}
	now := g.now()
	in := p.ups[:0:0]
	for _, u := range p.ups {
		if u.brk.allow(now, g.breakerOpts) {
			in = append(in, u)
		}
	}
	if len(in) > 0 && len(in) < len(p.ups) {
		if in[0] != p.ups[0] {
			p.reason = ReasonPreferredOut
		}
		p.ups = in
	}
	// Every candidate gets the body rewritten for the first one's service.
	svc := p.ups[0].Client.Service()
	p.ups = slices.DeleteFunc(slices.Clone(p.ups), func(u *Upstream) bool { return u.Client.Service() != svc })
	return p, nil
}

// moveFirst returns ups with u moved to the front (a new slice).
func moveFirst(ups []*Upstream, u *Upstream) []*Upstream {
	out := make([]*Upstream, 0, len(ups))
	out = append(out, u)
	for _, o := range ups {
		if o != u {
			out = append(out, o)
		}
	}
	return out
}

// placements finds, for each candidate, the model ID to send it and the
// buckets that draws from. A candidate that mirrors no quota for the model
// is passed over while another does; when none does, the first one's
// error is returned.
func (g *Gateway) placements(p plan, m bedrock.Model) ([]placement, error) {
	out := make([]placement, 0, len(p.ups))
	var first error
	for _, u := range p.ups {
		um := u.modelFor(m)
		set := u.set(um)
		if err := u.matched(um, set); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		out = append(out, placement{u: u, model: um, set: set})
	}
	if len(out) == 0 {
		return nil, first
	}
	return out, nil
}

// placeOn admits a request on the first of pls whose mirror admits it
// now, or else on the first that frees before req.Deadline
// (admission.AdmitAny), and returns the placement's index.
func (g *Gateway) placeOn(ctx context.Context, pls []placement, req admission.Request) (int, *admission.Ticket, error) {
	if len(pls) == 1 {
		req.Set, req.Cost = pls[0].set, pls[0].cost
		t, err := pls[0].u.Admission.Admit(ctx, req)
		return 0, t, err
	}
	cands := make([]admission.Candidate, len(pls))
	for j, pl := range pls {
		r := req
		r.Set, r.Cost = pl.set, pl.cost
		cands[j] = admission.Candidate{C: pl.u.Admission, Req: r}
	}
	return admission.AdmitAny(ctx, cands)
}

// admitPlaced is placeOn for a request's admission: the wait is counted,
// and a refusal turned into what the client sees.
func (g *Gateway) admitPlaced(ctx context.Context, pls []placement, req admission.Request, c *call) (int, *admission.Ticket, error) {
	begin := g.now()
	i, t, err := g.placeOn(ctx, pls, req)
	waited := g.now().Sub(begin)
	c.queued += waited
	if err != nil {
		g.m.QueueWait.WithLabelValues("refused").Observe(waited.Seconds())
		c.throttle = throttleKind(err)
		return -1, nil, g.refusalError(err, refusedBy(pls, err))
	}
	g.m.QueueWait.WithLabelValues("admitted").Observe(waited.Seconds())
	g.m.KeyQueueWait.WithLabelValues(req.Key.Name).Observe(waited.Seconds())
	c.reserved = pls[i].cost.Total()
	return i, t, nil
}

// refusedBy is the candidate whose ledger has the bucket a refusal names
// (the first candidate when it names none).
func refusedBy(pls []placement, err error) *Upstream {
	var ref *admission.Refusal
	if errors.As(err, &ref) && ref.Bucket != "" {
		for _, pl := range pls {
			if _, ok := pl.u.Ledger().Index(ref.Bucket); ok {
				return pl.u
			}
		}
	}
	return pls[0].u
}

// served records which upstream serves a request and why.
func (g *Gateway) served(c *call, u *Upstream, reason, session string, affinity bool) {
	c.upstream, c.route = u.Name, reason
	g.m.RoutedRequests.WithLabelValues(u.Name, reason).Inc()
	u.servedBy(reason)
	if affinity && session != "" {
		g.sessions.put(session, u.Name)
	}
}

// modelFor is the model as this upstream is asked for it: the client's ID
// with its geography prefix rewritten (ModelPrefix), or the ID or profile
// ARN ModelIDs maps it to. An ARN is never rewritten by the prefix.
func (u *Upstream) modelFor(m bedrock.Model) bedrock.Model {
	id := ""
	for _, sub := range u.modelIDKeys {
		if strings.Contains(m.Base, sub) {
			id = u.ModelIDs[sub]
			break
		}
	}
	if id == "" && u.ModelPrefix != "" && m.Region == "" && !strings.HasPrefix(m.ID, "arn:") {
		id = m.Base
		if u.ModelPrefix != "none" {
			id = u.ModelPrefix + "." + m.Base
		}
	}
	if id == "" || id == m.ID {
		return m
	}
	um, err := bedrock.ParseModel(id)
	if err != nil {
		return m // config validation keeps this from happening
	}
	if strings.HasPrefix(id, "arn:") {
		// A profile ARN names no foundation model: it runs the client's.
		um.Base = m.Base
	}
	return um
}

// wrr is smooth weighted round robin (as nginx spreads upstreams): each
// route's first choices follow its weights, evenly interleaved.
type wrr struct {
	mu     sync.Mutex
	routes map[string]map[string]float64 // route (names joined) -> upstream -> current
}

// maxWRRRoutes bounds the state: routes come from the configuration, but
// a key-and-model lookup could in principle return many lists.
const maxWRRRoutes = 1024

// next returns the name of the route's next first choice ("" when no
// upstream has a positive weight).
func (w *wrr) next(names []string, weights map[string]float64) string {
	key := strings.Join(names, "\x00")
	w.mu.Lock()
	defer w.mu.Unlock()
	cur := w.routes[key]
	if cur == nil {
		if w.routes == nil || len(w.routes) >= maxWRRRoutes {
			w.routes = map[string]map[string]float64{}
		}
		cur = map[string]float64{}
		w.routes[key] = cur
	}
	best, total := "", 0.0
	for _, n := range names {
		wt := weights[n]
		if !(wt > 0) {
			continue
		}
		cur[n] += wt
		total += wt
		if best == "" || cur[n] > cur[best] {
			best = n
		}
	}
	if best != "" {
		cur[best] -= total
	}
	return best
}

// sessions remembers the upstream that served each session last, for
// cache affinity; bounded, oldest forgotten first.
type sessions struct {
	mu    sync.Mutex
	last  map[string]string
	order []string // insertion order, for eviction
}

// maxSessions bounds the affinity memory (session IDs come from clients).
const maxSessions = 10000

func (s *sessions) get(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[id]
}

func (s *sessions) put(id, upstream string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]string{}
	}
	if _, ok := s.last[id]; !ok {
		if len(s.order) >= maxSessions {
			delete(s.last, s.order[0])
			s.order = s.order[1:]
		}
		s.order = append(s.order, id)
	}
	s.last[id] = upstream
}

// reroute places ex again after the upstream ex.u refused it before the
// first byte with cause (a throttle, an unavailable upstream, a lost
// connection). Its reservation is given back first. Then the request goes
// at once to an upstream of its route that has not refused it yet and has
// room now (a failover). When none has, it pauses (backoff, growing with
// attempt) and waits in the fair queue of every upstream of its route until
// its deadline, the first that frees taking it: those that refused it
// least recently first, one whose day is spent (a daily throttle) not at
// all, one out of the route (circuit breaker) only when no other is left.
// So a request is never handed an upstream's refusal while any upstream
// of its route may still serve it within its wait.
//
// capped limits the attempts to maxAttempts (failures that are not
// throttles: a broken upstream is not waited on for a whole deadline). It
// reports whether the request was placed; when not, refused is the
// queue's refusal (nil when the deadline, the attempts or the route left
// nothing to wait for).
func (g *Gateway) reroute(r *http.Request, ex *exchange, c *call, cause string, capped bool, attempt int) (placed bool, refused error) {
	ex.ch.cancel()
	ex.refused(cause == causeDailyQuota)
	ctx := r.Context()
	if untried := ex.candidates(true); len(untried) > 0 {
		req := ex.req
		req.Deadline = g.now() // at once: no waiting behind a fuller upstream
		if j, t, err := g.placeOn(ctx, ex.pick(untried), req); err == nil {
			g.m.Failovers.WithLabelValues(ex.u.Name, cause).Inc()
			g.moveTo(ex, c, untried[j], t, cause)
			return true, nil
		}
	}
	all := ex.candidates(false)
	if len(all) == 0 { // every upstream's day is spent: nothing to wait for
		return false, nil
	}
	if capped && attempt >= maxAttempts || !g.pause(ctx, ex.req.Deadline, attempt) {
		return false, nil
	}
	if in := g.inRoute(ex, all); len(in) > 0 {
		all = in
	}
	j, t, err := g.admitPlaced(ctx, ex.pick(all), ex.req, c)
	if err != nil {
		return false, err
	}
	if all[j] == ex.cur {
		ex.ch.renew(t)
		class := upstream.Throttled // the metric's class label
		if capped {
			class = upstream.Retryable
		}
		g.m.UpstreamRetries.WithLabelValues(ex.u.Name, class.String()).Inc()
		return true, nil
	}
	g.m.Failovers.WithLabelValues(ex.u.Name, cause).Inc()
	g.moveTo(ex, c, all[j], t, cause)
	return true, nil
}

// refused records that the current placement refused the request: it
// goes to the end of the order to try (spent: out of it).
func (ex *exchange) refused(spent bool) {
	if ex.order == nil {
		ex.order = make([]int, len(ex.pls))
		for i := range ex.order {
			ex.order[i] = i
		}
	}
	ex.failed |= 1 << ex.cur
	ex.order = slices.DeleteFunc(ex.order, func(i int) bool { return i == ex.cur })
	if !spent {
		ex.order = append(ex.order, ex.cur)
	}
}

// candidates returns the placements (indices) to try next, in order; only
// those that have not refused the request when untried.
func (ex *exchange) candidates(untried bool) []int {
	var out []int
	for _, i := range ex.order {
		if !untried || ex.failed&(1<<i) == 0 {
			out = append(out, i)
		}
	}
	return out
}

// pick returns the placements at idx.
func (ex *exchange) pick(idx []int) []placement {
	out := make([]placement, len(idx))
	for k, i := range idx {
		out[k] = ex.pls[i]
	}
	return out
}

// inRoute returns those of idx whose upstream is in its routes (or due a
// probe) now.
func (g *Gateway) inRoute(ex *exchange, idx []int) []int {
	now := g.now()
	var in []int
	for _, i := range idx {
		if ex.pls[i].u.brk.allow(now, g.breakerOpts) {
			in = append(in, i)
		}
	}
	return in
}

// moveTo sends ex to placement i, admitted there with t, after the
// upstream before it refused the request with cause.
func (g *Gateway) moveTo(ex *exchange, c *call, i int, t *admission.Ticket, cause string) {
	pl := ex.pls[i]
	g.log.Info("request failed over", "request_id", c.rid, "from", ex.u.Name, "to", pl.u.Name, "cause", cause)
	ex.cur = i
	ex.u, ex.call.ModelID = pl.u, pl.model.ID
	ex.req.Set, ex.req.Cost = pl.set, pl.cost
	ex.ch.move(pl, t)
	c.reserved = pl.cost.Total()
	ex.inflight.Dec()
	ex.inflight = g.m.InFlight.WithLabelValues(pl.u.Name)
	ex.inflight.Inc()
	c.upstreamModel = ""
	if pl.model.ID != c.model {
		c.upstreamModel = pl.model.ID
	}
	g.served(c, pl.u, ReasonFailover, ex.session, ex.affinity)
}
