package doctor

import (
	"fmt"
	"strconv"

	"github.com/dustin/go-humanize"
	"github.com/headroomhq/headroom/internal/bedrock"
)

// FindMantle is the finding about what a call reserves on bedrock-mantle.
const FindMantle = "mantle-reservation"

// MantleAdvisedMaxOutputTokens is the max_tokens the Mantle finding
// suggests: measured (BEDROCK.md section 6) to let a 6,000-word Write
// complete, where 4,096 cut it every time.
const MantleAdvisedMaxOutputTokens = 16000

// MantleFit is what one call reserves on bedrock-mantle, whose quotas are
// its own (BEDROCK.md section 6, AWS's quotas-mantle page): at admission
// input + max_tokens (the model's maximum when unset) against the model's
// input tokens per minute, with no burndown; output tokens count against
// the output tokens per minute as they are generated; no RPM.
type MantleFit struct {
	InputTPM  int64  `json:"input_tpm"`
	OutputTPM int64  `json:"output_tpm"`
	Source    string `json:"source"`
	MaxTokens int    `json:"max_tokens"`
	// Reservation is input + max_tokens, held against InputTPM.
	Reservation       int64 `json:"reservation"`
	RequestsPerMinute int64 `json:"requests_per_minute"`
	// Spike is what ToolCalls calls started together reserve.
	Spike int64 `json:"spike"`
}

// mantleDefaults returns Mantle's documented default quotas for m:
// Claude 4.7 and later, input 10,000,000 and output 2,000,000 tokens per
// minute (section 6); other models have no published Mantle default and
// are given the same, as an assumption.
func mantleDefaults(m bedrock.Model) (input, output int64, source string) {
	if f, ok := factsFor(m); ok && f.source == section6 {
		return 10_000_000, 2_000_000, "AWS's documented Mantle defaults (Claude 4.7+)"
	}
	return 10_000_000, 2_000_000, "assumed: Claude 4.7+'s Mantle defaults (AWS documents none for this model; pass --tpm)"
}

// mantleFit computes a model's Mantle reservation; opt.TPM, when set,
// replaces the main model's input TPM.
func mantleFit(opt Options, mr ModelReport) *MantleFit {
	in, out, src := mantleDefaults(mr.model)
	if mr.Role == RoleMain && opt.TPM > 0 {
		in, src = opt.TPM, "flags --tpm (Mantle input tokens per minute)"
	}
	f := &MantleFit{InputTPM: in, OutputTPM: out, Source: src, MaxTokens: mr.Output.MaxTokens,
		Reservation: int64(opt.InputTokens) + int64(mr.Output.MaxTokens)}
	f.Spike = int64(mr.ToolCalls) * f.Reservation
	if f.Reservation > 0 {
		f.RequestsPerMinute = in / f.Reservation
	}
	return f
}

// mantleFinding says what the main model's calls reserve on Mantle and
// what to change.
func mantleFinding(a AWSEnv, m ModelReport) Finding {
	f := m.Mantle
	numbers := fmt.Sprintf("each call reserves input + %s = %s of the input TPM %s (%s) at admission, no burndown, so at most %s start in a minute and %d parallel tool calls hold %s; output tokens then count against the output TPM %s as they are generated",
		humanize.Comma(int64(f.MaxTokens)), humanize.Comma(f.Reservation), humanize.Comma(f.InputTPM), f.Source, plural(f.RequestsPerMinute, "call"), m.ToolCalls, humanize.Comma(f.Spike), humanize.Comma(f.OutputTPM))
	sev := Info
	switch {
	case f.Reservation > f.InputTPM:
		sev = Critical
	case f.Spike > f.InputTPM:
		sev = Warning
	}
	fix := envFix(EnvMaxOutput, strconv.Itoa(MantleAdvisedMaxOutputTokens))
	action := fmt.Sprintf("Lower max_tokens (%s writes a 6,000-word file; 4,096 cuts long tool calls)", humanize.Comma(MantleAdvisedMaxOutputTokens))
	if a.MantleBaseURL.Value == "" {
		action += ", or point " + EnvMantleBaseURL + " at a Headroom gateway (" + gatewayURL + "), which sizes max_tokens per call and queues instead of failing."
	} else {
		action += "; requests go to " + a.MantleBaseURL.Value + "."
	}
	fix.Action = action
	if f.MaxTokens <= MantleAdvisedMaxOutputTokens {
		fix = nil
	}
	return Finding{ID: FindMantle, Severity: sev, Model: RoleMain,
		Title: fmt.Sprintf("Mantle mode: every call reserves input + %s against the input tokens per minute", humanize.Comma(int64(f.MaxTokens))),
		Why:   "Claude Code calls bedrock-mantle, whose quotas are its own: " + numbers + ".",
		Fix:   fix}
}
