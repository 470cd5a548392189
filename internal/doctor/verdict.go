package doctor

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dustin/go-humanize"
)

// Situations, as the seed names them.
const (
	SituationNone         = 0 // healthy or inconclusive
	SituationProvisioning = 1 // a provisioning problem: only AWS Support can fix it
	SituationReservations = 2 // reservations burn the quota: settings can fix it
)

// Verdict names.
const (
	VerdictProvisioning = "provisioning"
	VerdictReservations = "reservations"
	VerdictHealthy      = "healthy"
	VerdictInconclusive = "inconclusive"
	// VerdictNoCredentials: the probe was refused for want of credentials,
	// so it says nothing about the quota; the summary says what is missing.
	VerdictNoCredentials = "no-credentials"
)

// Verdict is the doctor's conclusion.
type Verdict struct {
	Situation int      `json:"situation"`
	Name      string   `json:"name"`
	Summary   string   `json:"summary"`
	Reasons   []string `json:"reasons"`
	Probed    bool     `json:"probed"`
	// Gateway says what a probed Headroom gateway does about the quota.
	Gateway []string `json:"gateway,omitempty"`
}

// regionState is what one region's probe says.
type regionState struct {
	provisioning, burning, failed, noCredentials bool
	reason                                       string
}

func classify(rp RegionProbe) regionState {
	var tiny, sized *Call
	for i := range rp.Calls {
		switch rp.Calls[i].Kind {
		case CallTiny:
			tiny = &rp.Calls[i]
		case CallSized:
			sized = &rp.Calls[i]
		}
	}
	known := slices.ContainsFunc(rp.Quotas, func(q Quota) bool { return q.Applied != nil })
	var low []string
	for _, q := range rp.Quotas {
		if q.Low() {
			low = append(low, fmt.Sprintf("%s %s of %s", q.Code, optCommas(q.Applied), optCommas(q.Default)))
		}
	}
	at := rp.Region + ": "
	switch {
	case len(low) > 0:
		return regionState{provisioning: true, reason: at + "applied quotas are 0 or far below default (" + strings.Join(low, ", ") + ")"}
	case tiny == nil:
		return regionState{failed: true, reason: at + "no request was sent"}
	case tiny.Auth:
		return regionState{noCredentials: true, reason: at + "the request was refused for want of credentials (" + tiny.ErrorType + ": " + tiny.Message + ")"}
	case tiny.Daily() && !known:
		return regionState{provisioning: true, reason: at + "a max_tokens 1 request was refused with \"" + tiny.Message + "\""}
	case tiny.Throttled():
		return regionState{burning: true, reason: at + "a max_tokens 1 request was throttled (\"" + tiny.Message + "\") although the applied quotas look normal: the quota is held by reservations (this client's or another on the account)"}
	case !tiny.OK:
		return regionState{failed: true, reason: at + "the probe failed: " + tiny.ErrorType + ": " + tiny.Message}
	case sized != nil && sized.Throttled():
		return regionState{burning: true, reason: fmt.Sprintf("%sa max_tokens 1 request passed but the same request with max_tokens %s (Claude Code's setting) was throttled (%q)",
			at, humanize.Comma(int64(sized.MaxTokens)), sized.Message)}
	}
	return regionState{reason: at + "requests pass"}
}

// reservationFinding reports whether f is a critical finding about what
// requests reserve.
func reservationFinding(f Finding) bool {
	return f.Severity == Critical && (f.ID == FindMaxOutput || f.ID == FindQuotaFit || f.ID == FindSpike || f.ID == FindMantle)
}

func verdict(r Report) Verdict {
	var settings []string
	for _, f := range r.Findings {
		if reservationFinding(f) {
			settings = append(settings, f.Title)
		}
	}
	if r.Probe == nil {
		if len(settings) > 0 {
			return Verdict{Situation: SituationReservations, Name: VerdictReservations,
				Summary: "Situation 2: your settings make every request reserve far more quota than it uses (not probed: add --probe to test the account).",
				Reasons: settings}
		}
		return Verdict{Situation: SituationNone, Name: VerdictHealthy,
			Summary: "No setting burns the quota (not probed: add --probe to test the account).",
			Reasons: []string{}}
	}
	var states []regionState
	for _, rp := range r.Probe.Regions {
		states = append(states, classify(rp))
	}
	reasons := func(keep func(regionState) bool) []string {
		out := []string{}
		for _, s := range states {
			if keep(s) {
				out = append(out, s.reason)
			}
		}
		return out
	}
	all := func(p func(regionState) bool) bool {
		return len(states) > 0 && !slices.ContainsFunc(states, func(s regionState) bool { return !p(s) })
	}
	some := func(p func(regionState) bool) bool { return slices.ContainsFunc(states, p) }
	v := probedVerdict(r, states, settings, all, some, reasons)
	if r.Probe.ThroughGateway() {
		v.Gateway = gatewayDoing(r)
	}
	return v
}

