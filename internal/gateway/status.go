package gateway

import (
	"encoding/json"
	"net/http"
)

// serveStatus answers GET /v1/status: every upstream's buckets, per-key
// usage and the queue, as JSON, for `headroom doctor` and dashboards.
func (g *Gateway) serveStatus(w http.ResponseWriter, r *http.Request) {
	now := g.now()
	type upstreamStatus struct {
		Name   string `json:"name"`
		Region string `json:"region"`
		Status any    `json:"admission"`
	}
	out := struct {
		Time      string             `json:"time"`
		Upstreams []upstreamStatus   `json:"upstreams"`
		Estimates map[string]float64 `json:"input_estimate_factors"`
	}{Time: now.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Estimates: g.estimator.snapshot()}
	for _, u := range g.ordered {
		out.Upstreams = append(out.Upstreams, upstreamStatus{Name: u.Name, Region: u.Client.Region(), Status: u.Admission.Status(now)})
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}
