package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/doctorapi"
)

// GatewayPath is where a Headroom gateway answers the doctor.
const GatewayPath = doctorapi.Path

// GatewayInfo is what a Headroom gateway says about the account behind it
// and what it does about it (GET /v1/doctor).
type GatewayInfo = doctorapi.Answer

// Ask is a model the doctor asks a gateway about, with the max_tokens
// Claude Code sends it.
type Ask struct {
	Model     string
	MaxTokens int
}

// gatewayAnswer is the outcome of asking an endpoint for GatewayPath:
// info when a Headroom gateway answered; authErr when it refused the
// credentials; neither when the endpoint is something else (the emulator,
// another gateway), which the doctor then probes as Bedrock.
type gatewayAnswer struct {
	info    *GatewayInfo
	authErr string
}

// askGateway asks the endpoint what it knows, authenticated as the probe's
// runtime calls are (the developer key).
func askGateway(ctx context.Context, pc ProbeConfig, asks []Ask) gatewayAnswer {
	var info *GatewayInfo
	for _, a := range asks {
		q := url.Values{"model": {a.Model}}
		if a.MaxTokens > 0 {
			q.Set("max_tokens", strconv.Itoa(a.MaxTokens))
		}
		got, ans := getGateway(ctx, pc, q)
		if got == nil {
			return ans
		}
		if info == nil {
			info = got
		} else {
			info.Models = append(info.Models, got.Models...)
		}
	}
	if info == nil {
		info, ans := getGateway(ctx, pc, url.Values{})
		if info == nil {
			return ans
		}
		return gatewayAnswer{info: info}
	}
	return gatewayAnswer{info: info}
}

func getGateway(ctx context.Context, pc ProbeConfig, q url.Values) (*GatewayInfo, gatewayAnswer) {
	u := strings.TrimRight(pc.Endpoint, "/") + GatewayPath
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, gatewayAnswer{}
	}
	if pc.GatewayKey != "" {
		req.Header.Set("Authorization", "Bearer "+pc.GatewayKey)
	}
	var client interface {
		Do(*http.Request) (*http.Response, error)
	} = http.DefaultClient
	if pc.AWS.HTTPClient != nil {
		client = pc.AWS.HTTPClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, gatewayAnswer{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		if e.Message == "" {
			e.Message = resp.Status
		}
		return nil, gatewayAnswer{authErr: fmt.Sprintf("%s %s: %s", resp.Header.Get(bedrock.HeaderErrorType), GatewayPath, e.Message)}
	case resp.StatusCode != http.StatusOK:
		return nil, gatewayAnswer{}
	}
	var info GatewayInfo
	if err := json.Unmarshal(body, &info); err != nil || info.Gateway != "headroom" {
		return nil, gatewayAnswer{}
	}
	return &info, gatewayAnswer{}
}

// gatewayQuotas turns the buckets the gateway mirrors for a model into the
// quotas the probe reports: the applied values the operator configured,
// beside the documented defaults for the upstream's region.
func gatewayQuotas(info *GatewayInfo, model string) []Quota {
	gm, ok := info.Model(model)
	if !ok {
		return nil
	}
	m, _ := bedrock.ParseModel(model)
	var out []Quota
	for _, ref := range gm.Buckets {
		name, bucket, _ := strings.Cut(ref, "/")
		u, ok := info.Upstream(name)
		if !ok {
			continue
		}
		def := DefaultLimits(m, u.Region)
		for _, b := range u.Buckets {
			if b.Name != bucket {
				continue
			}
			q := Quota{Code: ref, Name: fmt.Sprintf("%s, mirrored by Headroom (upstream %s, %s)", b.Name, u.Name, u.Region),
				Kind: b.Kind, Applied: ptr(b.Limit), Unit: "None", ARN: ""}
			switch b.Kind {
			case "tpm":
				q.Default = ptr(def.TPM)
			case "tpd":
				q.Default = ptr(def.TPD)
			}
			out = append(out, q)
		}
	}
	return out
}

