package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/keys"
)

const keysUsage = `Usage:
  headroom keys create NAME [flags]   create a key; its secret is shown once,
                                      with Claude Code settings to paste
  headroom keys list [flags]          list keys and their limits (never secrets)
  headroom keys revoke NAME [flags]   revoke a key

Developer keys are what each developer puts in AWS_BEARER_TOKEN_BEDROCK
instead of AWS credentials. Headroom stores only their SHA-256 hash, in
headroom.db in the data directory (with --redis, in the Redis that replicas
share). Keys can be managed while 'headroom serve' runs: a new key works at
once, a revoked one is refused within keys_refresh (2s by default).

Run 'headroom keys COMMAND --help' for a command's flags.
`

func runKeys(ctx context.Context, e env) int {
	if len(e.args) == 0 {
		fmt.Fprint(e.stderr, keysUsage)
		return 2
	}
	sub := e
	sub.args = e.args[1:]
	switch e.args[0] {
	case "create":
		return keysCreate(ctx, sub)
	case "list":
		return keysList(ctx, sub)
	case "revoke":
		return keysRevoke(ctx, sub)
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, keysUsage)
		return 0
	}
	fmt.Fprintf(e.stderr, "headroom keys: unknown command %q\n\n%s", e.args[0], keysUsage)
	return 2
}

// storeFlags are the flags every keys command has: where the store is.
type storeFlags struct {
	dataDir, configPath, redis *string
	cfg                        *config.Serve // loaded by open when --config is given
}

func addStoreFlags(fs *flag.FlagSet) *storeFlags {
	return &storeFlags{
		dataDir:    fs.String("data-dir", "", "data `DIR` holding headroom.db (default: the config's data_dir, else a per-user directory)"),
		configPath: fs.String("config", "", "serve configuration `FILE` whose data_dir (or redis), listen and region to use"),
		redis:      fs.String("redis", "", "manage the keys in the Redis at `URL` that replicas share (as serve --redis) instead of the data directory"),
	}
}

// open loads the configuration (if any) and opens the store.
func (f *storeFlags) open(ctx context.Context) (stateStore, error) {
	if *f.configPath != "" {
		cfg, err := config.LoadServe(*f.configPath)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", *f.configPath, err)
		}
		f.cfg = &cfg
	}
	redisURL, dir, err := chooseStore(*f.redis, *f.dataDir, f.cfg)
	if err != nil {
		return nil, err
	}
	st, _, err := openState(ctx, redisURL, dir, false, nil)
	return st, err
}

