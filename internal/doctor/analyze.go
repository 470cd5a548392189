package doctor

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/dustin/go-humanize"
	"github.com/headroomhq/headroom/internal/bedrock"
)

// Options are the doctor's inputs besides the settings.
type Options struct {
	// InputTokens is the input assumed per request (the reservation counts
	// it once). Default 0: the numbers then show what max_tokens alone costs.
	InputTokens int
	// CallsPerTask is the number of model calls one agent task makes
	// (the seed: "20 or 30 API calls"). Default 25.
	CallsPerTask int
	// TPM and TPD override the quota of the main model (0: live quotas when
	// probed, else BEDROCK.md's defaults).
	TPM, TPD int64
	// SeverityProfile is the accounting profile whose numbers set the
	// severity of findings: "seed" (default, the pessimistic reading the
	// emulator also defaults to) or "aws".
	SeverityProfile string
	// Burndown is the output burndown table; nil means bedrock.DefaultBurndown.
	Burndown bedrock.Burndown
}

// Defaults for Options.
const (
	DefaultCallsPerTask = 25
	DefaultInputTokens  = 0
)

func (o Options) withDefaults() Options {
	if o.CallsPerTask <= 0 {
		o.CallsPerTask = DefaultCallsPerTask
	}
	if o.InputTokens < 0 {
		o.InputTokens = 0
	}
	if o.SeverityProfile == "" {
		o.SeverityProfile = bedrock.ProfileSeed.Name
	}
	if o.Burndown == nil {
		o.Burndown = bedrock.DefaultBurndown()
	}
	return o
}

// Report is everything the doctor found. Its JSON form is `doctor --json`.
type Report struct {
	Layers      []Layer       `json:"settings"`
	AWS         AWSEnv        `json:"aws"`
	Assumptions Assumptions   `json:"assumptions"`
	Models      []ModelReport `json:"models"`
	Findings    []Finding     `json:"findings"`
	Probe       *ProbeResult  `json:"probe,omitempty"`
	Verdict     Verdict       `json:"verdict"`
	// SupportCase is a ready-to-send AWS Support case, for Situation 1.
	SupportCase string `json:"support_case,omitempty"`
}

// AWSEnv is the AWS side of the environment Claude Code runs with. A bearer
// key is reported as set or not, never shown.
type AWSEnv struct {
	UseBedrock bool   `json:"use_bedrock"`
	Region     Value  `json:"region"`
	Profile    Value  `json:"profile"`
	BearerKey  bool   `json:"bearer_key_set"`
	BearerFrom string `json:"bearer_key_from,omitempty"`
	SkipAuth   bool   `json:"skip_auth"`
	BaseURL    Value  `json:"base_url"`
	// UseMantle is Claude Code's Mantle mode (CLAUDE_CODE_USE_MANTLE);
	// MantleBaseURL is ANTHROPIC_BEDROCK_MANTLE_BASE_URL.
	UseMantle     bool  `json:"use_mantle"`
	MantleBaseURL Value `json:"mantle_base_url"`
}

// Assumptions are the inputs the numbers depend on.
type Assumptions struct {
	InputTokens     int    `json:"input_tokens"`
	CallsPerTask    int    `json:"calls_per_task"`
	SeverityProfile string `json:"severity_profile"`
}

// Roles of the models Claude Code calls.
const (
	RoleMain  = "main"
	RoleSmall = "small"
)

// ModelReport is what one model's requests reserve and how many fit.
type ModelReport struct {
	Role      string `json:"role"`
	ID        string `json:"id"`
	From      string `json:"from"`
	Output    Output `json:"output"`
	Burndown  int    `json:"burndown"`
	Limits    Limits `json:"limits"`
	ToolCalls int    `json:"tool_concurrency"`
	// Fits has one entry per accounting profile: seed, then aws.
	Fits []Fit `json:"fits"`
	// Advised is the seed profile's fit with max_tokens 4,096, for comparison.
	Advised Fit `json:"advised"`
	// Mantle is what a call reserves on bedrock-mantle, in Mantle mode.
	Mantle *MantleFit `json:"mantle,omitempty"`
	// Gateway is set when a Headroom gateway said it caps this model's
	// max_tokens below what Claude Code asks: Output and Fits then hold
	// what goes upstream.
	Gateway *GatewayCap `json:"gateway_cap,omitempty"`

	model bedrock.Model
}