// probedVerdict is the verdict of a probe whose regions are in states.
func probedVerdict(r Report, states []regionState, settings []string, all, some func(func(regionState) bool) bool, reasons func(func(regionState) bool) []string) Verdict {
	gw := r.Probe.ThroughGateway()
	switch {
	case all(func(s regionState) bool { return s.noCredentials }):
		return Verdict{Situation: SituationNone, Name: VerdictNoCredentials, Probed: true,
			Summary: "No verdict: the probe was refused for want of credentials, so it tells nothing about the quota. Missing: " + missingCredentials(r.Probe, r.AWS),
			Reasons: reasons(func(regionState) bool { return true })}
	case all(func(s regionState) bool { return s.provisioning }) && gw:
		return Verdict{Situation: SituationProvisioning, Name: VerdictProvisioning, Probed: true,
			Summary: "Situation 1 for the account behind the gateway: the quotas Headroom mirrors for this model are 0 or far below the default, so not even a tiny request fits. Only AWS Support can fix that; the gateway's operator should run headroom doctor --probe with the account's own AWS credentials for a ready-to-send support case.",
			Reasons: reasons(func(regionState) bool { return true })}
	case all(func(s regionState) bool { return s.provisioning }):
		return Verdict{Situation: SituationProvisioning, Name: VerdictProvisioning, Probed: true,
			Summary: "Situation 1: a provisioning problem. Even a tiny request is refused in every region tried; only AWS Support can fix it: send the case below.",
			Reasons: reasons(func(regionState) bool { return true })}
	case (some(func(s regionState) bool { return s.burning }) || len(settings) > 0) && gw:
		return Verdict{Situation: SituationReservations, Name: VerdictReservations, Probed: true,
			Summary: "Situation 2 behind the gateway: the account's quota is real, but reservations hold it (the gateway's mirror is full, or a setting reserves more than it caps); see what Headroom does below and the fixes above.",
			Reasons: append(reasons(func(s regionState) bool { return s.burning }), settings...)}
	case some(func(s regionState) bool { return s.burning }) || len(settings) > 0:
		return Verdict{Situation: SituationReservations, Name: VerdictReservations, Probed: true,
			Summary: "Situation 2: the quota is real, but reservations burn through it; apply the fixes below.",
			Reasons: append(reasons(func(s regionState) bool { return s.burning }), settings...)}
	case all(func(s regionState) bool { return s.failed }):
		return Verdict{Situation: SituationNone, Name: VerdictInconclusive, Probed: true,
			Summary: "Inconclusive: the probe could not reach Bedrock in any region.",
			Reasons: reasons(func(regionState) bool { return true })}
	case gw:
		return Verdict{Situation: SituationNone, Name: VerdictHealthy, Probed: true,
			Summary: "Healthy through Headroom: requests pass, the quotas the gateway mirrors for the account are normal, and no setting burns them.",
			Reasons: reasons(func(regionState) bool { return true })}
	}
	return Verdict{Situation: SituationNone, Name: VerdictHealthy, Probed: true,
		Summary: "Healthy: requests pass and no setting burns the quota.",
		Reasons: reasons(func(regionState) bool { return true })}
}

func probeFindings(r Report) []Finding {
	var fs []Finding
	for _, rp := range r.Probe.Regions {
		var low []string
		for _, q := range rp.Quotas {
			if q.Low() {
				low = append(low, fmt.Sprintf("%s %s is %s (default %s)", q.Code, q.Name, optCommas(q.Applied), optCommas(q.Default)))
			}
		}
		if len(low) > 0 {
			fs = append(fs, Finding{ID: FindAppliedQuota, Severity: Critical,
				Title: "Applied quotas in " + rp.Region + " are 0 or far below the default",
				Why:   "An account whose effective quota is near zero throttles every request however small, and no setting can fix it: " + strings.Join(low, "; ") + ".",
				Fix:   &Fix{Action: "Open an AWS Support case asking to correct the effective quotas; the text is under \"Support case\"."}})
		}
		if rp.QuotaError != "" {
			fs = append(fs, Finding{ID: FindProbeError, Severity: Info,
				Title: "Could not read Service Quotas in " + rp.Region,
				Why:   "Without the applied values the doctor cannot tell a quota of 0 from a busy one: " + rp.QuotaError + ".",
				Fix:   &Fix{Action: "Allow servicequotas:ListServiceQuotas, GetServiceQuota and ListAWSDefaultServiceQuotas, or pass the values with --tpm and --tpd."}})
		}
		for _, c := range rp.Calls {
			if c.Auth {
				fs = append(fs, Finding{ID: FindProbeError, Severity: Warning,
					Title: fmt.Sprintf("The %s probe request was refused for want of credentials in %s", c.Kind, rp.Region),
					Why:   fmt.Sprintf("%s answered %s: %s (x-amzn-RequestId %s), which says nothing about the quota.", probeTarget(r.Probe), c.ErrorType, c.Message, orUnknown(c.RequestID)),
					Fix:   &Fix{Action: "Provide " + missingCredentials(r.Probe, r.AWS)}})
				continue
			}
			if !c.OK && !c.Throttled() {
				fs = append(fs, Finding{ID: FindProbeError, Severity: Warning,
					Title: fmt.Sprintf("The %s probe request failed in %s", c.Kind, rp.Region),
					Why:   fmt.Sprintf("Bedrock answered %s: %s (x-amzn-RequestId %s), which is not a quota problem.", c.ErrorType, c.Message, orUnknown(c.RequestID)),
					Fix:   &Fix{Action: "Check credentials, model access for " + r.Probe.Model + " in " + rp.Region + ", and the endpoint."}})
			}
		}
	}
	return fs
}

func optCommas(v *int64) string {
	if v == nil {
		return "unknown"
	}
	return humanize.Comma(*v)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
