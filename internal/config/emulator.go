package config

import (
	_ "embed"
	"path"
	"regexp"
	"slices"
)

// EmulatorReference is the documented emulator configuration file: every
// setting with its default and what it does. DefaultEmulator decodes it, so
// the documentation and the defaults cannot drift apart; `headroom emulate
// --help` prints it.
//
//go:embed emulator.yaml
var EmulatorReference string

// Emulator is the file `headroom emulate --config FILE` reads. See
// EmulatorReference for what each setting does and its default.
type Emulator struct {
	// Listen is the HOST:PORT to serve on; the --addr flag overrides it.
	Listen string `yaml:"listen"`
	// DefaultRegion serves requests that name no region (neither a
	// /region/NAME path prefix nor a SigV4 credential scope). One of Regions.
	DefaultRegion string `yaml:"default_region"`
	// AccountID appears in inference-profile ARNs. Twelve digits.
	AccountID string `yaml:"account_id"`
	// RequireAuth refuses requests that carry neither SigV4 nor a bearer key.
	RequireAuth bool `yaml:"require_auth"`
	// Scenario is a preset applied over the rest: "" (none) or one of
	// EmulatorScenarios.
	Scenario string `yaml:"scenario"`
	// Accounting chooses what a request reserves at admission.
	Accounting Accounting `yaml:"accounting"`
	// Windows says how minute and day buckets refill.
	Windows Windows `yaml:"windows"`
	// Regions each have their own buckets. At least one.
	Regions []EmulatorRegion `yaml:"regions"`
	// Generation shapes the answers: length, thinking, pace.
	Generation Generation `yaml:"generation"`
	// Faults injects failures at given rates.
	Faults Faults `yaml:"faults"`
	// Mantle holds the bedrock-mantle settings that are not per region.
	Mantle Mantle `yaml:"mantle"`
}

// EmulatorRegion is one region served by the emulator and its quotas.
type EmulatorRegion struct {
	Name    string   `yaml:"name"`
	Buckets []Bucket `yaml:"buckets"`
	// Mantle are the region's bedrock-mantle quotas, kinds input-tpm and
	// output-tpm, separate from Buckets (the bedrock-runtime quotas).
	Mantle []Bucket `yaml:"mantle"`
}

// Emulator scenarios (EmulatorReference says what each one does).
const (
	ScenarioProvisioningBug = "provisioning-bug"
	ScenarioSaturated       = "saturated"
	ScenarioFlaky           = "flaky"
	ScenarioNewAccount      = "new-account"
)

// EmulatorScenarios lists the scenario names the emulator knows.
var EmulatorScenarios = []string{ScenarioProvisioningBug, ScenarioSaturated, ScenarioFlaky, ScenarioNewAccount}

// Output length distributions.
const (
	DistFixed     = "fixed"
	DistUniform   = "uniform"
	DistLognormal = "lognormal"
)

// Generation shapes the emulator's answers.
type Generation struct {
	// Seed keys the text generator, with the request body.
	Seed uint64 `yaml:"seed"`
	// OutputTokens is the length of answers before max_tokens cuts them.
	OutputTokens Distribution `yaml:"output_tokens"`
	// ThinkingShare is the part of the output spent thinking when a request
	// turns thinking on; in [0, 1).
	ThinkingShare float64 `yaml:"thinking_share"`
	// InputTokenScale multiplies the input-token estimate; positive.
	InputTokenScale float64 `yaml:"input_token_scale"`
	// TimeToFirstToken delays the first token of every answer.
	TimeToFirstToken Duration `yaml:"time_to_first_token"`
	// TokensPerSecond paces output after the first token; 0 means no delay.
	TokensPerSecond float64 `yaml:"tokens_per_second"`
	// ChunkTokens is the number of tokens per streamed delta; at least 1.
	ChunkTokens int `yaml:"chunk_tokens"`
	// ToolUse scripts a tool call, so that an agent runs a real tool loop
	// against the emulator; off while its Name is empty.
	ToolUse ToolUse `yaml:"tool_use"`
}