// GatewayCap is what a gateway does to one model's max_tokens.
type GatewayCap struct {
	// Asked is what Claude Code sends; MaxTokens what the gateway forwards.
	Asked     int    `json:"asked"`
	MaxTokens int    `json:"max_tokens"`
	Reason    string `json:"reason"`
	// AskedReservation is what a call would reserve uncapped (seed).
	AskedReservation int64 `json:"asked_reservation"`
}

// Fit is what one request reserves under a profile and how much fits in the
// quota. Counts assume each request's reservation is held in full (what
// admission checks); settlement gives part of it back later.
type Fit struct {
	Profile           string  `json:"profile"`
	MaxTokens         int     `json:"max_tokens"`
	Reservation       int64   `json:"reservation"`
	RequestsPerMinute int64   `json:"requests_per_minute"`
	RequestsPerDay    int64   `json:"requests_per_day"`
	TasksPerMinute    float64 `json:"tasks_per_minute"`
	TasksPerDay       float64 `json:"tasks_per_day"`
	// Spike is what ToolCalls requests started together reserve.
	Spike int64 `json:"spike"`
}

// Fit returns the model's fit under the named profile.
func (m ModelReport) Fit(profile string) (Fit, bool) {
	for _, f := range m.Fits {
		if f.Profile == profile {
			return f, true
		}
	}
	return Fit{}, false
}

// Analyze builds the report for settings s. probe, when not nil, is what
// Probe saw: its applied quotas fill the limits the options leave open, and
// its calls decide the verdict.
func Analyze(s Settings, opt Options, probe *ProbeResult) Report {
	opt = opt.withDefaults()
	region := Region(s)
	r := Report{
		Layers: s.Layers,
		AWS:    awsEnv(s, region),
		Assumptions: Assumptions{
			InputTokens: opt.InputTokens, CallsPerTask: opt.CallsPerTask, SeverityProfile: opt.SeverityProfile,
		},
		Probe: probe,
	}
	conc, _ := ToolConcurrency(s)
	for _, role := range []string{RoleMain, RoleSmall} {
		id := MainModel(s, region.Value)
		if role == RoleSmall {
			id = SmallModel(s, region.Value)
		}
		m, err := bedrock.ParseModel(id.Value)
		if err != nil {
			m = bedrock.Model{ID: id.Value, Base: id.Value}
		}
		mr := ModelReport{Role: role, ID: id.Value, From: id.From, model: m, ToolCalls: conc}
		mr.Output = EffectiveOutput(s, m)
		mr.Burndown = opt.Burndown.Rate(m)
		applyGatewayCap(&mr, opt, probe)
		mr.Limits = limitsFor(m, region.Value, role, opt, probe)
		for _, p := range []bedrock.Profile{bedrock.ProfileSeed, bedrock.ProfileAWS} {
			mr.Fits = append(mr.Fits, fit(p, mr.Output.MaxTokens, opt, mr, conc))
		}
		mr.Advised = fit(bedrock.ProfileSeed, AdvisedMaxOutputTokens, opt, mr, conc)
		if Mantle(s) {
			mr.Mantle = mantleFit(opt, mr)
		}
		r.Models = append(r.Models, mr)
	}
	r.Findings = findings(s, opt, r)
	r.Verdict = verdict(r)
	// Through a gateway the quotas are its mirror of them, and the request
	// IDs its own: the support case comes from a probe of AWS itself.
	if r.Verdict.Situation == SituationProvisioning && probe != nil && !probe.ThroughGateway() {
		r.SupportCase = SupportCase(r)
	}
	return r
}

func awsEnv(s Settings, region Value) AWSEnv {
	e := AWSEnv{UseBedrock: truthy(s, EnvUseBedrock), Region: region, SkipAuth: truthy(s, EnvSkipAuth)}
	if v, ok := s.Get(EnvProfile); ok {
		e.Profile = v
	} else {
		e.Profile = Value{Value: "default", From: "default"}
	}
	if v, ok := s.Get(EnvBearer); ok {
		e.BearerKey, e.BearerFrom = true, v.From
	}
	if v, ok := s.Get(EnvBaseURL); ok {
		e.BaseURL = v
	}
	e.UseMantle = Mantle(s)
	if v, ok := s.Get(EnvMantleBaseURL); ok {
		e.MantleBaseURL = v
	}
	return e
}