func ptr(n int64) *int64 { return &n }

// probeTarget names what the probe called.
func probeTarget(p *ProbeResult) string {
	switch {
	case p.ThroughGateway():
		return "The Headroom gateway at " + p.Endpoint
	case p.Endpoint != "":
		return p.Endpoint
	}
	return "Amazon Bedrock"
}

// missingCredentials says which credentials the probe lacked, and how to
// provide them.
func missingCredentials(p *ProbeResult, a AWSEnv) string {
	bearerFrom := ""
	if a.BearerKey {
		bearerFrom = " (AWS_BEARER_TOKEN_BEDROCK from " + a.BearerFrom + ")"
	}
	switch {
	case p.Endpoint != "" && !p.BearerKey && p.NoCredentials != "":
		return "a Headroom key. Nothing was sent: set " + EnvBearer + " to the key 'headroom keys create NAME' printed (in the \"env\" of Claude Code's settings.json, or exported), or give it as AWS_ACCESS_KEY_ID."
	case p.Endpoint != "":
		return "a key the endpoint accepts. It refused the one sent" + bearerFrom + ": check that it is the whole hr_... key and not revoked ('headroom keys list' on the gateway)."
	case p.NoCredentials != "" && !p.BearerKey:
		return "AWS credentials. The SDK's credential chain found none (" + p.NoCredentials + "): sign in (aws sso login), set AWS_PROFILE, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. A Bedrock API key (" + EnvBearer + ") covers the model call, but reading Service Quotas needs AWS credentials."
	case p.NoCredentials != "":
		return "AWS credentials for Service Quotas, which a Bedrock API key does not cover, and a Bedrock API key that Bedrock accepts" + bearerFrom + "."
	}
	return "credentials that AWS accepts: it refused the ones found (expired or wrong? try aws sts get-caller-identity)."
}

// gatewayDoing says, in sentences, what a Headroom gateway does about the
// quota for the models of the report.
func gatewayDoing(r Report) []string {
	g := r.Probe.Gateway
	var out []string
	var used []string // upstream/bucket of the main model
	for i, mr := range r.Models {
		gm, ok := g.Model(mr.ID)
		if !ok {
			continue
		}
		if gm.Error != "" {
			out = append(out, fmt.Sprintf("It refuses %s: %s.", gm.ID, gm.Error))
			continue
		}
		if i == 0 {
			used = gm.Buckets
		}
		route := "sends " + gm.ID + " to upstream " + gm.Route[0]
		if len(gm.Route) > 1 {
			route += ", or to " + strings.Join(gm.Route[1:], ", then ") + " when it has no room now or fails before the first byte (a started stream is never retried)"
		}
		if gm.MaxTokens < gm.Asked {
			out = append(out, fmt.Sprintf("It caps max_tokens of %s at %s (%s policy: %s) where Claude Code asks %s, and %s.",
				mr.Role+" model "+gm.ID, humanize.Comma(int64(gm.MaxTokens)), g.PolicyMode, gm.Reason, humanize.Comma(int64(gm.Asked)), route))
		} else {
			out = append(out, fmt.Sprintf("It forwards max_tokens %s of %s as asked, and %s.", humanize.Comma(int64(gm.MaxTokens)), mr.Role+" model "+gm.ID, route))
		}
	}
	for _, ref := range used {
		name, bucket, _ := strings.Cut(ref, "/")
		u, ok := g.Upstream(name)
		if !ok {
			continue
		}
		for _, b := range u.Buckets {
			if b.Name != bucket {
				continue
			}
			eff := ""
			if b.Effective != b.Limit {
				eff = fmt.Sprintf(", lowered to %s after upstream throttles", humanize.Comma(b.Effective))
			}
			out = append(out, fmt.Sprintf("It mirrors %s %s of upstream %s (%s): limit %s%s; used %s, reserved %s, available %s now.",
				strings.ToUpper(b.Kind), b.Name, u.Name, u.Region, humanize.Comma(b.Limit), eff, humanize.Comma(b.Used), humanize.Comma(b.Reserved), humanize.Comma(b.Available)))
		}
	}
	for _, u := range g.Upstreams {
		if u.Routing != nil && u.Routing.State != "in" {
			out = append(out, fmt.Sprintf("Upstream %s is out of its routes (%s) until a probe brings it back; its requests go to the others.", u.Name, u.Routing.Cause))
		}
		if u.Queued > 0 || u.InFlight > 0 {
			out = append(out, fmt.Sprintf("Upstream %s has %d requests in flight and %d queued.", u.Name, u.InFlight, u.Queued))
		}
	}
	out = append(out, fmt.Sprintf("A request that does not fit waits up to %s in a fair queue instead of getting a 429; one that can never fit is refused at once with what to change.",
		(time.Duration(g.MaxWaitMS)*time.Millisecond).String()))
	return out
}

