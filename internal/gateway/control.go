package gateway

import (
	"net/http"
	"strings"

	"github.com/headroomhq/headroom/internal/bedrock"

	"github.com/headroomhq/headroom/internal/upstream"
)

// control passes a control-plane GET (Claude Code's
// /inference-profiles?type=SYSTEM_DEFINED) to the key's default upstream,
// re-signed. It costs no quota.
func (g *Gateway) control(w *responseWriter, r *http.Request, c *call) error {
	if r.Method != http.MethodGet {
		return bedrock.Errorf(bedrock.ValidationException, "%s %s is not supported", r.Method, r.URL.Path)
	}
	k, err := g.authenticate(r)
	if err != nil {
		return err
	}
	c.key = k.Name
	// The path goes upstream re-signed with the gateway's credentials: a
	// dot segment would reach other control-plane APIs than this one.
	for _, seg := range strings.Split(r.URL.Path, "/") {
		if seg == "." || seg == ".." {
			return bedrock.Errorf(bedrock.ValidationException, "Invalid path %s", r.URL.Path)
		}
	}
	u := g.defaultUpstream(k.Name)
	c.upstream = u.Name
	resp, err := u.Client.Control(r.Context(), r.URL.Path, r.URL.RawQuery)
	if err != nil {
		return upstreamUnavailable(err)
	}
	defer upstream.Drain(resp)
	relay(w, resp, c)
	return nil
}

// defaultUpstream is the bedrock-runtime upstream of the first route that
// matches any model for the key, else the first runtime one configured
// (Mantle has no control plane), else the first one.
func (g *Gateway) defaultUpstream(key string) *Upstream {
	for _, name := range g.route("", key) {
		if u := g.upstreams[name]; u != nil && u.Client.Service() == upstream.ServiceRuntime {
			return u
		}
	}
	for _, u := range g.ordered {
		if u.Client.Service() == upstream.ServiceRuntime {
			return u
		}
	}
	return g.ordered[0]
}
