package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/keys"
)

// DoctorPath is where the gateway answers `headroom doctor --probe`: what
// it knows that a client cannot see from outside, the quotas it mirrors
// for the account and what it does about them.
const DoctorPath = "/v1/doctor"

// DoctorAnswer is GET /v1/doctor's JSON. `headroom doctor` decodes it
// (internal/doctor's GatewayInfo); fields are only added, never renamed.
type DoctorAnswer struct {
	// Gateway is always "headroom": it tells a Headroom gateway from any
	// other endpoint that happens to answer the path.
	Gateway string `json:"gateway"`
	Time    string `json:"time"`
	// Key is the developer key the request authenticated with ("" with the
	// operations token).
	Key       string           `json:"key,omitempty"`
	Upstreams []DoctorUpstream `json:"upstreams"`
	Models    []DoctorModel    `json:"models"`
	// MaxWaitMS is how long a request that does not fit may queue before
	// it gets a 429.
	MaxWaitMS int64 `json:"max_wait_ms"`
	// PolicyMode is the max_tokens policy: learned or fixed.
	PolicyMode string `json:"policy_mode"`
}

// DoctorUpstream is one upstream and the buckets it mirrors now.
type DoctorUpstream struct {
	Name     string         `json:"name"`
	Region   string         `json:"region"`
	Service  string         `json:"service"`
	Queued   int            `json:"queued"`
	InFlight int            `json:"in_flight"`
	Buckets  []DoctorBucket `json:"buckets"`
	// Routing is the upstream's circuit breaker (in, out or probing).
	Routing BreakerState `json:"routing"`
}

// DoctorBucket is one mirrored quota: Limit is the applied value the
// operator configured, Effective what AIMD allows after upstream 429s.
type DoctorBucket struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Limit     int64  `json:"limit"`
	Effective int64  `json:"effective"`
	Used      int64  `json:"used"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
}

// DoctorModel is what the gateway does with one model's requests for the
// asking key: where they go, which buckets they draw from, and the
// max_tokens it forwards when the client asks for Asked.
type DoctorModel struct {
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

// serveDoctor answers GET /v1/doctor?model=ID[&model=ID2][&max_tokens=N]. It
// takes a developer key (what a developer running the doctor has) or,
// like /v1/status, the operations token.
func (g *Gateway) serveDoctor(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return bedrock.Errorf(bedrock.ValidationException, "%s %s: use GET", r.Method, r.URL.Path)
	}
	var k keys.Key
	if secretOf(r) != "" {
		var err error
		if k, err = g.authenticate(r); err != nil && g.checkOpsToken(r) != nil {
			return err
		}
	} else if err := g.checkOpsToken(r); err != nil {
		return err
	}
	q := r.URL.Query()
	if len(q["model"]) > 4 {
		return bedrock.Errorf(bedrock.ValidationException, "at most 4 models per request")
	}
	asked := 0
	if v := q.Get("max_tokens"); v != "" {
		if err := json.Unmarshal([]byte(v), &asked); err != nil || asked < 1 || asked > bedrock.MaxOutputLimit {
			return bedrock.Errorf(bedrock.ValidationException, "max_tokens %q is not a number between 1 and %d", v, bedrock.MaxOutputLimit)
		}
	}
	now := g.now()
	out := DoctorAnswer{Gateway: "headroom", Time: now.UTC().Format(time.RFC3339), Key: k.Name,
		MaxWaitMS: g.maxWait.Milliseconds(), PolicyMode: g.output.Settings().Mode, Upstreams: []DoctorUpstream{}, Models: []DoctorModel{}}
	for _, u := range g.ordered {
		st := u.Admission.Status(now)
		du := DoctorUpstream{Name: u.Name, Region: u.Client.Region(), Service: string(u.Client.Service()),
			Queued: st.Queued, InFlight: st.InFlight, Buckets: []DoctorBucket{}, Routing: u.brk.state()}
		for _, b := range st.Buckets {
			du.Buckets = append(du.Buckets, DoctorBucket{Name: b.Name, Kind: b.KindName, Limit: b.Limit,
				Effective: b.Effective, Used: b.Used, Reserved: b.Reserved, Available: b.Available})
		}
		out.Upstreams = append(out.Upstreams, du)
	}
	for _, id := range q["model"] {
		out.Models = append(out.Models, g.doctorModel(now, id, k, asked))
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out) // the client left: nothing more to tell it
	return nil
}

// doctorModel runs the max_tokens policy and the routing for one model
// without sending or admitting anything.
func (g *Gateway) doctorModel(now time.Time, id string, k keys.Key, asked int) DoctorModel {
	dm := DoctorModel{ID: id, Route: []string{}, Buckets: []string{}}
	m, err := bedrock.ParseModel(id)
	if err != nil {
		dm.Error = err.Error()
		return dm
	}
	modelMax := bedrock.DefaultMaxOutput(m)
	if asked == 0 {
		asked = modelMax
	}
	dm.Asked = asked
	dec := g.output.Decide(now, admission.Ask{Model: m.Base, Key: AdmissionKey(k), ModelMax: modelMax,
		Req: bedrock.Request{MaxTokens: asked, HasMaxTokens: true}})
	dm.MaxTokens, dm.Reason = dec.MaxTokens, dec.Reason.Label()
	dm.Route = append(dm.Route, g.route(m.Base, k.Name)...)
	for _, name := range dm.Route {
		u := g.upstreams[name]
		if u == nil {
			continue
		}
		um := u.modelFor(m)
		set := u.set(um)
		if err := u.matched(um, set); err != nil && dm.Error == "" {
			var be *bedrock.Error
			if errors.As(err, &be) {
				dm.Error = be.Message
			}
		}
		for i, b := range u.Ledger().Snapshot(now) {
			if set.Has(i) {
				dm.Buckets = append(dm.Buckets, name+"/"+b.Name)
			}
		}
	}
	if len(dm.Route) == 0 {
		dm.Error = "no route serves this model for this key"
	}
	return dm
}
