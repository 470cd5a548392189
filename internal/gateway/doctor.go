package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/doctorapi"
	"github.com/headroomhq/headroom/internal/keys"
)

// DoctorPath is where the gateway answers `headroom doctor --probe`
// (internal/doctorapi holds the answer's shape, which the doctor reads).
const DoctorPath = doctorapi.Path

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
		var err error
		if asked, err = strconv.Atoi(v); err != nil || asked < 1 || asked > bedrock.MaxOutputLimit {
			return bedrock.Errorf(bedrock.ValidationException, "max_tokens %q is not a number between 1 and %d", v, bedrock.MaxOutputLimit)
		}
	}
	now := g.now()
	out := doctorapi.Answer{Gateway: "headroom", Time: now.UTC().Format(time.RFC3339), Key: k.Name,
		MaxWaitMS: g.maxWait.Milliseconds(), PolicyMode: g.output.Settings().Mode, Upstreams: []doctorapi.Upstream{}, Models: []doctorapi.Model{}}
	for _, u := range g.ordered {
		st := u.Admission.Status(now)
		routing := doctorapi.Routing(u.brk.state())
		du := doctorapi.Upstream{Name: u.Name, Region: u.Client.Region(), Service: string(u.Client.Service()),
			Queued: st.Queued, InFlight: st.InFlight, Buckets: []doctorapi.Bucket{}, Routing: &routing}
		for _, b := range st.Buckets {
			du.Buckets = append(du.Buckets, doctorapi.Bucket{Name: b.Name, Kind: b.KindName, Limit: b.Limit,
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
func (g *Gateway) doctorModel(now time.Time, id string, k keys.Key, asked int) doctorapi.Model {
	dm := doctorapi.Model{ID: id, Route: []string{}, Buckets: []string{}}
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
