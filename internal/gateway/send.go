package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/metrics"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/upstream"
)

// exchange is one admitted request on its way upstream.
type exchange struct {
	u    *Upstream
	call upstream.Call
	ch   *charge
	req  admission.Request // to queue again after an upstream throttle; its Deadline bounds retries
	// The route's placements, the current one, those that refused this
	// request (bits by index), and the order to try them in after a refusal
	// (nil until the first: reroute).
	pls      []placement
	cur      int
	failed   uint64
	order    []int
	session  string
	affinity bool
	inflight prometheus.Gauge // ex.u's in-flight gauge, incremented
}

// Retry limits: a transient upstream failure is retried at most
// maxAttempts times in all, and only while the request's deadline allows.
const (
	maxAttempts = 6
	baseBackoff = 100 * time.Millisecond
	maxBackoff  = 2 * time.Second
)

// send calls the upstream, retrying throttles and transient failures before
// anything reached the client, within the deadline (never in shadow mode,
// which passes the first answer on as it is). It returns a response to
// pass on (2xx, or an error answer that is final) or an error of its own.
// Every path leaves the charge correct: held while the upstream works on
// the request, cancelled when it refused it.
func (g *Gateway) send(r *http.Request, ex *exchange, c *call) (*http.Response, error) {
	ctx := r.Context()
	for attempt := 1; ; attempt++ {
		c.attempts = attempt
		ex.ch.sent = true
		c.body.lend(ex.u.Client)
		resp, err := ex.u.Client.Do(ctx, ex.call)
		if err != nil {
			if ctx.Err() != nil {
				// The client left while the upstream worked; it may have
				// run the model, so charge the input (guard does it).
				ex.ch.inputOnly = true
				return nil, ctx.Err()
			}
			if upstream.ClassifyError(err) == upstream.Retryable && !g.shadow {
				g.upstreamFailed(ex.u, causeConnection, false)
				if placed, _ := g.reroute(r, ex, c, causeConnection, true, attempt); placed {
					continue
				}
			}
			ex.ch.cancel()
			return nil, upstreamUnavailable(err)
		}
		switch class := upstream.Classify(resp.StatusCode, resp.Header); class {
		case upstream.Success:
			g.upstreamAnswered(ex.u)
			return resp, nil
		case upstream.Fatal:
			return resp, nil
		case upstream.Throttled:
			g.m.UpstreamThrottles.WithLabelValues(ex.u.Name).Inc()
			last, msg := keepAnswer(resp)
			// The mirror lowers its capacity when it was wrong: it
			// admitted a request the upstream throttled. In shadow mode a
			// throttle teaches it only that: not one of a request it
			// judged would not fit, nor one that a request forwarded
			// though it would not fit may have beaten to the upstream
			// (enforce mode would have sent neither of those).
			if !g.shadow || c.shadow.fits.Fits() && !ex.ch.t.Contested() {
				l := ex.u.Admission.Ledger()
				ex.u.Admission.Throttled(g.now(), ex.req.Set&throttledKinds(l, msg))
			}
			daily := msg == bedrock.MsgTooManyTokensPerDay
			cause := causeThrottled
			if daily {
				cause = causeDailyQuota
			}
			g.upstreamFailed(ex.u, cause, daily)
			if g.shadow {
				ex.ch.cancel()
				return last, nil
			}
			// The mirror was off: give the reservation back and go to
			// another upstream of the route with room, or else wait in
			// the route's queues behind the lowered capacity, after a
			// short pause, until the deadline. Only then does the client
			// get the throttle, with when to retry.
			placed, refused := g.reroute(r, ex, c, cause, false, attempt)
			if placed {
				continue
			}
			if be := (*bedrock.Error)(nil); errors.As(refused, &be) && be.Name == bedrock.ServiceUnavailableException {
				return nil, refused // the shared ledger is down: its 503, not a throttle
			}
			if !daily {
				g.retryAfter(last, ex, refused)
			}
			return last, nil
		case upstream.Retryable:
			g.upstreamFailed(ex.u, causeUnavailable, false)
			if g.shadow {
				return resp, nil
			}
			last, _ := keepAnswer(resp)
			if placed, _ := g.reroute(r, ex, c, causeUnavailable, true, attempt); placed {
				continue
			}
			return last, nil
		}
	}
}

