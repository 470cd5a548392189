package doctor

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/headroomhq/headroom/internal/bedrock"
)

// Severity says how much a finding matters.
type Severity string

const (
	Critical Severity = "critical"
	Warning  Severity = "warning"
	Info     Severity = "info"
	OK       Severity = "ok"
)

func (s Severity) rank() int {
	switch s {
	case Critical:
		return 0
	case Warning:
		return 1
	case Info:
		return 2
	}
	return 3
}

// Finding IDs, stable for scripts reading --json.
const (
	FindBedrockOff      = "bedrock-off"
	FindSettingsIgnored = "settings-file-ignored"
	FindRegion          = "region"
	FindMaxOutput       = "max-output-tokens"
	FindThinking        = "thinking-budget"
	FindQuotaFit        = "quota-fit"
	FindSpike           = "parallel-spike"
	FindSmallLegacy     = "small-model-legacy-name"
	FindSharedAccount   = "shared-account"
	FindCaching         = "prompt-caching"
	FindAppliedQuota    = "applied-quota"
	FindProbeError      = "probe-error"
	FindRoute           = "route"
	FindUpstreamOut     = "upstream-out"
)

// Finding is one thing the doctor noticed: how much it matters, one plain
// sentence of why, and the exact fix.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	// Model is the role (main or small) the finding is about, if any.
	Model string `json:"model,omitempty"`
	Title string `json:"title"`
	Why   string `json:"why"`
	Fix   *Fix   `json:"fix,omitempty"`
}

// Fix is what to change: a fragment of a Claude Code settings.json, and
// any step settings cannot do.
type Fix struct {
	Settings *SettingsSnippet `json:"settings,omitempty"`
	Action   string           `json:"action,omitempty"`
}

// SettingsSnippet is a fragment of settings.json.
type SettingsSnippet struct {
	Env map[string]string `json:"env"`
}

// envFix is a Fix that sets environment variables in settings.json.
func envFix(kv ...string) *Fix {
	env := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return &Fix{Settings: &SettingsSnippet{Env: env}}
}

