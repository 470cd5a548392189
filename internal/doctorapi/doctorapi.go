// Package doctorapi is the JSON a Headroom gateway answers GET /v1/doctor
// with, and `headroom doctor --probe` reads: what the gateway knows that a
// client cannot see from outside (the quotas it mirrors for the account,
// its routes, and what its max_tokens policy forwards). The gateway fills
// it and the doctor decodes it, so both hold one definition. Fields are
// only added, never renamed: a newer doctor reads an older gateway.
package doctorapi

import "time"

// Path is where the gateway answers the doctor.
const Path = "/v1/doctor"

// Answer is the whole answer.
type Answer struct {
	// Gateway is always "headroom": it tells a Headroom gateway from any
	// other endpoint that happens to answer the path.
	Gateway string `json:"gateway"`
	Time    string `json:"time,omitempty"`
	// Key is the developer key the request authenticated with ("" with the
	// operations token).
	Key       string     `json:"key,omitempty"`
	Upstreams []Upstream `json:"upstreams"`
	Models    []Model    `json:"models"`
	// MaxWaitMS is how long a request that does not fit may queue before
	// it gets a 429.
	MaxWaitMS int64 `json:"max_wait_ms"`
	// PolicyMode is the max_tokens policy: learned or fixed.
	PolicyMode string `json:"policy_mode"`
}

// Upstream is one upstream and the buckets it mirrors now.
type Upstream struct {
	Name     string   `json:"name"`
	Region   string   `json:"region"`
	Service  string   `json:"service"`
	Queued   int      `json:"queued"`
	InFlight int      `json:"in_flight"`
	Buckets  []Bucket `json:"buckets"`
	// Routing is the upstream's circuit breaker (nil from a gateway older
	// than routing).
	Routing *Routing `json:"routing,omitempty"`
}

// Routing is an upstream's place in its routes: State in, out or probing,
// and the Cause of its last failure ("unavailable", "timeout",
// "connection", "throttled", "daily_quota").
type Routing struct {
	State        string    `json:"state"`
	Cause        string    `json:"cause,omitempty"`
	FailsInARow  int       `json:"failures_in_a_row,omitempty"`
	OutSince     time.Time `json:"out_since,omitzero"`
	ProbeAfter   time.Time `json:"probe_after,omitzero"`
	ProbeStarted time.Time `json:"probe_started,omitzero"`
}

// Bucket is one mirrored quota: Limit is the applied value the operator
// configured, Effective what AIMD allows after upstream 429s.
type Bucket struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Limit     int64  `json:"limit"`
	Effective int64  `json:"effective"`
	Used      int64  `json:"used"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
}

// Model is what the gateway does with one model's requests for the asking
// key: where they go, which buckets they draw from, and the max_tokens it
// forwards when the client asks for Asked.
type Model struct {
	ID    string `json:"id"`
	Asked int    `json:"asked_max_tokens"`
	// MaxTokens is what a request asking Asked goes upstream with now, and
	// Reason the policy's reason (fixed, learned p95, floor, ...).
	MaxTokens int    `json:"max_tokens"`
	Reason    string `json:"reason"`
	// Route is the upstreams that may serve it, in order; Buckets its
	// buckets in each, as "UPSTREAM/BUCKET".
	Route   []string `json:"route"`
	Buckets []string `json:"buckets"`
	// Error says why the gateway would refuse the model ("" if it admits it).
	Error string `json:"error,omitempty"`
}

// Model returns what the gateway said about model id.
func (a *Answer) Model(id string) (Model, bool) {
	if a == nil {
		return Model{}, false
	}
	for _, m := range a.Models {
		if m.ID == id {
			return m, true
		}
	}
	return Model{}, false
}

// Upstream returns the upstream called name.
func (a *Answer) Upstream(name string) (Upstream, bool) {
	if a == nil {
		return Upstream{}, false
	}
	for _, u := range a.Upstreams {
		if u.Name == name {
			return u, true
		}
	}
	return Upstream{}, false
}