// limitsFor picks the quota the numbers use: flags (main model only), then
// applied quotas read live, then documented defaults.
func limitsFor(m bedrock.Model, region, role string, opt Options, probe *ProbeResult) Limits {
	l := DefaultLimits(m, region)
	if rp, ok := probe.region(region); ok && probe.Model != m.ID && slices.ContainsFunc(rp.Quotas, Quota.Low) {
		// Not probed, but the account's quotas for the model that was are
		// 0 or far below: the documented defaults are not this account's.
		l.AppliedLow = true
		l.Source += "; not probed, and the probed model's applied quotas are 0 or far below"
	}
	if probe.ThroughGateway() && probe.Model != m.ID {
		// The gateway mirrors the other models' quotas too.
		rp := RegionProbe{Quotas: gatewayQuotas(probe.Gateway, m.ID)}
		if v, code, ok := rp.applied("tpm"); ok && !slices.ContainsFunc(rp.Quotas, Quota.Low) {
			l.TPM, l.TPMCode, l.Source = v, code, QuotaSourceGateway
		}
		if v, code, ok := rp.applied("tpd"); ok && !slices.ContainsFunc(rp.Quotas, Quota.Low) {
			l.TPD, l.TPDCode, l.Source = v, code, QuotaSourceGateway
		}
	}
	if probe != nil && probe.Model == m.ID {
		// Applied values far below default are a provisioning problem the
		// applied-quota finding reports; the settings are judged against
		// the quota the account should have.
		rp, ok := probe.region(region)
		switch {
		case ok && slices.ContainsFunc(rp.Quotas, Quota.Low):
			l.AppliedLow = true
			l.Source += "; applied: 0 or far below, see findings"
		case ok:
			src := cmp.Or(rp.QuotaSource, QuotaSourceServiceQuotas)
			if v, code, ok := rp.applied("tpm"); ok {
				l.TPM, l.TPMCode, l.Source = v, code, src
			}
			if v, code, ok := rp.applied("tpd"); ok {
				l.TPD, l.TPDCode, l.Source = v, code, src
			}
		}
	}
	if role == RoleMain && (opt.TPM > 0 || opt.TPD > 0) {
		if opt.TPM > 0 {
			l.TPM = opt.TPM
		}
		if opt.TPD > 0 {
			l.TPD = opt.TPD
		}
		l.Source = "flags --tpm/--tpd"
	}
	return l
}

func fit(p bedrock.Profile, maxTokens int, opt Options, mr ModelReport, conc int) Fit {
	res := p.Admission(bedrock.Demand{InputTokens: opt.InputTokens, MaxTokens: maxTokens}, mr.Burndown)
	f := Fit{Profile: p.Name, MaxTokens: maxTokens, Reservation: res, Spike: int64(conc) * res}
	if res > 0 {
		f.RequestsPerMinute = mr.Limits.TPM / res
		f.RequestsPerDay = mr.Limits.TPD / res
	}
	f.TasksPerMinute = float64(f.RequestsPerMinute) / float64(opt.CallsPerTask)
	f.TasksPerDay = float64(f.RequestsPerDay) / float64(opt.CallsPerTask)
	return f
}

// ratio formats a/b as "7.8x".
func ratio(a, b int64) string {
	if b == 0 {
		return "∞"
	}
	return fmt.Sprintf("%.1fx", float64(a)/float64(b))
}

// applyGatewayCap makes the numbers of a model whose max_tokens a Headroom
// gateway caps those of what goes upstream: the gateway, not Claude Code's
// setting, decides what each call reserves.
func applyGatewayCap(mr *ModelReport, opt Options, probe *ProbeResult) {
	if !probe.ThroughGateway() {
		return
	}
	gm, ok := probe.Gateway.Model(mr.ID)
	if !ok || gm.Error != "" || gm.MaxTokens <= 0 || gm.MaxTokens >= mr.Output.MaxTokens {
		return
	}
	asked := mr.Output.MaxTokens
	mr.Gateway = &GatewayCap{Asked: asked, MaxTokens: gm.MaxTokens, Reason: gm.Reason,
		AskedReservation: bedrock.ProfileSeed.Admission(bedrock.Demand{InputTokens: opt.InputTokens, MaxTokens: asked}, mr.Burndown)}
	mr.Output.MaxTokens = gm.MaxTokens
	mr.Output.MaxTokensFrom = fmt.Sprintf("the gateway's cap (%s; Claude Code asks %s)", gm.Reason, humanize.Comma(int64(asked)))
	if mr.Output.Thinking == ThinkingEnabled && mr.Output.Budget >= gm.MaxTokens {
		mr.Output.Budget, mr.Output.BudgetFrom = gm.MaxTokens-1, "the gateway's cap − 1"
	}
}
