package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/headroomhq/headroom/internal/doctor"
)

// Exit codes of `headroom doctor` beyond 0 (no critical finding), 1 (error)
// and 2 (bad flags).
const (
	exitReservations = 3 // Situation 2
	exitProvisioning = 4 // Situation 1
)

const doctorUsage = `Usage: headroom doctor [flags]

Reads Claude Code's settings (~/.claude/settings.json, then the project's
.claude/settings.json and .claude/settings.local.json, over the process
environment), shows what each request reserves from the Bedrock quota under
both accounting profiles and how many requests and agent tasks fit, and lists
findings with the exact settings.json fix.

  --probe [URL]   also send one tiny request (max_tokens 1) and read the applied
                  quotas, then give a verdict: Situation 1 (provisioning: AWS
                  Support), Situation 2 (reservations burn the quota) or healthy.
                  Without URL it probes the gateway Claude Code's settings name
                  (ANTHROPIC_BEDROCK_BASE_URL, or ANTHROPIC_BEDROCK_MANTLE_BASE_URL
                  in Mantle mode), else Amazon Bedrock with your AWS credentials.
                  A Headroom gateway (http:// or https://) is asked with your key
                  (AWS_BEARER_TOKEN_BEDROCK, else the AWS access key ID) for the
                  quotas it mirrors and what it does about them.

Exit status: 0 no critical finding, 3 Situation 2, 4 Situation 1, 1 error or a
probe refused for want of credentials (no verdict), 2 bad flags.

Flags:
`

type doctorFlags struct {
	json         bool
	home         string
	project      string
	inputTokens  int
	callsPerTask int
	tpm, tpd     int64
	profile      string
	probe        bool
	probeURL     string
	regions      string
	tinyOnly     bool
	timeout      time.Duration
}

// splitProbeFlag takes --probe and its optional URL out of args, since the
// flag package has no flags with optional values.
func splitProbeFlag(args []string) (rest []string, probe bool, url string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(rest, args[i:]...), probe, url
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "probe" {
			rest = append(rest, a)
			continue
		}
		probe = true
		switch {
		case hasVal:
			url = val
		case i+1 < len(args) && strings.Contains(args[i+1], "://"):
			url = args[i+1]
			i++
		}
	}
	return rest, probe, url
}

func parseDoctorFlags(e env) (doctorFlags, error) {
	args, probe, url := splitProbeFlag(e.args)
	f := doctorFlags{probe: probe, probeURL: url}
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprint(e.stderr, doctorUsage)
		fs.PrintDefaults()
	}
	fs.BoolVar(&f.json, "json", false, "print the report as JSON")
	fs.StringVar(&f.home, "home", "", "home directory whose .claude/settings.json is read (default: yours)")
	fs.StringVar(&f.project, "project", "", "project directory whose .claude/ settings are read (default: the current directory)")
	fs.IntVar(&f.inputTokens, "input-tokens", doctor.DefaultInputTokens, "input tokens assumed per request")
	fs.IntVar(&f.callsPerTask, "calls-per-task", doctor.DefaultCallsPerTask, "model calls per agent task")
	fs.Int64Var(&f.tpm, "tpm", 0, "the main model's tokens-per-minute quota (default: applied value when probed, else the documented default)")
	fs.Int64Var(&f.tpd, "tpd", 0, "the main model's tokens-per-day quota (default: as --tpm)")
	fs.StringVar(&f.profile, "profile", "seed", "accounting profile that sets the severity of findings: seed or aws")
	fs.StringVar(&f.regions, "regions", "", "comma-separated regions to probe (default: the configured region and us-west-2)")
	fs.BoolVar(&f.tinyOnly, "tiny-only", false, "probe with the max_tokens 1 request only, not also with Claude Code's max_tokens")
	fs.DurationVar(&f.timeout, "timeout", 60*time.Second, "time limit for the probe")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if f.profile != "seed" && f.profile != "aws" {
		return f, fmt.Errorf("--profile %q: want seed or aws", f.profile)
	}
	if f.inputTokens < 0 || f.callsPerTask < 1 || f.tpm < 0 || f.tpd < 0 {
		return f, errors.New("--input-tokens, --tpm and --tpd must not be negative and --calls-per-task must be at least 1")
	}
	return f, nil
}

