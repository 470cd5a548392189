package gateway

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/metrics"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/upstream"
)

// handle is the one request path every model call takes, whichever front
// door it came in by (d): authenticate, read the body once, find the model
// and the admission fields, apply the max_tokens policy, estimate, admit,
// send with retries, pass the answer through while metering it, settle.
// rawModel is the model segment of a Bedrock path ("" for the Messages
// API, whose body names the model).
func (g *Gateway) handle(w *responseWriter, r *http.Request, d door, rawModel string, c *call) error {
	k, err := g.authenticate(r)
	if err != nil {
		return err
	}
	c.key = k.Name
	body, err := g.readBody(w, r)
	if err != nil {
		return err
	}
	p, err := d.read(c.op, body, rawModel)
	if err != nil {
		return err
	}
	p.beta = c.op.Anthropic() && betaQuery(r.URL.RawQuery)
	c.model, c.stream = p.model.ID, p.stream
	if p.model, err = g.resolveModel(r.Context(), p.model, k.Name); err != nil {
		return err
	}
	session := r.Header.Get(HeaderSession)
	pl, err := g.plan(p.model, k.Name, c.op, session)
	if err != nil {
		return err
	}
	u := pl.ups[0]
	c.upstream = u.Name
	if err := g.checkOptions(r, p.model, k.Name); err != nil {
		return err
	}
	if c.op.Free() {
		return g.forwardFree(w, r, d, u, &p, body, c)
	}

	// One scan of the body: the rewrite splices at the spans the read
	// found, in place (readBody leaves room).
	akey := AdmissionKey(k)
	model, req := p.model, p.req
	rate := g.burndown.Rate(model)
	est := g.estimator.estimate(model.Base, req.InputTokens)
	pls, err := g.placements(pl, model)
	if err != nil {
		return err
	}
	u = pls[0].u
	modelMax := bedrock.DefaultMaxOutput(model)
	ask := admission.Ask{Model: model.Base, Key: akey, Req: req, ModelMax: modelMax, Session: session}
	if g.output.UsesRoom() {
		ask.Room = u.Admission.Room(g.now(), akey, pls[0].set)
		ask.Cost = func(mt int) int64 {
			return g.admissionCost(u, est, mt, rate).Total()
		}
	}
	dec := g.output.Decide(g.now(), ask)
	asked := modelMax
	if req.HasMaxTokens {
		asked = req.MaxTokens
	}
	// cl is what goes upstream: the policy's clamp, or in shadow mode the
	// request's own limit (the clamp is only recorded).
	cl := dec.Clamped
	if g.shadow {
		cl = unclamped(req, asked)
	}
	if body, err = d.rewrite(body, &p, cl, u.Client.Service()); err != nil {
		return err
	}
	if cl.Changed {
		g.countClamp(k.Name, req, cl)
	}
	if cl.Header != "" {
		c.clamp = cl.Header
		w.Header().Set(HeaderMaxTokens, cl.Header)
	}
	g.m.MaxTokensDecisions.WithLabelValues(k.Name, dec.Reason.Label()).Inc()
	if dec.Reason.Escalated() {
		g.m.Escalations.WithLabelValues(k.Name, dec.Reason.Label()).Inc()
	}
	capped := cl.MaxTokens < asked

	for i := range pls {
		pls[i].cost = g.admissionCost(pls[i].u, est, cl.MaxTokens, rate)
	}
	areq := admission.Request{Key: akey, Deadline: g.deadline(r, c.start)}
	var i int
	var t *admission.Ticket
	if g.shadow {
		t = g.shadowAdmit(pls[0], areq, g.admissionCost(pls[0].u, est, dec.Clamped.MaxTokens, rate), dec.Clamped, c)
	} else if i, t, err = g.admitPlaced(r.Context(), pls, areq, c); err != nil {
		return err
	}
	won := pls[i]
	areq.Set, areq.Cost = won.set, won.cost
	ch := &charge{g: g, u: won.u, t: t, key: k.Name, model: model, rate: rate, set: won.set, mantle: won.u.mantle,
		reserved: won.cost, held: won.cost, rawInput: req.InputTokens, estInput: est, bound: newUsageBound(len(body), cl.MaxTokens)}
	defer ch.guard(c) // before anything else can panic
	ch.countReserved()
	reason := pl.reason
	if i > 0 {
		reason = ReasonOverflow
	}
	g.served(c, won.u, reason, session, pl.affinity)
	if won.model.ID != p.model.ID {
		c.upstreamModel = won.model.ID
	}

	ex := exchange{u: won.u, call: g.upstreamCall(r, c, &p, body, won.model.ID), ch: ch, req: areq,
		pls: pls, cur: i, session: session, affinity: pl.affinity}
	ex.inflight = g.m.InFlight.WithLabelValues(won.u.Name)
	ex.inflight.Inc()
	defer func() { ex.inflight.Dec() }()
	resp, err := g.send(r, &ex, c)
	if err != nil {
		return err
	}
	if g.shadow {
		g.shadowAnswered(ex.u, resp, ch, c)
	}
	if c.queued >= time.Millisecond {
		w.Header().Set(HeaderQueued, strconv.FormatInt(c.queued.Milliseconds(), 10))
	}
	defer resp.Body.Close()
	c.upstreamRID = resp.Header.Get(bedrock.HeaderRequestID)
	if resp.StatusCode/100 != 2 {
		return g.passError(w, d, resp, ch, c)
	}
	res := d.pass(w, resp, &p, ch.adjust, capped)
	ch.finish(res, c)
	c.lastToolUseID = res.lastToolUseID
	out := admission.Outcome{Model: model.Base, Key: k.Name, Session: session, Known: res.known,
		Output: res.usage.OutputTokens, Applied: cl.MaxTokens, Asked: asked, StopReason: res.stopReason}
	if res.lastToolUseID != "" {
		out.LastToolUse = bedrock.ToolUseKeyString(res.lastToolUseID)
	}
	if g.output.Observe(g.now(), out) {
		g.m.Truncations.WithLabelValues(k.Name).Inc()
		g.m.CutOutputTokens.WithLabelValues(k.Name).Add(float64(res.usage.OutputTokens))
	}
	switch {
	case res.clientGone:
		c.outcome = metrics.OutcomeCanceled
	case res.err != nil:
		c.err = res.err
		c.outcome = metrics.OutcomeUpstreamError
		c.abort = true
	}
	return nil
}

