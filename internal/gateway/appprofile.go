package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// Application inference profiles. A call to
// arn:aws:bedrock:REGION:ACCOUNT:application-inference-profile/ID draws on
// the quota of the model the profile runs, but its ID does not name that
// model, so no bucket would match it and the mirror would admit it for
// free (30 concurrent streams admitted with 0 reserved, where Sonnet 4
// admits 9). The gateway resolves the profile to its model, for buckets,
// caps, burndown and routes, and still sends the ARN upstream:
//   - from the upstream's configuration (inference_profiles: ARN or ID ->
//     model identifier), else
//   - once, through the control plane (GetInferenceProfile), cached: a
//     profile's model cannot change.
//
// A model that still matches no bucket of an upstream that mirrors some is
// refused, naming the model, unless the upstream says unmatched: unlimited.

// maxProfileCache bounds the resolved profiles kept, since ARNs come from
// clients; failed lookups are kept profileRetry.
const (
	maxProfileCache = 1024
	profileRetry    = time.Minute
	profileTimeout  = 10 * time.Second
)

// appProfiles resolves application inference profiles for one upstream.
type appProfiles struct {
	static map[string]string // configured: ARN or profile ID -> model identifier
	group  singleflight.Group

	mu    sync.Mutex
	cache map[string]profileEntry
}

type profileEntry struct {
	model  bedrock.Model
	err    error
	expiry time.Time // zero: for good
}

// isAppProfile reports whether m names an application inference profile.
func isAppProfile(m bedrock.Model) bool {
	return strings.Contains(m.ID, ":application-inference-profile/")
}

// resolveModel returns m with Base and Geo of the model the application
// inference profile m runs (ID, Region and Account kept); any other m as
// it is.
func (g *Gateway) resolveModel(ctx context.Context, m bedrock.Model, key string) (bedrock.Model, error) {
	if !isAppProfile(m) {
		return m, nil
	}
	u := g.defaultUpstream(key)
	for _, o := range g.ordered {
		if o.Client != nil && o.Client.Region() == m.Region {
			u = o
			break
		}
	}
	r, err := u.profiles.resolve(ctx, u, m, g.now())
	if err != nil {
		return m, bedrock.Errorf(bedrock.ValidationException,
			"Headroom cannot tell which model the application inference profile %s runs (%v), so it cannot count it against a quota; ask the operator to map it under the upstream's inference_profiles", m.ID, err)
	}
	r.ID, r.Region, r.Account = m.ID, m.Region, m.Account
	return r, nil
}

func (p *appProfiles) resolve(ctx context.Context, u *Upstream, m bedrock.Model, now time.Time) (bedrock.Model, error) {
	id := m.ID[strings.LastIndexByte(m.ID, '/')+1:]
	for _, k := range []string{m.ID, id} {
		if v, ok := p.static[k]; ok {
			return bedrock.ParseModel(v)
		}
	}
	p.mu.Lock()
	e, ok := p.cache[m.ID]
	p.mu.Unlock()
	if ok && (e.expiry.IsZero() || now.Before(e.expiry)) {
		return e.model, e.err
	}
	v, err, _ := p.group.Do(m.ID, func() (any, error) {
		// Not the request's context: the answer serves every caller.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), profileTimeout)
		defer cancel()
		r, err := lookupProfile(cctx, u, m)
		e := profileEntry{model: r, err: err}
		if err != nil {
			e.expiry = now.Add(profileRetry)
		}
		p.mu.Lock()
		if p.cache == nil {
			p.cache = map[string]profileEntry{}
		}
		if len(p.cache) >= maxProfileCache {
			clear(p.cache) // rare; made-up ARNs must not grow it without bound
		}
		p.cache[m.ID] = e
		p.mu.Unlock()
		return r, err
	})
	r, _ := v.(bedrock.Model)
	return r, err
}

// lookupProfile asks the control plane (GetInferenceProfile) which model a
// profile runs. Its models are the foundation models it may call, one per
// region; more than one region means a cross-region profile, whose
// geography is taken from the profile's own region.
func lookupProfile(ctx context.Context, u *Upstream, m bedrock.Model) (bedrock.Model, error) {
	// GetInferenceProfile takes the profile's ID as well as its ARN; the ID
	// needs no escaping.
	id := m.ID[strings.LastIndexByte(m.ID, '/')+1:]
	if id == "" || strings.ContainsAny(id, "%?#.") {
		return bedrock.Model{}, fmt.Errorf("profile ID %q", id)
	}
	resp, err := u.Client.Control(ctx, "/inference-profiles/"+id, "")
	if err != nil {
		return bedrock.Model{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return bedrock.Model{}, fmt.Errorf("GetInferenceProfile answered HTTP %d", resp.StatusCode)
	}
	var out struct {
		Models []struct {
			ModelArn string `json:"modelArn"`
		} `json:"models"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return bedrock.Model{}, fmt.Errorf("GetInferenceProfile: %w", err)
	}
	if len(out.Models) == 0 {
		return bedrock.Model{}, fmt.Errorf("GetInferenceProfile lists no model")
	}
	fm, err := bedrock.ParseModel(out.Models[0].ModelArn)
	if err != nil {
		return bedrock.Model{}, fmt.Errorf("GetInferenceProfile: %w", err)
	}
	regions := map[string]bool{}
	for _, x := range out.Models {
		if xm, err := bedrock.ParseModel(x.ModelArn); err == nil {
			regions[xm.Region] = true
		}
	}
	if len(regions) > 1 {
		fm.Geo = geoOf(m.Region)
	}
	return fm, nil
}

// geoOf is the cross-region geography of a region.
func geoOf(region string) string {
	switch {
	case strings.HasPrefix(region, "us-gov-"):
		return "us-gov"
	case strings.HasPrefix(region, "us-"):
		return "us"
	case strings.HasPrefix(region, "eu-"):
		return "eu"
	case strings.HasPrefix(region, "ap-"):
		return "apac"
	case strings.HasPrefix(region, "ca-"):
		return "ca"
	}
	return "global"
}