// ToolUse scripts a tool call: offered the tool Name, the emulator answers
// with one call whose input is {"file_path": FilePath, "content": "<InputTokens
// words>"}, retries it when the client returns an error, and ends the turn
// after a successful result. (Its config names are relied on by tests outside
// the project: keep them.)
type ToolUse struct {
	// Name is the tool to call, as the request's tools name it ("" = off).
	Name string `yaml:"name"`
	// InputTokens is the size of the call's input, one token per word; at
	// least 1.
	InputTokens int `yaml:"input_tokens"`
	// FilePath is the input's file_path; absolute.
	FilePath string `yaml:"file_path"`
}

// Distribution is a distribution of token counts.
type Distribution struct {
	// Distribution is fixed, uniform or lognormal.
	Distribution string `yaml:"distribution"`
	// Mean is the value of fixed and the mean of lognormal (before clamping).
	Mean int `yaml:"mean"`
	// Min and Max bound every draw; 0 <= Min <= Mean <= Max.
	Min int `yaml:"min"`
	Max int `yaml:"max"`
}

// Faults are failures injected at given rates, in [0, 1].
type Faults struct {
	// Seed keys the fault PRNG; the n-th request to arrive always draws the
	// same faults.
	Seed uint64 `yaml:"seed"`
	// UnavailableRate answers 503 ServiceUnavailableException before admission.
	UnavailableRate float64 `yaml:"unavailable_rate"`
	// MidStreamThrottleRate ends a stream with a throttlingException after
	// MidStreamThrottleAfter output tokens.
	MidStreamThrottleRate  float64 `yaml:"mid_stream_throttle_rate"`
	MidStreamThrottleAfter int     `yaml:"mid_stream_throttle_after"`
	// SlowRate delays responses by SlowLatency before the first byte.
	SlowRate    float64  `yaml:"slow_rate"`
	SlowLatency Duration `yaml:"slow_latency"`
}

// DefaultEmulator is the configuration EmulatorReference documents.
func DefaultEmulator() Emulator {
	var e Emulator
	if err := decodeYAML([]byte(EmulatorReference), &e); err != nil {
		// The file is embedded and TestDefaultEmulator decodes it.
		panic("config: embedded emulator.yaml: " + err.Error())
	}
	return e
}

// LoadEmulator reads an emulator file over the defaults and validates it. A
// validation failure is a Problems listing every problem.
func LoadEmulator(path string) (Emulator, error) {
	data, err := readFile(path)
	if err != nil {
		return Emulator{}, err
	}
	return ParseEmulator(data)
}

// ParseEmulator is LoadEmulator for a file already read.
func ParseEmulator(data []byte) (Emulator, error) {
	e := DefaultEmulator()
	if err := decodeAndValidate(data, &e, func() error { return e.Validate() }); err != nil {
		return Emulator{}, err
	}
	return e, nil
}

// Region returns the named region's configuration.
func (e *Emulator) Region(name string) (EmulatorRegion, bool) {
	for _, r := range e.Regions {
		if r.Name == name {
			return r, true
		}
	}
	return EmulatorRegion{}, false
}

var (
	regionName = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	accountID  = regexp.MustCompile(`^[0-9]{12}$`)
)

// Validate reports every problem at once as Problems, or nil.
func (e *Emulator) Validate() error {
	var p Problems
	validateListen(e.Listen, &p)
	if !accountID.MatchString(e.AccountID) {
		p.add("account_id: %q is not a 12-digit AWS account ID", e.AccountID)
	}
	if e.Scenario != "" && !slices.Contains(EmulatorScenarios, e.Scenario) {
		p.add("scenario: %q is not one of %v", e.Scenario, EmulatorScenarios)
	}
	e.Accounting.validate("accounting", &p)
	e.Windows.validate("windows", &p)
	e.validateRegions(&p)
	e.Generation.validate(&p)
	e.Faults.validate(&p)
	e.Mantle.validate(&p)
	return p.err()
}