// admissionCost is what a call reserves with the input estimate est and
// max_tokens mt: the accounting profile's charge on the runtime; on
// Mantle, input + max_tokens in the input bucket and nothing in the output
// bucket (BEDROCK.md section 6).
func (g *Gateway) admissionCost(u *Upstream, est, mt, rate int) quota.Cost {
	d := bedrock.Demand{InputTokens: est, MaxTokens: mt}
	if u.mantle {
		return quota.Cost{Input: bedrock.MantleAdmission(d)}
	}
	return quota.Tokens(g.profile.Admission(d, rate))
}

// upstreamCall is what goes upstream for a request.
// modelID is the model as the chosen upstream is asked for it.
func (g *Gateway) upstreamCall(r *http.Request, c *call, p *parsed, body []byte, modelID string) upstream.Call {
	return upstream.Call{Op: c.op, ModelID: modelID, Body: body, Header: r.Header, Beta: p.beta}
}

// betaQuery reports whether a raw query asks for the beta Messages API
// (?beta=true, as Claude Code sends it).
func betaQuery(q string) bool {
	if q == "" {
		return false
	}
	v, err := url.ParseQuery(q)
	return err == nil && v.Get("beta") == "true"
}

// AdmissionKey is what admission needs of a developer key.
func AdmissionKey(k keys.Key) admission.Key {
	return admission.Key{Name: k.Name, Weight: k.Weight, DailyTokens: k.DailyTokens,
		MaxConcurrency: k.MaxConcurrency, MaxOutputTokens: k.MaxOutputTokens}
}

func (g *Gateway) countClamp(key string, req bedrock.Request, cl admission.Clamped) {
	switch {
	case !req.HasMaxTokens:
		g.m.Clamps.WithLabelValues(key, "missing_max_tokens").Inc()
	case req.MaxTokens != cl.MaxTokens:
		g.m.Clamps.WithLabelValues(key, "max_tokens").Inc()
	}
	if req.Thinking == bedrock.ThinkingEnabled && req.ThinkingBudget != cl.ThinkingBudget {
		g.m.Clamps.WithLabelValues(key, "thinking_budget").Inc()
	}
}

// rewriteRoom is the spare capacity readBody leaves after a body so that
// the max_tokens rewrite can splice in place: a few digits, or an inserted
// "inferenceConfig":{"maxTokens":N}, at most 40 bytes, plus a Messages
// body's "anthropic_version":"bedrock-2023-05-31", (41 bytes).
const rewriteRoom = 96

