// Package dashboard is the page `headroom serve` shows at /: for each
// upstream and bucket, capacity, effective capacity, used, reserved and
// queued over the last hour or day; each key's use, share, budget,
// protected remainder, queue and p95 queue wait; the 429s clients received
// by source and kind; what the output policy clamped, cut and escalated;
// the forecasts and top consumers the gateway's status carries; and shadow
// mode's record when the gateway runs in it.
//
// The page is static (embedded HTML, CSS and a plain script that draws on
// canvas: no build step, nothing loaded from elsewhere) and polls
// GET /v1/dashboard. A Dashboard samples gateway.Gateway.Status every Step
// into rings of fixed size and reads counters from the Prometheus registry;
// it never sits on the request path and is read-only: it changes nothing
// in the gateway. It does not check the operations token: the gateway
// routes the page and the data here and guards the data.
package dashboard
