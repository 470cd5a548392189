package gateway

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/upstream"
)

// Shadow mode (Options.Shadow, config policy.enforcement: shadow) forwards
// every request as the client sent it: no max_tokens clamp, no queue, no
// refusal, no retry; upstream answers, errors and throttles included, pass
// through as they are. The request still takes the one request path in
// handle: the key authenticates, the policy decides the max_tokens it would
// have set, and the admission controller grants the request at once
// (admission.Controller.Shadow), holding its charge in the ledger even
// where it does not fit, so the mirror keeps following the upstream, and
// judging it as enforce mode would have. An upstream throttle lowers the
// ledger's capacity as in enforce mode. What enforce mode would have done
// is the shadow record: metrics (headroom_shadow_*), one log field per
// request ("shadow") and the "shadow" section of /v1/status.

// shadowCall is what shadow mode judged of one request.
type shadowCall struct {
	// clamp is the x-headroom-max-tokens enforce mode would have sent
	// ("32000->4096"), "" when it would not have changed the request.
	clamp string
	// would is the verdict on the request as enforce mode would have
	// admitted it (clamped); fits on the request as forwarded, which
	// predicts the upstream's throttles.
	would, fits admission.Verdict
}

// String is the log field: what enforce mode would have done.
func (s *shadowCall) String() string {
	b := make([]byte, 0, 64)
	b = appendVerdict(b, s.would)
	if s.clamp != "" {
		b = append(b, ", clamp "...)
		b = append(b, s.clamp...)
	}
	if s.fits != s.would {
		b = append(b, "; as forwarded: "...)
		b = appendVerdict(b, s.fits)
	}
	return string(b)
}

func appendVerdict(b []byte, v admission.Verdict) []byte {
	b = append(b, v.Action.String()...)
	switch v.Action {
	case admission.WouldQueue:
		b = append(b, ' ')
		b = append(b, v.Wait.Round(time.Millisecond).String()...)
	case admission.WouldRefuse:
		b = append(b, ' ')
		b = append(b, v.Reason...)
	}
	if v.Bucket != "" {
		b = append(b, " on "...)
		b = append(b, v.Bucket...)
	}
	return b
}

// shadowAdmit is admitPlaced in shadow mode: it grants req at once on the
// route's first upstream (no routing by headroom: the request goes where
// the route prefers) and records what enforce mode, which would have
// reserved enforced there, would have done.
func (g *Gateway) shadowAdmit(pl placement, req admission.Request, enforced quota.Cost, cl admission.Clamped, c *call) *admission.Ticket {
	req.Set, req.Cost = pl.set, pl.cost
	t, would, fits := pl.u.Admission.Shadow(g.now(), req, enforced)
	c.reserved = req.Cost.Total()
	c.shadow = &shadowCall{clamp: cl.Header, would: would, fits: fits}
	g.record.judged(g, c)
	return t
}

// unclamped is the request's own output limit, as shadow mode forwards it.
func unclamped(req bedrock.Request, asked int) admission.Clamped {
	cl := admission.Clamped{MaxTokens: asked}
	if req.Thinking == bedrock.ThinkingEnabled {
		cl.ThinkingBudget = req.ThinkingBudget
	}
	return cl
}

// shadowAnswered records how the upstream answered a request shadow mode
// judged: a throttle the mirror predicted or missed, or a request served
// that the mirror would have held back (and no longer a pending one:
// admission.Ticket.Confirm).
func (g *Gateway) shadowAnswered(u *Upstream, resp *http.Response, ch *charge, c *call) {
	throttled := upstream.Classify(resp.StatusCode, resp.Header) == upstream.Throttled
	served := resp.StatusCode/100 == 2
	if served {
		ch.t.Confirm()
	}
	g.record.answered(g, u.Name, c.shadow.fits.Fits(), throttled, served)
}

// shadowRecord is shadow mode's record since the gateway started, for
// /v1/status (the metrics count the same, by key and upstream).
type shadowRecord struct {
	mu     sync.Mutex
	since  time.Time
	judge  int64
	admit  int64
	clamp  int64
	queue  int64
	refuse map[string]int64
	waited time.Duration // total would-be queue wait
	maxW   time.Duration

	answers     int64 // judged requests the upstream served or throttled
	throttles   int64 // of which throttled
	predicted   int64 // throttled, and the mirror would have held it back
	missed      int64 // throttled, and the mirror would have admitted it
	falseAlarms int64 // served, and the mirror would have held it back
}

// judged counts what enforce mode would have done with c, in the record
// and the metrics.
func (r *shadowRecord) judged(g *Gateway, c *call) {
	s := c.shadow
	r.mu.Lock()
	defer r.mu.Unlock()
	r.judge++
	if s.clamp != "" {
		r.clamp++
		g.m.ShadowWouldClamp.WithLabelValues(c.key).Inc()
	}
	switch s.would.Action {
	case admission.WouldAdmit:
		r.admit++
	case admission.WouldQueue:
		r.queue++
		r.waited += s.would.Wait
		r.maxW = max(r.maxW, s.would.Wait)
		g.m.ShadowWouldQueue.WithLabelValues(c.key).Inc()
		g.m.ShadowQueueWait.Observe(s.would.Wait.Seconds())
	case admission.WouldRefuse:
		if r.refuse == nil {
			r.refuse = map[string]int64{}
		}
		r.refuse[s.would.Reason]++
		g.m.ShadowWouldRefuse.WithLabelValues(c.key, s.would.Reason).Inc()
	}
}