// readBody reads the whole request body, refusing one over the limit. A
// body of known length is read straight into a buffer of that size (plus
// rewriteRoom); it is the only copy the request path makes.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > g.maxBody {
		return nil, &anthropicStatus{bedrock.Errorf(bedrock.ValidationException,
			"The request body is %d bytes; Headroom accepts at most %d.", r.ContentLength, g.maxBody), http.StatusRequestEntityTooLarge}
	}
	// The deadline is lifted once the body is in: net/http keeps reading
	// the connection in the background to notice a client leaving, and a
	// deadline hit there would end the request's context mid-stream. After
	// a failed read it stays, so that net/http, which reads what is left
	// of a body before it answers, gives up at once and closes the
	// connection instead of waiting on a stalled client. The deadline is
	// the connection's, so wall-clock time, not g.now. (Recorders in tests
	// have no connection: nothing to bound.)
	rc := http.NewResponseController(w)
	bounded := rc.SetReadDeadline(time.Now().Add(g.bodyRead)) == nil
	body, err := g.readAll(r)
	if err != nil {
		return nil, g.bodyError(err)
	}
	if bounded {
		_ = rc.SetReadDeadline(time.Time{})
	}
	return body, nil
}

// errTooLarge is a body of unannounced length over the limit.
var errTooLarge = errors.New("request body over the limit")

// bodyError is the client's error for a body that could not be read.
func (g *Gateway) bodyError(err error) error {
	if errors.Is(err, errBodyMemory) {
		return g.bodyMemoryError()
	}
	if errors.Is(err, errTooLarge) {
		return &anthropicStatus{bedrock.Errorf(bedrock.ValidationException, "The request body is over %d bytes, the most Headroom accepts.", g.maxBody), http.StatusRequestEntityTooLarge}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return bedrock.Errorf(bedrock.ValidationException, "The request body did not arrive within %v.", g.bodyRead)
	}
	return bedrock.Errorf(bedrock.ValidationException, "Could not read the request body: %v", err)
}

// deadline is when the request stops waiting for quota: the queue's
// maximum, or sooner when the client asks with x-headroom-max-wait.
func (g *Gateway) deadline(r *http.Request, start time.Time) time.Time {
	wait := g.maxWait
	if v := r.Header.Get(HeaderMaxWait); v != "" {
		// s < wait also refuses NaN and Inf, which would overflow a Duration.
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 && s < wait.Seconds() {
			wait = time.Duration(s * float64(time.Second))
		}
	}
	return start.Add(wait)
}

// throttleKind is the kind label of a gateway refusal
// (metrics.Throttles).
func throttleKind(err error) string {
	var ref *admission.Refusal
	switch {
	case !errors.As(err, &ref):
		return ""
	case ref.Budget:
		return metrics.KindBudget
	case ref.Bucket != "":
		return ref.Kind.String()
	}
	return metrics.KindQueue
}

// refusalError turns an admission error into what the client sees. A
// spent daily bucket's refusal names its top consumers today.
func (g *Gateway) refusalError(err error, u *Upstream) error {
	var ref *admission.Refusal
	var big *admission.TooLarge
	var down *admission.Unavailable
	switch {
	case errors.As(err, &ref):
		msg := ref.Message
		if ref.Daily && ref.Bucket != "" {
			msg += g.topConsumersNote(u, ref.Bucket)
		}
		e := bedrock.Errorf(bedrock.ThrottlingException, "%s", msg).WithRetryAfter(ref.RetryAfter)
		e.SetHeader(HeaderThrottle, "gateway")
		if ref.Daily {
			e.SetHeader(HeaderShouldRetry, "false")
		}
		return e
	case errors.As(err, &big):
		return bedrock.Errorf(bedrock.ValidationException, "%s", big.Error())
	case errors.As(err, &down) && down.Share > 0:
		return bedrock.Errorf(bedrock.ServiceUnavailableException,
			"Headroom cannot reach the quota ledger it shares with its other replicas and admits against 1/%d of the quota meanwhile; this request is larger than that share; retry shortly", down.Share).WithRetryAfter(down.RetryAfter)
	case errors.As(err, &down):
		// The cause (Redis's address, its error) is the operator's: not shown.
		return bedrock.Errorf(bedrock.ServiceUnavailableException,
			"Headroom cannot reach the quota ledger it shares with its other replicas, so it admits nothing rather than risk exceeding the account's quota; retry shortly").WithRetryAfter(down.RetryAfter)
	}
	// The client went away while queued, or the queue failed.
	return err
}
