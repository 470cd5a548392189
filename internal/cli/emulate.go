package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/httpsrv"
)

const emulateUsage = `Usage: headroom emulate [--addr HOST:PORT] [--config FILE] [--scenario NAME] [--profile seed|aws] [--log-level LEVEL]

Runs an offline Amazon Bedrock Runtime that throttles the way Bedrock does:
it reserves max_tokens (x burndown under the seed profile) at admission,
settles at the end, and answers 429 ThrottlingException when a quota is
spent. No AWS account is needed; nothing leaves this machine.

It serves POST /model/{id}/invoke, /invoke-with-response-stream, /converse,
/converse-stream and /count-tokens, GET /inference-profiles, and, for tests
and the simulator, GET /_emulator/state and POST /_emulator/reset. It accepts
SigV4 (any signature), Authorization: Bearer KEY, x-api-key, or no auth.

The Anthropic Messages API (streamed as server-sent events or not, any query
such as ?beta=true), as Bedrock serves it on its two endpoints:
  POST /anthropic/v1/messages     bedrock-runtime: the runtime quotas, with burndown
  POST /mantle/v1/messages, /mantle/anthropic/v1/messages, /v1/messages
                                  bedrock-mantle: the region's mantle quotas
                                  (input and output tokens per minute)
  POST .../v1/messages/count_tokens   {"input_tokens": N}
Errors there are Anthropic-shaped ({"type":"error","error":{...}}).

Regions: one process serves every configured region, each with its own
quotas. A request's region is a path prefix /region/NAME (use the base URL
http://HOST:PORT/region/eu-west-1; before /mantle: .../region/eu-west-1/mantle),
else the region of its SigV4 signature, else default_region.

Point clients at it:
  Claude Code:  CLAUDE_CODE_USE_BEDROCK=1 AWS_REGION=us-east-1 \
                ANTHROPIC_BEDROCK_BASE_URL=http://127.0.0.1:4567 \
                AWS_BEARER_TOKEN_BEDROCK=anything claude
  Claude Code in Mantle mode:  CLAUDE_CODE_USE_MANTLE=1 \
                ANTHROPIC_BEDROCK_MANTLE_BASE_URL=http://127.0.0.1:4567/mantle \
                AWS_BEARER_TOKEN_BEDROCK=anything claude
  AWS SDKs:     endpoint URL http://127.0.0.1:4567, any credentials
                (Go: config.LoadDefaultConfig + BaseEndpoint;
                 Python: boto3.client("bedrock-runtime", endpoint_url=...))

Per-request headers:
  x-headroom-emulator-output-tokens: N   answer length before max_tokens cuts it
  x-headroom-emulator-fault: unavailable|throttle-mid-stream|slow   force faults
  x-headroom-emulator-cache-read-tokens: N, -cache-write-tokens: N
                                         (Messages paths) N input tokens as cache reads/writes

Flags:
`

func runEmulate(ctx context.Context, e env) int {
	fs := flag.NewFlagSet("emulate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	addr := fs.String("addr", "", "HOST:PORT to serve on (default: the file's listen, 127.0.0.1:4567; port 0 picks a free port)")
	cfgPath := fs.String("config", "", "YAML configuration `FILE` (default: the built-in configuration below)")
	scenario := fs.String("scenario", "", "scenario `NAME`: "+strings.Join(config.EmulatorScenarios, ", ")+" (overrides the file's)")
	profile := fs.String("profile", "", "accounting profile, seed or aws (overrides the file's accounting.profile)")
	var level slog.Level
	fs.TextVar(&level, "log-level", slog.LevelInfo, "log `LEVEL` on stderr: debug (every request with its reservation and charge), info (refusals), warn, error")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprint(w, emulateUsage)
		fs.PrintDefaults()
		fmt.Fprint(w, "\nConfiguration file: every setting, with its default\n\n")
		fmt.Fprint(w, config.EmulatorReference)
	}
	if err := fs.Parse(e.args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "headroom emulate: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	cfg := config.DefaultEmulator()
	if *cfgPath != "" {
		var err error
		if cfg, err = config.LoadEmulator(*cfgPath); err != nil {
			fmt.Fprintf(e.stderr, "headroom emulate: %s: %v\n", *cfgPath, err)
			return 1
		}
	}
	if *addr != "" {
		cfg.Listen = *addr
	}
	if *scenario != "" {
		cfg.Scenario = *scenario
	}
	if *profile != "" {
		cfg.Accounting.Profile = *profile
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(e.stderr, "headroom emulate: %v\n", err)
		return 1
	}

	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	srv, err := emulator.New(cfg, logger, time.Now)
	if err != nil {
		fmt.Fprintf(e.stderr, "headroom emulate: %v\n", err)
		return 1
	}
	ln, err := listen(cfg.Listen)
	if err != nil {
		fmt.Fprintf(e.stderr, "headroom emulate: %v\n", err)
		return 1
	}
	printEmulateBanner(e.stdout, "http://"+ln.Addr().String(), cfg)
	return emulateUntilDone(ctx, ln, srv, logger)
}

func printEmulateBanner(w io.Writer, url string, cfg config.Emulator) {
	profile := cfg.Accounting.Profile
	if profile == "" {
		profile = "seed"
	}
	var regions []string
	for _, r := range cfg.Regions {
		regions = append(regions, r.Name)
	}
	fmt.Fprintf(w, "headroom emulate: an offline Bedrock on %s\n", url)
	fmt.Fprintf(w, "  regions %s (default %s), accounting profile %s", strings.Join(regions, ", "), cfg.DefaultRegion, profile)
	if cfg.Scenario != "" {
		fmt.Fprintf(w, ", scenario %s", cfg.Scenario)
	}
	fmt.Fprintf(w, "\n  state: curl %s%s\n", url, emulator.PathState)
	fmt.Fprintf(w, "  Claude Code: CLAUDE_CODE_USE_BEDROCK=1 AWS_REGION=%s ANTHROPIC_BEDROCK_BASE_URL=%s AWS_BEARER_TOKEN_BEDROCK=emulator claude\n", cfg.DefaultRegion, url)
	fmt.Fprintf(w, "  Claude Code (Mantle): CLAUDE_CODE_USE_MANTLE=1 ANTHROPIC_BEDROCK_MANTLE_BASE_URL=%s/mantle AWS_BEARER_TOKEN_BEDROCK=emulator claude\n", url)
}

// emulateUntilDone serves h on ln until ctx ends, then shuts down gracefully.
func emulateUntilDone(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) int {
	hs := httpsrv.New(h, logger) // HTTP/1.1 and h2c with prior knowledge
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		logger.Error("server stopped", "error", err)
		return 1
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		_ = hs.Close()
	}
	<-errc
	return 0
}