func runDoctor(ctx context.Context, e env) int {
	f, err := parseDoctorFlags(e)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "headroom doctor:", err)
		return 2
	}
	if f.home == "" {
		if f.home, err = os.UserHomeDir(); err != nil {
			fmt.Fprintln(e.stderr, "headroom doctor: no home directory; pass --home:", err)
			return 1
		}
	}
	if f.project == "" {
		if f.project, err = os.Getwd(); err != nil {
			fmt.Fprintln(e.stderr, "headroom doctor: no working directory; pass --project:", err)
			return 1
		}
	}
	settings := doctor.ReadSettings(f.home, f.project, doctor.EnvironMap(os.Environ()))
	opt := doctor.Options{InputTokens: f.inputTokens, CallsPerTask: f.callsPerTask, TPM: f.tpm, TPD: f.tpd, SeverityProfile: f.profile}

	var probe *doctor.ProbeResult
	if f.probe {
		if probe, err = runProbe(ctx, f, settings, opt); err != nil {
			fmt.Fprintln(e.stderr, "headroom doctor:", err)
			return 1
		}
	}
	report := doctor.Analyze(settings, opt, probe)
	if f.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(report)
	} else {
		err = doctor.WriteText(e.stdout, report)
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "headroom doctor:", err)
		return 1
	}
	switch {
	case report.Verdict.Situation == doctor.SituationProvisioning:
		return exitProvisioning
	case report.Verdict.Situation == doctor.SituationReservations:
		return exitReservations
	case report.Verdict.Name == doctor.VerdictNoCredentials:
		return 1
	}
	return 0
}

// runProbe loads the AWS configuration the way the SDKs do (credential
// chain, AWS_CA_BUNDLE, shared config), with the region and profile Claude
// Code's settings give, and probes.
func runProbe(ctx context.Context, f doctorFlags, s doctor.Settings, opt doctor.Options) (*doctor.ProbeResult, error) {
	region := doctor.Region(s).Value
	loadOpts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	if p, ok := s.Get(doctor.EnvProfile); ok {
		loadOpts = append(loadOpts, awsconfig.WithSharedConfigProfile(p.Value))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	endpoint := f.probeURL
	if endpoint == "" {
		endpoint = doctor.GatewayURL(s)
	}
	pc := doctor.ProbeConfig{AWS: cfg, Endpoint: endpoint, Now: time.Now}
	if v, ok := s.Get(doctor.EnvBearer); ok {
		pc.BearerToken, pc.GatewayKey = v.Value, v.Value
	}
	// The credentials are the SDK chain's, as for any AWS client: a
	// Headroom key given as AWS_ACCESS_KEY_ID is one. Finding none is
	// reported as such, not as a quota problem; to an endpoint, requests
	// are then signed with a placeholder that names the lack (the SDK's
	// anonymous credentials make the runtime client pick bearer auth with
	// no token and panic), which the emulator accepts and a gateway
	// refuses.
	creds, credErr := retrieveCredentials(ctx, cfg)
	if credErr != nil {
		pc.CredentialsErr = credErr
		if endpoint != "" {
			pc.AWS.Credentials = credentials.NewStaticCredentialsProvider("HEADROOM-DOCTOR-NO-CREDENTIALS", "none", "")
		}
	} else if pc.GatewayKey == "" && endpoint != "" {
		pc.GatewayKey = creds.AccessKeyID
	}
	regions := []string{region, "us-west-2"}
	if f.regions != "" {
		regions = strings.Split(f.regions, ",")
	}
	pc.Regions = dedupe(regions)
	plain := doctor.Analyze(s, opt, nil)
	pc.Model = plain.Models[0].ID
	if !f.tinyOnly {
		pc.SizedMaxTokens = plain.Models[0].Output.MaxTokens
	}
	for _, m := range plain.Models {
		pc.Asks = append(pc.Asks, doctor.Ask{Model: m.ID, MaxTokens: m.Output.MaxTokens})
	}
	return doctor.Probe(ctx, pc), nil
}

// retrieveCredentials gets credentials from the SDK's chain, or says why
// there are none.
func retrieveCredentials(ctx context.Context, cfg aws.Config) (aws.Credentials, error) {
	if cfg.Credentials == nil {
		return aws.Credentials{}, errors.New("no credential source configured")
	}
	c, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return aws.Credentials{}, err
	}
	return c, nil
}

func dedupe(list []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
