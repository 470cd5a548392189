package gateway

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/upstream"
)

// Upstream is one configured upstream as the gateway uses it: the client
// that reaches it and the admission controller over its mirrored ledger.
type Upstream struct {
	Name   string
	Client *upstream.Client
	// Admission admits requests to the upstream's ledger.
	Admission *admission.Controller
	// Scopes holds the scope of every ledger bucket, in ledger order.
	Scopes []bedrock.Scope
	// mantle is set for a bedrock-mantle upstream: its ledger mirrors
	// Mantle's (input-tpm and output-tpm buckets, one of each per model).
	mantle bool

	// Profiles maps application inference profiles (ARN or ID) to the
	// model identifier they run (config inference_profiles); others are
	// looked up through the control plane (appprofile.go).
	Profiles map[string]string
	// AllowUnmatched admits a model no bucket matches without mirroring
	// it (config unmatched: unlimited); by default it is refused.
	AllowUnmatched bool
	profiles       appProfiles

	// series are the usage tracker's ids of the ledger's buckets, in
	// ledger order (newTracker).
	series []int
	// ModelPrefix and ModelIDs rewrite the model ID for this upstream
	// (config.Upstream; modelFor).
	ModelPrefix string
	ModelIDs    map[string]string
	modelIDKeys []string // of ModelIDs, sorted

	brk      breaker
	alone    []*Upstream // just u: a one-upstream route's candidates (read only)
	servedMu sync.Mutex
	served   map[string]int64 // requests served, by route reason

	setsMu sync.RWMutex
	sets   map[setKey]quota.Set
}

// setKey is what decides the buckets a model's calls draw from.
type setKey struct {
	base  string
	cross bool
}

// NewUpstream builds the ledger of an upstream's buckets (all full at now)
// and the admission controller over it.
func NewUpstream(name string, c *upstream.Client, buckets []config.Bucket, w config.Windows, ao admission.Options, now time.Time) (*Upstream, error) {
	qw, err := quota.ParseWindows(w.Minute, w.Day, w.DayResetHourUTC)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", name, err)
	}
	if len(buckets) > quota.MaxBuckets {
		return nil, fmt.Errorf("upstream %q: %d buckets, at most %d", name, len(buckets), quota.MaxBuckets)
	}
	specs := make([]quota.BucketSpec, len(buckets))
	scopes := make([]bedrock.Scope, len(buckets))
	for i, b := range buckets {
		k, err := quota.ParseKind(b.Kind)
		if err != nil {
			return nil, fmt.Errorf("upstream %q bucket %q: %w", name, b.Name, err)
		}
		specs[i] = quota.BucketSpec{Name: b.Name, Kind: k, Limit: b.Limit}
		scopes[i] = b.Scope
	}
	l := quota.NewLedger(specs, qw, now)
	return &Upstream{Name: name, Client: c, Admission: admission.New(l, ao), Scopes: scopes,
		mantle: c != nil && c.Service() == upstream.ServiceMantle}, nil
}

// Ledger is the upstream's mirrored quota.
func (u *Upstream) Ledger() *quota.Ledger { return u.Admission.Ledger() }

func (u *Upstream) check() error {
	if u.Name == "" || u.Client == nil || u.Admission == nil {
		return fmt.Errorf("gateway: upstream %q needs a name, a client and an admission controller", u.Name)
	}
	if n := u.Ledger().Len(); n != len(u.Scopes) {
		return fmt.Errorf("gateway: upstream %q has %d bucket scopes for %d ledger buckets", u.Name, len(u.Scopes), n)
	}
	u.profiles.static = u.Profiles
	u.modelIDKeys = slices.Sorted(maps.Keys(u.ModelIDs))
	u.alone = []*Upstream{u}
	return nil
}

func (u *Upstream) servedBy(reason string) {
	u.servedMu.Lock()
	defer u.servedMu.Unlock()
	if u.served == nil {
		u.served = map[string]int64{}
	}
	u.served[reason]++
}

// RouteStatus is an upstream's part in its routes, for /v1/status: its
// circuit breaker and the requests it served, by reason.
type RouteStatus struct {
	BreakerState
	Served map[string]int64 `json:"served"`
}

// RouteStatus returns the upstream's routing state now.
func (u *Upstream) RouteStatus() RouteStatus {
	u.servedMu.Lock()
	served := maps.Clone(u.served)
	u.servedMu.Unlock()
	if served == nil {
		served = map[string]int64{}
	}
	return RouteStatus{BreakerState: u.brk.state(), Served: served}
}

// matched refuses a model that no bucket of an upstream mirroring some
// matches, unless the upstream allows it: such a call would draw on a
// quota the gateway does not see.
func (u *Upstream) matched(m bedrock.Model, set quota.Set) error {
	if set != 0 || u.AllowUnmatched || u.Ledger().Len() == 0 {
		return nil
	}
	return bedrock.Errorf(bedrock.ValidationException,
		"Headroom mirrors no quota of upstream %q for model %s, so it cannot admit it; ask the operator to add a bucket for it (or to set unmatched: unlimited on the upstream)", u.Name, m.ID)
}

// maxSetCache bounds the per-model cache of bucket sets, since model IDs
// come from clients.
const maxSetCache = 1024

// set returns the buckets a call to m draws from: on the runtime, every
// bucket whose scope matches; on Mantle, which keeps one input and one
// output quota per model, the first matching bucket of each kind (as the
// emulator matches them: list the narrower scope first).
func (u *Upstream) set(m bedrock.Model) quota.Set {
	k := setKey{m.Base, m.CrossRegion()}
	u.setsMu.RLock()
	s, ok := u.sets[k]
	u.setsMu.RUnlock()
	if ok {
		return s
	}
	region := u.Client.Region()
	l := u.Ledger()
	var kinds quota.Set // of the buckets taken, by Kind, for Mantle
	for i, sc := range u.Scopes {
		if !sc.Matches(region, m) {
			continue
		}
		if k := quota.Bit(int(l.Spec(i).Kind)); u.mantle {
			if kinds&k != 0 {
				continue
			}
			kinds |= k
		}
		s |= quota.Bit(i)
	}
	u.setsMu.Lock()
	if u.sets == nil {
		u.sets = make(map[setKey]quota.Set)
	}
	if len(u.sets) < maxSetCache {
		u.sets[k] = s
	}
	u.setsMu.Unlock()
	return s
}