// GatewayURL is the gateway Claude Code's settings send requests to, or ""
// for Amazon Bedrock: ANTHROPIC_BEDROCK_BASE_URL, or in Mantle mode
// ANTHROPIC_BEDROCK_MANTLE_BASE_URL.
func GatewayURL(s Settings) string {
	if Mantle(s) {
		if v, ok := s.Get(EnvMantleBaseURL); ok {
			return v.Value
		}
		return ""
	}
	if v, ok := s.Get(EnvBaseURL); ok {
		return v.Value
	}
	return ""
}

// gatewayInfo is the gateway the probe asked, or nil.
func (p *ProbeResult) gatewayInfo() *GatewayInfo {
	if !p.ThroughGateway() {
		return nil
	}
	return p.Gateway
}

// routeFindings judge the gateway's route for the main model: one region
// has no failover; several regions or accounts fail over before the first
// byte; an upstream out of its routes is reported with its cause.
func routeFindings(g *GatewayInfo, model string) []Finding {
	var fs []Finding
	for _, u := range g.Upstreams {
		if u.Routing != nil && u.Routing.State != "in" {
			fs = append(fs, Finding{ID: FindUpstreamOut, Severity: Warning,
				Title: fmt.Sprintf("Upstream %s (%s) is out of Headroom's routes", u.Name, u.Region),
				Why: fmt.Sprintf("It kept failing (last: %s), so the gateway sends its requests to the other upstreams of their routes and probes it again later; a daily_quota cause means Bedrock said its daily quota is spent, or applied as 0.",
					u.Routing.Cause),
				Fix: &Fix{Action: "Check the upstream's applied quotas (headroom doctor --probe against it, or the Service Quotas console) and its credentials; the gateway's log says when it went out and when it is back."}})
		}
	}
	gm, ok := g.Model(model)
	if !ok || len(gm.Route) == 0 {
		return fs
	}
	var regions []string
	for _, name := range gm.Route {
		if u, ok := g.Upstream(name); ok && !slices.Contains(regions, u.Region) {
			regions = append(regions, u.Region)
		}
	}
	if len(gm.Route) == 1 {
		return append(fs, Finding{ID: FindRoute, Severity: Info,
			Title: "Headroom sends " + model + " to one upstream, " + gm.Route[0],
			Why:   "When its quota is spent, requests wait in the queue or get a 429: every region keeps its own quota, and the gateway fails over only between the upstreams of a route.",
			Fix:   &Fix{Action: "Ask the operator to add an upstream in another region or account to the route (routes: [{upstreams: [" + gm.Route[0] + ", OTHER]}])."}})
	}
	return append(fs, Finding{ID: FindRoute, Severity: OK,
		Title: fmt.Sprintf("Headroom routes %s over %d upstreams (%s)", model, len(gm.Route), strings.Join(regions, ", ")),
		Why:   "A request goes to the first with room now, and moves to the next on a throttle, a 503 or a connection error before its first byte; each region keeps its own quota, so one exhausted there leaves the others."})
}