// pause sleeps before attempt+1, never past deadline, and reports whether
// time is left for it.
func (g *Gateway) pause(ctx context.Context, deadline time.Time, attempt int) bool {
	left := deadline.Sub(g.now())
	if left <= 0 {
		return false
	}
	d := min(baseBackoff<<min(attempt-1, 16), maxBackoff)
	d = d/2 + rand.N(d/2+1) // jitter: two clients throttled together do not retry together
	t := time.NewTimer(min(d, left))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retryAfter gives an upstream throttle passed on at the deadline a
// Retry-After when it has none: the queue's, when it refused the request,
// else when the mirror expects room on the request's upstream (at least
// a second).
func (g *Gateway) retryAfter(resp *http.Response, ex *exchange, refused error) {
	if resp.Header.Get("Retry-After") != "" {
		return
	}
	var be *bedrock.Error
	if errors.As(refused, &be) {
		if v := be.Header.Get("Retry-After"); v != "" {
			resp.Header.Set("Retry-After", v)
			return
		}
	}
	wait, _ := ex.u.Ledger().Wait(g.now(), ex.req.Set, ex.req.Cost)
	resp.Header.Set("Retry-After", bedrock.RetryAfter(wait))
}

// keepAnswer reads a small error answer so it can be passed on later, and
// returns a response that replays it, with the exception message.
func keepAnswer(resp *http.Response) (*http.Response, string) {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	upstream.Drain(resp)
	var v struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(b, &v)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, v.Message
}

// throttledKinds maps Bedrock's throttling message to the kinds of bucket
// it names. Bedrock gives no other signal (BEDROCK.md section 3), and its
// messages are fixed strings, compared whole. Anything else lowers the
// per-minute buckets, the usual cause (Mantle's input and output ones too:
// its throttles come in Anthropic's shape, without a top-level message).
func throttledKinds(l *quota.Ledger, msg string) quota.Set {
	switch msg {
	case bedrock.MsgTooManyTokensPerDay:
		return l.OfKind(quota.TokensPerDay)
	case bedrock.MsgTooManyRequests:
		// Also seen on token limits.
		return l.OfKind(quota.RequestsPerMinute) | l.OfKind(quota.TokensPerMinute)
	}
	return l.OfKind(quota.TokensPerMinute) | l.OfKind(quota.InputTokensPerMinute) | l.OfKind(quota.OutputTokensPerMinute)
}

// passError passes an upstream error answer on in the door's protocol,
// marking a throttle that reached the client as Bedrock's own. ch is nil
// for a free call.
func (g *Gateway) passError(w *responseWriter, d door, resp *http.Response, ch *charge, c *call) error {
	if ch != nil {
		ch.cancel()
	}
	if upstream.Classify(resp.StatusCode, resp.Header) == upstream.Throttled {
		w.Header().Set(HeaderThrottle, "upstream")
		c.outcome = metrics.OutcomeThrottledUp
		// Bedrock's daily throttle frees only when its day turns: tell
		// Claude Code to stop rather than retry for minutes (issue 10).
		var msg string
		c.throttle = quota.TokensPerMinute.String()
		if resp, msg = keepAnswer(resp); msg == bedrock.MsgTooManyTokensPerDay {
			w.Header().Set(HeaderShouldRetry, "false")
			c.throttle = quota.TokensPerDay.String()
		}
	} else {
		c.outcome = metrics.OutcomeUpstreamError
	}
	return d.upstreamError(w, resp)
}

// foreignUpstreamError is the Bedrock exception for an upstream error answer
// that carries no x-amzn-ErrorType.
func foreignUpstreamError(status int) *bedrock.Error {
	name := bedrock.InternalServerException
	switch status {
	case http.StatusTooManyRequests:
		name = bedrock.ThrottlingException
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		name = bedrock.ServiceUnavailableException
	}
	return bedrock.Errorf(name, "The upstream answered HTTP %d without a Bedrock error.", status)
}

// forwardFree sends a call that costs no quota (CountTokens,
// count_tokens) and passes the answer on.
func (g *Gateway) forwardFree(w *responseWriter, r *http.Request, d door, u *Upstream, p *parsed, body []byte, c *call) error {
	c.body.lend(u.Client)
	resp, err := u.Client.Do(r.Context(), g.upstreamCall(r, c, p, body, u.modelFor(p.model).ID))
	if err != nil {
		return upstreamUnavailable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		c.upstreamRID = resp.Header.Get(bedrock.HeaderRequestID)
		return g.passError(w, d, resp, nil, c)
	}
	relay(w, resp, c)
	return nil
}

// relay passes an upstream answer on as it is: status, headers and body.
func relay(w http.ResponseWriter, resp *http.Response, c *call) {
	c.upstreamRID = resp.Header.Get(bedrock.HeaderRequestID)
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