// subcommand sets up a keys subcommand's flag set; help is printed on stdout.
func subcommand(e env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("keys "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}

// keyView is how a key is shown: never its hash.
type keyView struct {
	Name            string     `json:"name"`
	Weight          float64    `json:"weight"`
	DailyTokens     int64      `json:"daily_tokens"`
	MaxConcurrency  int        `json:"max_concurrency"`
	MaxOutputTokens int        `json:"max_output_tokens"`
	CreatedAt       time.Time  `json:"created_at"`
	RevokedAt       *time.Time `json:"revoked_at,omitempty"`
	// Replaced is set on a revoked key whose name a newer key has.
	Replaced bool `json:"replaced,omitempty"`
}

func viewOf(k keys.Key) keyView {
	name, replaced := keys.BaseName(k.Name)
	v := keyView{Name: name, Replaced: replaced, Weight: k.Weight, DailyTokens: k.DailyTokens, MaxConcurrency: k.MaxConcurrency,
		MaxOutputTokens: k.MaxOutputTokens, CreatedAt: k.CreatedAt}
	if k.Revoked() {
		at := k.RevokedAt
		v.RevokedAt = &at
	}
	return v
}

const createUsage = `Usage: headroom keys create NAME [flags]

Creates a developer key and prints its secret once (Headroom keeps only its
hash), with a Claude Code settings.json env block that uses it.

Flags:
`

func keysCreate(ctx context.Context, e env) int {
	fs := subcommand(e, "create", createUsage)
	weight := fs.Float64("weight", 1, "share of contended capacity relative to other keys")
	daily := fs.Int64("daily-tokens", 0, "quota tokens the key may use per day (0 = no per-key budget)")
	conc := fs.Int("max-concurrency", 0, "requests the key may have in flight (0 = no cap)")
	maxOut := fs.Int("max-output-tokens", 0, "max_tokens cap for this key, below the policy's (0 = the policy's)")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	gatewayURL := fs.String("gateway-url", "", "gateway `URL` for the settings (default: from --config's listen, else "+keys.DefaultGatewayURL+")")
	region := fs.String("region", "", "`REGION` for AWS_REGION in the settings (default: the config's first upstream region, else us-east-1)")
	sf := addStoreFlags(fs)
	pos, code, ok := parseSub(e, fs, 1)
	if !ok {
		return code
	}
	k := keys.Key{Name: pos[0], Weight: *weight, DailyTokens: *daily, MaxConcurrency: *conc,
		MaxOutputTokens: *maxOut, CreatedAt: time.Now().UTC()}
	secret := keys.NewSecret()
	k.Hash = keys.Hash(secret)
	if err := k.Validate(); err != nil {
		fmt.Fprintf(e.stderr, "headroom keys create: %v\n", err)
		return 2
	}
	st, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "headroom keys create: %v\n", err)
		return 1
	}
	defer st.Close()
	if err := st.Create(ctx, k); err != nil {
		if errors.Is(err, keys.ErrExists) {
			fmt.Fprintf(e.stderr, "headroom keys create: key %q already exists; revoke it first ('headroom keys revoke %s') or choose another name\n", k.Name, k.Name)
		} else {
			fmt.Fprintf(e.stderr, "headroom keys create: %v\n", err)
		}
		return 1
	}

	url, reg := settingsTarget(sf.cfg, *gatewayURL, *region)
	settings := keys.ClaudeSettings(url, reg, secret)
	if *asJSON {
		out := struct {
			keyView
			Secret         string          `json:"secret"`
			ClaudeSettings json.RawMessage `json:"claude_settings"`
		}{viewOf(k), secret, json.RawMessage(settings)}
		return writeJSON(e, out)
	}
	fmt.Fprintf(e.stdout, "Created key %q (%s).\n\n", k.Name, describeLimits(k))
	if replacedRevoked(ctx, st, k.Name) {
		fmt.Fprintf(e.stdout, "The revoked key named %q is kept, with its dates ('headroom keys list' shows it as replaced).\n\n", k.Name)
	}
	fmt.Fprintf(e.stdout, "Secret (shown only now; Headroom keeps only its hash):\n\n  %s\n\n", secret)
	fmt.Fprintf(e.stdout, "Claude Code settings for this key: paste into ~/.claude/settings.json\n(merge into an existing \"env\" block) or a project's .claude/settings.local.json:\n\n%s\n", settings)
	return 0
}

// settingsTarget is the gateway URL and region to put in Claude Code's settings.
func settingsTarget(cfg *config.Serve, urlFlag, regionFlag string) (string, string) {
	url, region := urlFlag, regionFlag
	if url == "" {
		url = keys.DefaultGatewayURL
		if cfg != nil {
			url = gatewayURL(cfg.Listen, cfg.TLS.Enabled())
		}
	}
	if region == "" {
		region = "us-east-1"
		if cfg != nil && len(cfg.Upstreams) > 0 {
			region = cfg.Upstreams[0].Region
		}
	}
	return url, region
}