func (e *Emulator) validateRegions(p *Problems) {
	if len(e.Regions) == 0 {
		p.add("regions: at least one region is required")
	}
	seen := map[string]bool{}
	for i, r := range e.Regions {
		at := fmtIndex("regions", i, r.Name)
		switch {
		case r.Name == "":
			p.add("%s.name: required", at)
		case !regionName.MatchString(r.Name):
			p.add("%s.name: %q is not an AWS region name like us-east-1", at, r.Name)
		case seen[r.Name]:
			p.add("%s.name: %q is used twice", at, r.Name)
		}
		seen[r.Name] = true
		validateBuckets(at+".buckets", r.Buckets, RuntimeKinds, p)
		validateMantleBuckets(at+".mantle", r.Name, r.Mantle, p)
		for _, b := range r.Buckets {
			if len(b.Scope.Regions) > 0 && r.Name != "" && !slices.Contains(b.Scope.Regions, r.Name) {
				p.add("%s.buckets[%s].regions: %v does not include %s, so the bucket never applies", at, b.Name, b.Scope.Regions, r.Name)
			}
		}
	}
	if e.DefaultRegion == "" {
		p.add("default_region: required")
	} else if len(e.Regions) > 0 && !seen[e.DefaultRegion] {
		p.add("default_region: %q is not one of the regions", e.DefaultRegion)
	}
}

func (g Generation) validate(p *Problems) {
	d := g.OutputTokens
	switch d.Distribution {
	case DistFixed, DistUniform, DistLognormal:
	default:
		p.add("generation.output_tokens.distribution: %q is not fixed, uniform or lognormal", d.Distribution)
	}
	if d.Min < 0 || d.Min > d.Mean || d.Mean > d.Max {
		p.add("generation.output_tokens: need 0 <= min <= mean <= max, got min %d, mean %d, max %d", d.Min, d.Mean, d.Max)
	}
	if !(g.ThinkingShare >= 0 && g.ThinkingShare < 1) {
		p.add("generation.thinking_share: %v is not in [0, 1)", g.ThinkingShare)
	}
	if !(g.InputTokenScale > 0) {
		p.add("generation.input_token_scale: %v must be positive", g.InputTokenScale)
	}
	if g.TimeToFirstToken.Duration < 0 {
		p.add("generation.time_to_first_token: %v is negative", g.TimeToFirstToken.Duration)
	}
	if !(g.TokensPerSecond >= 0) {
		p.add("generation.tokens_per_second: %v is negative", g.TokensPerSecond)
	}
	if g.ChunkTokens < 1 {
		p.add("generation.chunk_tokens: %d must be at least 1", g.ChunkTokens)
	}
	if t := g.ToolUse; t.Name != "" {
		if !toolName.MatchString(t.Name) {
			p.add("generation.tool_use.name: %q is not a tool name (1 to 64 of a-z, A-Z, 0-9, _ and -)", t.Name)
		}
		if t.InputTokens < 1 {
			p.add("generation.tool_use.input_tokens: %d must be at least 1", t.InputTokens)
		}
		if !path.IsAbs(t.FilePath) {
			p.add("generation.tool_use.file_path: %q is not an absolute path", t.FilePath)
		}
	}
}

// toolName is the form of a tool name in the Anthropic Messages API.
var toolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

func (f Faults) validate(p *Problems) {
	for _, r := range []struct {
		name string
		v    float64
	}{
		{"unavailable_rate", f.UnavailableRate},
		{"mid_stream_throttle_rate", f.MidStreamThrottleRate},
		{"slow_rate", f.SlowRate},
	} {
		if !(r.v >= 0 && r.v <= 1) {
			p.add("faults.%s: %v is not between 0 and 1", r.name, r.v)
		}
	}
	if f.MidStreamThrottleAfter < 0 {
		p.add("faults.mid_stream_throttle_after: %d is negative", f.MidStreamThrottleAfter)
	}
	if f.SlowLatency.Duration < 0 {
		p.add("faults.slow_latency: %v is negative", f.SlowLatency.Duration)
	}
}
