package doctor

import (
	"cmp"
	"slices"
	"strings"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// Service Quotas codes BEDROCK.md section 2 names.
const (
	CodeCrossModelDaily = "L-E3F10727" // one daily quota per account and region, every model
	CodeSonnet4TPM      = "L-59759B4A" // Sonnet 4 cross-region tokens per minute
	CodeSonnet4RPM      = "L-559DCC33" // Sonnet 4 cross-region requests per minute
	CodeSonnet4TPD      = "L-22F701C5" // Sonnet 4 tokens per day, doubled for cross-region
	CodeHaiku45TPM      = "L-58BE175A" // Haiku 4.5 cross-region tokens per minute
	CodeHaiku45TPD      = "L-6120CF2D" // Haiku 4.5 tokens per day
)

// ServiceCode is the Service Quotas service code of Bedrock.
const ServiceCode = "bedrock"

// LargePoolRegions have the large capacity pools (BEDROCK.md section 2:
// 3.7 Sonnet's cross-region TPM is 1,000,000 there, 100,000 in the EU and
// 50,000 elsewhere; the seed names us-east-1 and us-west-2).
var LargePoolRegions = []string{"us-east-1", "us-east-2", "us-west-2"}

// Limits are the quotas a model's requests draw on.
type Limits struct {
	TPM int64 `json:"tpm"`
	TPD int64 `json:"tpd"`
	// TPMCode and TPDCode are the Service Quotas codes, when known.
	TPMCode string `json:"tpm_code,omitempty"`
	TPDCode string `json:"tpd_code,omitempty"`
	// Source says where the numbers come from: "flags", "service quotas",
	// "AWS's documented defaults" or an assumption.
	Source string `json:"source"`
	// AppliedLow is set when the probe read applied quotas of 0 or far
	// below the default: the numbers are then the documented defaults,
	// which the account does not have.
	AppliedLow bool `json:"applied_low,omitempty"`
}

// quotaFacts is one row of BEDROCK.md section 2's defaults.
type quotaFacts struct {
	match string // substring of the foundation model ID
	// names are substrings of Service Quotas quota names that mean this
	// model: AWS's display name and the emulator's model pattern.
	names            []string
	tpm              func(region string) int64
	tpd              int64 // 0: TPM × 1,440 (the documented relation)
	onDemandTPD      int64 // 0: same as cross-region
	tpmCode, tpdCode string
	source           string // "": BEDROCK.md section 2
}

func fixed(n int64) func(string) int64 { return func(string) int64 { return n } }

var defaultQuotaFacts = []quotaFacts{
	{match: "claude-sonnet-4-2025", names: []string{"claude sonnet 4 v1", "claude-sonnet-4-2025"},
		tpm: fixed(200_000), tpd: 144_000_000, onDemandTPD: 72_000_000, tpmCode: CodeSonnet4TPM, tpdCode: CodeSonnet4TPD},
	{match: "claude-haiku-4-5", names: []string{"claude haiku 4.5", "claude-haiku-4-5"},
		tpm: fixed(5_000_000), tpd: 3_600_000_000, tpmCode: CodeHaiku45TPM, tpdCode: CodeHaiku45TPD},
	{match: "claude-3-7-sonnet", names: []string{"claude 3.7 sonnet", "claude-3-7-sonnet"},
		tpm: func(region string) int64 {
			switch {
			case slices.Contains(LargePoolRegions, region):
				return 1_000_000
			case strings.HasPrefix(region, "eu-"):
				return 100_000
			}
			return 50_000
		}},
	{match: "claude-sonnet-4-6", names: []string{"claude sonnet 4.6", "claude-sonnet-4-6"}, tpm: fixed(6_000_000)},
	// Opus 4.6: AWS documents no default; Sonnet 4.6's is assumed, as the
	// emulator's default config assumes.
	{match: "claude-opus-4-6", names: []string{"claude opus 4.6", "claude-opus-4-6"}, tpm: fixed(6_000_000),
		source: "assumed: Sonnet 4.6's defaults (AWS documents none for Opus 4.6; pass --tpm/--tpd or --probe)"},
	// Claude 4.7 and later: runtime input TPM 15,000,000, output combined
	// with burndown (BEDROCK.md section 6; new accounts get less). Their
	// daily limit is the cross-model daily quota, whose default is not
	// documented: TPM × 1,440 as for the others. A one-model pattern ("$")
	// keeps Opus 5 from naming Opus 5.5's quotas.
	{match: "claude-opus-5-5", names: []string{"claude opus 5.5", "claude-opus-5-5"}, tpm: fixed(15_000_000), source: section6},
	{match: "claude-sonnet-5-5", names: []string{"claude sonnet 5.5", "claude-sonnet-5-5"}, tpm: fixed(15_000_000), source: section6},
	{match: "claude-haiku-5-5", names: []string{"claude haiku 5.5", "claude-haiku-5-5"}, tpm: fixed(15_000_000), source: section6},
	{match: "claude-fable-5-1", names: []string{"claude fable 5.1", "claude-fable-5-1"}, tpm: fixed(15_000_000), source: section6},
	{match: "claude-opus-5$", names: []string{"claude opus 5$", "claude-opus-5$"}, tpm: fixed(15_000_000), source: section6},
	{match: "claude-sonnet-5$", names: []string{"claude sonnet 5$", "claude-sonnet-5$"}, tpm: fixed(15_000_000), source: section6},
	{match: "claude-opus-4-8", names: []string{"claude opus 4.8", "claude-opus-4-8"}, tpm: fixed(15_000_000), source: section6},
	{match: "claude-opus-4-7", names: []string{"claude opus 4.7", "claude-opus-4-7"}, tpm: fixed(15_000_000), source: section6},
}

const section6 = "AWS's documented defaults (Claude 4.7+)"

// assumedFacts stands in for a model BEDROCK.md gives no default for:
// Sonnet 4's numbers, the smallest documented for a current Sonnet.
var assumedFacts = defaultQuotaFacts[0]

func factsFor(m bedrock.Model) (quotaFacts, bool) {
	for _, f := range defaultQuotaFacts {
		if bedrock.MatchModel(m.Base, f.match) {
			return f, true
		}
	}
	return assumedFacts, false
}

// DefaultLimits returns the documented default quotas for calls to m in region.
func DefaultLimits(m bedrock.Model, region string) Limits {
	f, known := factsFor(m)
	l := Limits{TPM: f.tpm(region), TPD: f.tpd, Source: cmp.Or(f.source, "AWS's documented defaults")}
	if l.TPD == 0 {
		l.TPD = l.TPM * 1440
	}
	if !m.CrossRegion() && f.onDemandTPD != 0 {
		l.TPD = f.onDemandTPD
	}
	if !known {
		l.Source = "assumed: Sonnet 4's defaults (AWS documents none for this model; pass --tpm/--tpd or --probe)"
		return l
	}
	l.TPMCode, l.TPDCode = f.tpmCode, f.tpdCode
	return l
}

// quotaKind classifies a Service Quotas quota name: tpm, tpd, rpm or "".
func quotaKind(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.Contains(n, "tokens per minute"):
		return "tpm"
	case strings.Contains(n, "tokens per day"):
		return "tpd"
	case strings.Contains(n, "requests per minute"):
		return "rpm"
	}
	return ""
}

// quotaForModel reports whether a quota (by code and name) applies to
// calls to m: a known code of the model, or a name that names the model and
// the right inference kind. The cross-model daily quota applies to all.
func quotaForModel(code, name string, m bedrock.Model) bool {
	if code == CodeCrossModelDaily {
		return true
	}
	f, known := factsFor(m)
	if known && code != "" && (code == f.tpmCode || code == f.tpdCode) {
		return true
	}
	n := strings.ToLower(name)
	if !known || quotaKind(name) == "" || !slices.ContainsFunc(f.names, func(s string) bool { return bedrock.MatchModel(n, s) }) {
		return false
	}
	switch {
	case strings.HasPrefix(n, "cross-region"):
		return m.CrossRegion()
	case strings.HasPrefix(n, "on-demand"):
		return !m.CrossRegion()
	}
	return true
}