// Snippet renders the settings part as one line of JSON, keys sorted.
func (f *Fix) Snippet() string {
	if f == nil || f.Settings == nil {
		return ""
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(f.Settings)
	return strings.NewReplacer(`":`, `": `, `,"`, `, "`).Replace(strings.TrimSpace(b.String()))
}

// fewTasksPerDay is the point below which a quota cannot carry one
// developer's working day (a handful of agent tasks an hour).
const fewTasksPerDay = 10

// gatewayURL is a placeholder for the fix that routes Claude Code through a
// Headroom gateway (`headroom serve` listens on 127.0.0.1:8080 by default).
const gatewayURL = "http://127.0.0.1:8080"

func findings(s Settings, opt Options, r Report) []Finding {
	var fs []Finding
	add := func(f Finding) { fs = append(fs, f) }

	for _, l := range r.Layers {
		if l.Ignored != "" && l.Found && l.Ignored != "same file as the user settings" {
			add(Finding{ID: FindSettingsIgnored, Severity: Warning,
				Title: "Claude Code ignores " + l.Path,
				Why:   "The file is " + l.Ignored + ", so Claude Code skips the whole file and none of its env settings apply.",
				Fix:   &Fix{Action: "Correct the file: it must be a JSON object whose \"env\" is an object of strings."}})
		}
	}
	if !r.AWS.UseBedrock && !r.AWS.UseMantle {
		add(Finding{ID: FindBedrockOff, Severity: Warning,
			Title: "CLAUDE_CODE_USE_BEDROCK is not set",
			Why:   "Without it Claude Code talks to Anthropic's API, not Bedrock, so none of the Bedrock numbers below apply until it is set.",
			Fix:   envFix(EnvUseBedrock, "1")})
	}
	if g := r.Probe.gatewayInfo(); g != nil {
		// Through Headroom, the gateway's upstreams decide the region, not
		// Claude Code's AWS_REGION.
		fs = append(fs, routeFindings(g, r.Models[0].ID)...)
	} else {
		add(regionFinding(r.AWS.Region))
	}

	main := r.Models[0]
	if r.AWS.UseMantle {
		// Bedrock runtime's quotas do not apply: Mantle's ledger does.
		add(mantleFinding(r.AWS, main))
	} else {
		add(maxOutputFinding(s, opt, main))
	}
	for _, m := range r.Models {
		if f, ok := thinkingFinding(m); ok {
			add(f)
		}
		if !r.AWS.UseMantle {
			add(quotaFitFinding(opt, m))
		}
	}
	if !r.AWS.UseMantle {
		add(spikeFinding(opt, main))
	}
	if _, ok := s.Get(EnvHaikuModel); !ok {
		if v, ok := s.Get(EnvSmallFastModel); ok {
			add(Finding{ID: FindSmallLegacy, Severity: Info, Model: RoleSmall,
				Title: "ANTHROPIC_SMALL_FAST_MODEL is the old name",
				Why:   "Claude Code still honours it, but the current name is ANTHROPIC_DEFAULT_HAIKU_MODEL, which wins when both are set.",
				Fix:   envFix(EnvHaikuModel, v.Value)})
		}
	}
	add(sharedAccountFinding(r.AWS))
	add(cachingFinding(s))
	if r.Probe != nil {
		fs = append(fs, probeFindings(r)...)
	}
	slices.SortStableFunc(fs, func(a, b Finding) int { return a.Severity.rank() - b.Severity.rank() })
	return fs
}

func regionFinding(region Value) Finding {
	large := strings.Join(LargePoolRegions, ", ")
	switch {
	case region.From == "default":
		return Finding{ID: FindRegion, Severity: Warning,
			Title: "AWS_REGION is not set",
			Why:   "Claude Code then calls " + DefaultRegion + " without saying so, and the Bedrock setup guide lists AWS_REGION as required; set it so the quota you check is the quota you use.",
			Fix:   envFix(EnvRegion, DefaultRegion)}
	case !slices.Contains(LargePoolRegions, region.Value):
		return Finding{ID: FindRegion, Severity: Warning,
			Title: region.Value + " has a smaller capacity pool",
			Why: "Only " + large + " have the large pools (3.7 Sonnet's cross-region TPM is 1,000,000 there, 100,000 in the EU and 50,000 elsewhere), " +
				"and each region has its own quota, so one exhausted here may be untouched there.",
			Fix: &Fix{Settings: envFix(EnvRegion, "us-west-2").Settings,
				Action: "Switch only if your data-residency rules allow requests to leave " + region.Value + "."}}
	}
	return Finding{ID: FindRegion, Severity: OK,
		Title: region.Value + " has a large capacity pool",
		Why: large + " have Bedrock's largest pools. Every region keeps its own quota, but Claude Code does not move to another region by itself: " +
			"a Headroom route listing upstreams in two regions (routes: [{upstreams: [east, west]}]) sends a request to the other when one is full or fails, before the first byte."}
}

func maxOutputFinding(s Settings, opt Options, m ModelReport) Finding {
	if f, ok := gatewayMaxOutputFinding(m); ok {
		return f
	}
	f := settingsMaxOutputFinding(s, opt, m)
	if base, ok := s.Get(EnvBaseURL); ok && f.Severity == Critical {
		// A gateway may cap max_tokens whatever Claude Code asks (Headroom
		// does); unprobed, the doctor cannot know that it does.
		f.Severity = Warning
		f.Why += " Requests go to a gateway at " + base.Value + ": if it caps max_tokens (a Headroom gateway does), each call reserves less than this; run headroom doctor --probe to ask it."
	}
	return f
}

// gatewayMaxOutputFinding is the finding for a model whose max_tokens a
// probed Headroom gateway caps: the setting then costs no quota.
func gatewayMaxOutputFinding(m ModelReport) (Finding, bool) {
	g := m.Gateway
	if g == nil {
		return Finding{}, false
	}
	cur, _ := m.Fit(bedrock.ProfileSeed.Name)
	return Finding{ID: FindMaxOutput, Severity: Info, Model: m.Role,
		Title: fmt.Sprintf("Claude Code asks max_tokens %s; the gateway caps it at %s", humanize.Comma(int64(g.Asked)), humanize.Comma(int64(g.MaxTokens))),
		Why: fmt.Sprintf("The Headroom gateway forwards max_tokens %s (its %s policy), so each call reserves %s quota tokens instead of %s (seed reading); CLAUDE_CODE_MAX_OUTPUT_TOKENS needs no change.",
			humanize.Comma(int64(g.MaxTokens)), g.Reason, humanize.Comma(cur.Reservation), humanize.Comma(g.AskedReservation))}, true
}

func settingsMaxOutputFinding(s Settings, opt Options, m ModelReport) Finding {
	cur, _ := m.Fit(bedrock.ProfileSeed.Name)
	aws, _ := m.Fit(bedrock.ProfileAWS.Name)
	adv := m.Advised
	v, set := s.Get(EnvMaxOutput)
	n, valid := int64(0), false
	if set {
		n, valid = parseJSInt(v.Value)
		valid = valid && n > 0
	}
	numbers := fmt.Sprintf("each call reserves %s quota tokens before writing a word (seed reading; %s under AWS's), while 4,096 reserves %s: %s more calls from the same quota",
		humanize.Comma(cur.Reservation), humanize.Comma(aws.Reservation), humanize.Comma(adv.Reservation), ratio(cur.Reservation, adv.Reservation))
	fix := envFix(EnvMaxOutput, strconv.Itoa(AdvisedMaxOutputTokens))
	sev := Critical
	if cur.Spike <= m.Limits.TPM && cur.TasksPerDay >= fewTasksPerDay {
		// The quota is large enough that the waste does not yet hurt.
		sev = Warning
	}
	switch {
	case !set:
		return Finding{ID: FindMaxOutput, Severity: sev, Model: RoleMain,
			Title: fmt.Sprintf("CLAUDE_CODE_MAX_OUTPUT_TOKENS is unset, so every request asks for %s output tokens", humanize.Comma(int64(m.Output.MaxTokens))),
			Why: fmt.Sprintf("The documentation trap: Claude Code's settings page says unset means %s while its Bedrock page recommended 4,096; %s.",
				humanize.Comma(int64(m.Output.MaxTokens)), numbers),
			Fix: fix}
	case !valid:
		return Finding{ID: FindMaxOutput, Severity: sev, Model: RoleMain,
			Title: fmt.Sprintf("CLAUDE_CODE_MAX_OUTPUT_TOKENS=%s is not a positive number", quoteShort(v.Value)),
			Why:   fmt.Sprintf("Claude Code ignores it and asks for %s output tokens; %s.", humanize.Comma(int64(m.Output.MaxTokens)), numbers),
			Fix:   fix}
	case m.Output.MaxTokens > AdvisedMaxOutputTokens:
		if m.Output.MaxTokens < DefaultMaxOutputTokens {
			sev = Warning
		}
		return Finding{ID: FindMaxOutput, Severity: sev, Model: RoleMain,
			Title: fmt.Sprintf("CLAUDE_CODE_MAX_OUTPUT_TOKENS is %s (from %s)", humanize.Comma(int64(m.Output.MaxTokens)), v.From),
			Why:   "Bedrock reserves max_tokens at admission, not what the answer uses: " + numbers + ".",
			Fix:   fix}
	case m.Output.MaxTokens < AdvisedMaxOutputTokens:
		return Finding{ID: FindMaxOutput, Severity: Warning, Model: RoleMain,
			Title: fmt.Sprintf("CLAUDE_CODE_MAX_OUTPUT_TOKENS is %s, below 4,096", humanize.Comma(int64(m.Output.MaxTokens))),
			Why: "Claude Code's Bedrock page warned that Bedrock charges at least 4,096 anyway (the seed reading) and that less cuts off long tool uses, " +
				"so the agent loop can fail over and over; under AWS's reading it saves quota, but large file edits still break.",
			Fix: fix}
	}
	return Finding{ID: FindMaxOutput, Severity: OK, Model: RoleMain,
		Title: "CLAUDE_CODE_MAX_OUTPUT_TOKENS is 4,096",
		Why: fmt.Sprintf("Each call reserves %s quota tokens (seed reading; %s under AWS's) instead of %s with the unset default of 32,000.",
			humanize.Comma(cur.Reservation), humanize.Comma(aws.Reservation), humanize.Comma(reservationAt(opt, m, DefaultMaxOutputTokens)))}
}

func reservationAt(opt Options, m ModelReport, maxTokens int) int64 {
	return bedrock.ProfileSeed.Admission(bedrock.Demand{InputTokens: opt.InputTokens, MaxTokens: maxTokens}, m.Burndown)
}

func thinkingFinding(m ModelReport) (Finding, bool) {
	o := m.Output
	switch {
	case o.Thinking == ThinkingAdaptive:
		return Finding{ID: FindThinking, Severity: Info, Model: m.Role,
			Title: roleTitle(m) + ": thinking is adaptive",
			Why:   "Claude Code sends thinking {\"type\":\"adaptive\"} for this model and ignores MAX_THINKING_TOKENS; only max_tokens bounds what it may spend."}, true
	case o.Thinking == ThinkingOff:
		return Finding{}, false
	case o.Budget < AdvisedThinkingTokens:
		fix := envFix(EnvThinking, strconv.Itoa(AdvisedThinkingTokens))
		if o.MaxTokens <= AdvisedThinkingTokens {
			fix = envFix(EnvThinking, strconv.Itoa(AdvisedThinkingTokens), EnvMaxOutput, strconv.Itoa(AdvisedMaxOutputTokens))
		}
		return Finding{ID: FindThinking, Severity: Warning, Model: m.Role,
			Title: fmt.Sprintf("%s: thinking budget %s is below Bedrock's minimum of 1,024", roleTitle(m), humanize.Comma(int64(o.Budget))),
			Why:   "Claude Code sends the budget as is and Bedrock refuses any budget_tokens under 1,024 with a ValidationException, so every request fails.",
			Fix:   fix}, true
	case o.BudgetFrom == "max_tokens − 1":
		return Finding{ID: FindThinking, Severity: Info, Model: m.Role,
			Title: fmt.Sprintf("%s: MAX_THINKING_TOKENS is unset, so the thinking budget is %s", roleTitle(m), humanize.Comma(int64(o.Budget))),
			Why: fmt.Sprintf("Claude Code sends budget_tokens = max_tokens − 1, so thinking may spend the whole output, and every output token costs %d quota tokens at settlement; 1,024 keeps thinking short.",
				m.Burndown),
			Fix: envFix(EnvThinking, strconv.Itoa(AdvisedThinkingTokens))}, true
	}
	return Finding{ID: FindThinking, Severity: OK, Model: m.Role,
		Title: fmt.Sprintf("%s: thinking budget is %s (from %s)", roleTitle(m), humanize.Comma(int64(o.Budget)), o.BudgetFrom),
		Why:   "The budget is within what Bedrock accepts and bounds how much of the output thinking may spend."}, true
}

func quotaFitFinding(opt Options, m ModelReport) Finding {
	f, _ := m.Fit(opt.SeverityProfile)
	l := m.Limits
	numbers := fmt.Sprintf("%s reserved per request against TPM %s and TPD %s (%s) leaves room for %s a minute (%s tasks of %d calls) and %s a day (%s tasks)",
		humanize.Comma(f.Reservation), humanize.Comma(l.TPM), humanize.Comma(l.TPD), l.Source,
		plural(f.RequestsPerMinute, "request"), decimal(f.TasksPerMinute, 2), opt.CallsPerTask, plural(f.RequestsPerDay, "request"), decimal(f.TasksPerDay, 1))
	var fix *Fix
	if f.MaxTokens > AdvisedMaxOutputTokens && m.Advised.Reservation <= l.TPM {
		fix = envFix(EnvMaxOutput, strconv.Itoa(AdvisedMaxOutputTokens))
	} else {
		code := l.TPMCode
		if f.Reservation <= l.TPM {
			code = l.TPDCode
		}
		action := "Ask AWS for a higher quota for this model in Service Quotas"
		if code != "" {
			action += " (code " + code + ")"
		}
		fix = &Fix{Action: action + ", or move it to a region with a larger pool."}
	}
	title := roleTitle(m)
	switch {
	case f.Reservation > l.TPM || f.Reservation > l.TPD:
		return Finding{ID: FindQuotaFit, Severity: Critical, Model: m.Role,
			Title: title + ": one request reserves more than the whole quota",
			Why:   "Bedrock throttles a request whose reservation exceeds a quota at once, so every call fails: " + numbers + ".",
			Fix:   fix}
	case f.TasksPerDay < 1:
		return Finding{ID: FindQuotaFit, Severity: Critical, Model: m.Role,
			Title: title + ": not one agent task fits in a day",
			Why:   "Reservations, not answers, use up the daily quota: " + numbers + ".",
			Fix:   fix}
	case f.TasksPerDay < fewTasksPerDay:
		return Finding{ID: FindQuotaFit, Severity: Warning, Model: m.Role,
			Title: title + fmt.Sprintf(": fewer than %d agent tasks fit in a day", fewTasksPerDay),
			Why:   "The daily quota runs out early in a working day: " + numbers + ".",
			Fix:   fix}
	}
	if l.AppliedLow {
		// The numbers are the documented defaults, which this account does
		// not have: "fits" would contradict the applied quotas of 0.
		return Finding{ID: FindQuotaFit, Severity: Info, Model: m.Role,
			Title: title + ": would fit the documented quota, not the applied one",
			Why:   "The applied quotas are 0 or far below the default (see the applied-quota finding), so nothing fits until AWS corrects them. Against the documented default, under the " + opt.SeverityProfile + " reading: " + numbers + "."}
	}
	return Finding{ID: FindQuotaFit, Severity: OK, Model: m.Role,
		Title: title + " fits the quota",
		Why:   "Under the " + opt.SeverityProfile + " reading: " + numbers + "."}
}

func spikeFinding(opt Options, m ModelReport) Finding {
	f, _ := m.Fit(opt.SeverityProfile)
	tpm := m.Limits.TPM
	numbers := fmt.Sprintf("%d parallel calls × %s reserved = %s against a TPM of %s", m.ToolCalls, humanize.Comma(f.Reservation), humanize.Comma(f.Spike), humanize.Comma(tpm))
	if f.Spike <= tpm && m.Limits.AppliedLow {
		return Finding{ID: FindSpike, Severity: Info, Model: RoleMain,
			Title: "A burst of parallel tool calls would fit the documented per-minute quota, not the applied one",
			Why:   numbers + " (the documented default; the applied quotas are 0 or far below it)."}
	}
	if f.Spike <= tpm {
		return Finding{ID: FindSpike, Severity: OK, Model: RoleMain,
			Title: "A burst of parallel tool calls fits the per-minute quota",
			Why:   numbers + "."}
	}
	sev := Warning
	if f.Spike > 2*tpm {
		sev = Critical
	}
	fix := envFix(EnvToolConcurrency, strconv.FormatInt(max(1, tpm/max(f.Reservation, 1)), 10))
	if f.MaxTokens > AdvisedMaxOutputTokens {
		adv := m.Advised
		if c := tpm / max(adv.Reservation, 1); c >= int64(m.ToolCalls) {
			fix = envFix(EnvMaxOutput, strconv.Itoa(AdvisedMaxOutputTokens))
		} else {
			fix = envFix(EnvMaxOutput, strconv.Itoa(AdvisedMaxOutputTokens), EnvToolConcurrency, strconv.FormatInt(max(1, c), 10))
		}
	}
	return Finding{ID: FindSpike, Severity: sev, Model: RoleMain,
		Title: "Parallel tool calls reserve more than the per-minute quota",
		Why:   "Claude Code starts tool calls together and each reserves at once, so a burst is throttled even when total use is low: " + numbers + ".",
		Fix:   fix}
}

func sharedAccountFinding(a AWSEnv) Finding {
	// In Mantle mode Claude Code reads only the Mantle base URL.
	base, baseEnv := a.BaseURL.Value, EnvBaseURL
	if a.UseMantle {
		base, baseEnv = a.MantleBaseURL.Value, EnvMantleBaseURL
	}
	if base != "" {
		return Finding{ID: FindSharedAccount, Severity: OK,
			Title: "Requests go through a gateway at " + base,
			Why:   "A gateway that meters by key (Headroom does) can give each developer a fair share of the one account quota that every key draws on."}
	}
	sev := Info
	why := "Bedrock quotas are per account and region; API keys and IAM users are only credentials, so every developer on the account draws on the same quota and one heavy session throttles the rest."
	if a.BearerKey {
		sev = Warning
		why = "A Bedrock API key is only a credential: every key in the account draws on the same account quota, so one teammate's heavy session throttles everyone else."
	}
	return Finding{ID: FindSharedAccount, Severity: sev,
		Title: "The account's quota is shared by everyone who uses it",
		Why:   why,
		Fix: &Fix{Settings: envFix(baseEnv, gatewayURL, EnvBearer, "<your Headroom key>").Settings,
			Action: "Run a Headroom gateway (headroom serve) in front of the account and give each developer a key, or use one AWS account per developer."}}
}

func cachingFinding(s Settings) Finding {
	if truthy(s, EnvNoCaching) {
		v, _ := s.Get(EnvNoCaching)
		return Finding{ID: FindCaching, Severity: Warning,
			Title: "Prompt caching is disabled (DISABLE_PROMPT_CACHING from " + v.From + ")",
			Why: "Claude Code then resends its large system prompt and tools without cache_control, so every call counts them in full, " +
				"whereas cache reads are never counted at settlement (AWS's accounting); no AWS page documents a quirk that disabling it avoids.",
			Fix: envFix(EnvNoCaching, "0")}
	}
	return Finding{ID: FindCaching, Severity: OK,
		Title: "Prompt caching is on",
		Why:   "Cache reads are not counted against the quota at settlement and cache writes count once, so long sessions cost less quota."}
}

// decimal formats x with prec decimals and thousands separators.
func decimal(x float64, prec int) string {
	s := strconv.FormatFloat(x, 'f', prec, 64)
	whole, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return s
	}
	if frac == "" {
		return humanize.Comma(n)
	}
	return humanize.Comma(n) + "." + frac
}

// roleTitle names a model in a finding's title: "Main model ID".
func roleTitle(m ModelReport) string {
	return strings.ToUpper(m.Role[:1]) + m.Role[1:] + " model " + m.ID
}

// plural formats "1 request" or "9 requests".
func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return humanize.Comma(n) + " " + unit + "s"
}