// gatewayURL turns a listen address into a URL a local client can use: an
// unspecified host (":8080", "0.0.0.0:8080") becomes 127.0.0.1.
func gatewayURL(listen string, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return scheme + "://" + listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

func describeLimits(k keys.Key) string {
	parts := []string{fmt.Sprintf("weight %g", k.Weight)}
	if k.DailyTokens > 0 {
		parts = append(parts, humanize.Comma(k.DailyTokens)+" tokens per day")
	}
	if k.MaxConcurrency > 0 {
		parts = append(parts, fmt.Sprintf("at most %d in flight", k.MaxConcurrency))
	}
	if k.MaxOutputTokens > 0 {
		parts = append(parts, "max_tokens at most "+humanize.Comma(int64(k.MaxOutputTokens)))
	}
	return strings.Join(parts, ", ")
}

const listUsage = `Usage: headroom keys list [flags]

Lists every key with its limits, revoked ones included. Secrets are never
shown: Headroom does not have them.

Flags:
`

func keysList(ctx context.Context, e env) int {
	fs := subcommand(e, "list", listUsage)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	sf := addStoreFlags(fs)
	if _, code, ok := parseSub(e, fs, 0); !ok {
		return code
	}
	st, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "headroom keys list: %v\n", err)
		return 1
	}
	defer st.Close()
	ks, err := st.List(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "headroom keys list: %v\n", err)
		return 1
	}
	if *asJSON {
		views := make([]keyView, len(ks))
		for i, k := range ks {
			views[i] = viewOf(k)
		}
		return writeJSON(e, views)
	}
	if len(ks) == 0 {
		fmt.Fprintln(e.stdout, "No keys yet. Create one with: headroom keys create NAME")
		return 0
	}
	writeKeyTable(e.stdout, ks)
	return 0
}

func writeKeyTable(w io.Writer, ks []keys.Key) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tWEIGHT\tDAILY TOKENS\tMAX CONCURRENCY\tMAX OUTPUT\tCREATED\tSTATUS")
	// Numbers get thousands separators: 5,000,000 reads at a glance,
	// 5000000 does not.
	orNone := func(n int64) string {
		if n == 0 {
			return "-"
		}
		return humanize.Comma(n)
	}
	for _, k := range ks {
		status := "active"
		if k.Revoked() {
			status = "revoked " + k.RevokedAt.UTC().Format(time.RFC3339)
		}
		name, replaced := keys.BaseName(k.Name)
		if replaced {
			status += ", replaced"
		}
		fmt.Fprintf(tw, "%s\t%g\t%s\t%s\t%s\t%s\t%s\n", name, k.Weight, orNone(k.DailyTokens),
			orNone(int64(k.MaxConcurrency)), orNone(int64(k.MaxOutputTokens)),
			k.CreatedAt.UTC().Format(time.RFC3339), status)
	}
	tw.Flush()
}

const revokeUsage = `Usage: headroom keys revoke NAME [flags]

Revokes a key. A running gateway refuses it (403 AccessDeniedException)
within its keys_refresh interval. A new key may then be created under the
same name; the revoked one stays listed, marked replaced.

Flags:
`

func keysRevoke(ctx context.Context, e env) int {
	fs := subcommand(e, "revoke", revokeUsage)
	sf := addStoreFlags(fs)
	pos, code, ok := parseSub(e, fs, 1)
	if !ok {
		return code
	}
	st, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "headroom keys revoke: %v\n", err)
		return 1
	}
	defer st.Close()
	if err := st.Revoke(ctx, pos[0], time.Now().UTC()); err != nil {
		if errors.Is(err, keys.ErrNotFound) {
			fmt.Fprintf(e.stderr, "headroom keys revoke: no key named %q ('headroom keys list' shows them)\n", pos[0])
		} else {
			fmt.Fprintf(e.stderr, "headroom keys revoke: %v\n", err)
		}
		return 1
	}
	fmt.Fprintf(e.stdout, "Revoked key %q. A running gateway refuses it within its keys_refresh interval.\n", pos[0])
	return 0
}

func writeJSON(e env, v any) int {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(e.stderr, "headroom: write JSON: %v\n", err)
		return 1
	}
	return 0
}

// replacedRevoked reports whether the store keeps a revoked key that had
// name before the one just created.
func replacedRevoked(ctx context.Context, st keys.Store, name string) bool {
	ks, err := st.List(ctx)
	if err != nil {
		return false
	}
	for _, k := range ks {
		if base, archived := keys.BaseName(k.Name); archived && base == name {
			return true
		}
	}
	return false
}