// answered counts how upstream up answered a judged request, in the
// record and the metrics.
func (r *shadowRecord) answered(g *Gateway, up string, fits, throttled, served bool) {
	if !throttled && !served {
		return // another error: the mirror predicts throttles only
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers++
	g.m.ShadowRequests.WithLabelValues(up).Inc()
	if throttled {
		r.throttles++
	}
	switch {
	case throttled && fits:
		r.missed++
		g.m.ShadowMissed.WithLabelValues(up).Inc()
	case throttled:
		r.predicted++
		g.m.ShadowPredicted.WithLabelValues(up).Inc()
	case served && !fits:
		r.falseAlarms++
		g.m.ShadowFalseAlarms.WithLabelValues(up).Inc()
	}
}

// ShadowStatus is the "shadow" section of /v1/status: shadow mode's record
// since the gateway started. Its JSON field names are stable (the
// dashboard reads them).
type ShadowStatus struct {
	Since string `json:"since"`
	// Requests were judged: what enforce mode would have done with each.
	Requests   int64 `json:"requests"`
	WouldAdmit int64 `json:"would_admit"`
	WouldClamp int64 `json:"would_clamp"`
	WouldQueue int64 `json:"would_queue"`
	// WouldQueueWait* are the ledger's estimates of the queued requests'
	// waits, in seconds.
	WouldQueueWaitMean float64 `json:"would_queue_wait_mean_seconds"`
	WouldQueueWaitMax  float64 `json:"would_queue_wait_max_seconds"`
	// WouldRefuse counts the would-be refusals by reason: too_large,
	// budget, daily, deadline (every reason listed, 0 included).
	WouldRefuse map[string]int64 `json:"would_refuse"`
	// Answered is the judged requests the upstream served (2xx) or
	// throttled (any other answer is left out); Upstream429
	// those it throttled, Predicted and Missed split them by whether the
	// mirror would have held the request (as forwarded) back, and
	// FalseAlarms counts the requests it would have held back that the
	// upstream served.
	Answered    int64          `json:"answered"`
	Upstream429 int64          `json:"upstream_429"`
	Predicted   int64          `json:"upstream_429_predicted"`
	Missed      int64          `json:"upstream_429_missed"`
	FalseAlarms int64          `json:"false_alarms"`
	Accuracy    ShadowAccuracy `json:"accuracy"`
}

// ShadowAccuracy is how well the mirror predicts the upstream; a share is
// null until it has a denominator.
type ShadowAccuracy struct {
	// Predicted429Share is upstream_429_predicted / upstream_429: the share
	// of the upstream's throttles enforce mode would have avoided.
	Predicted429Share *float64 `json:"predicted_429_share"`
	// FalseAlarmShare is false_alarms / answered: the share of the
	// requests the upstream served or throttled that it served though the
	// mirror would have held them back (what enforcing would have delayed
	// for nothing).
	FalseAlarmShare *float64 `json:"false_alarm_share"`
	// Agreement is the share of answered requests where the mirror and
	// the upstream agreed (a throttle predicted, or a request admitted
	// and not throttled).
	Agreement *float64 `json:"agreement"`
}

// status is the record now, or nil outside shadow mode.
func (r *shadowRecord) status() *ShadowStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &ShadowStatus{Since: r.since.UTC().Format(time.RFC3339), Requests: r.judge, WouldAdmit: r.admit, WouldClamp: r.clamp,
		WouldQueue: r.queue, WouldQueueWaitMax: r.maxW.Seconds(),
		WouldRefuse: map[string]int64{admission.ReasonTooLarge: 0, admission.ReasonBudget: 0, admission.ReasonDaily: 0, admission.ReasonDeadline: 0},
		Answered:    r.answers, Upstream429: r.throttles, Predicted: r.predicted, Missed: r.missed, FalseAlarms: r.falseAlarms}
	for k, v := range r.refuse {
		st.WouldRefuse[k] = v
	}
	if r.queue > 0 {
		st.WouldQueueWaitMean = (r.waited / time.Duration(r.queue)).Seconds()
	}
	st.Accuracy.Predicted429Share = share(r.predicted, r.throttles)
	st.Accuracy.FalseAlarmShare = share(r.falseAlarms, r.answers)
	st.Accuracy.Agreement = share(r.answers-r.missed-r.falseAlarms, r.answers)
	return st
}

// share is n/d rounded to 4 places, nil when d is 0.
func share(n, d int64) *float64 {
	if d <= 0 {
		return nil
	}
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(n)/float64(d), 'f', 4, 64), 64)
	return &v
}
