package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/httpsrv"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/store/sqlitestore"
)

// demoKeys are the developer keys `serve --demo` creates.
var demoKeys = []string{"alice", "bob", "carol"}

// demoSetup is what `serve --demo` runs besides the gateway: an emulator on
// a loopback port standing in for Bedrock, and a temporary data directory.
type demoSetup struct {
	cfg     config.Serve
	dataDir string
	region  string
	emu     *http.Server
	emuDone chan struct{}
}

// startDemo starts the in-process emulator and builds a serve
// configuration that mirrors its quotas exactly.
func startDemo(ctx context.Context, logger *slog.Logger) (*demoSetup, error) {
	ec := config.DefaultEmulator()
	emuLog := logger.With("component", "emulator")
	emu, err := emulator.New(ec, emuLog, time.Now)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "headroom-demo-")
	if err != nil {
		ln.Close()
		return nil, err
	}
	d := &demoSetup{dataDir: dir, region: ec.DefaultRegion, emuDone: make(chan struct{}),
		emu: httpsrv.New(emu, emuLog)}
	go func() {
		defer close(d.emuDone)
		if err := d.emu.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			emuLog.Error("demo emulator stopped", "error", err.Error())
		}
	}()
	region, _ := ec.Region(ec.DefaultRegion)
	cfg := config.DefaultServe()
	cfg.Accounting, cfg.Windows = ec.Accounting, ec.Windows
	cfg.Upstreams = []config.Upstream{{
		Name: "demo-emulator", Region: ec.DefaultRegion, Endpoint: "http://" + ln.Addr().String(),
		Auth: config.UpstreamAuth{Mode: config.AuthNone}, Buckets: region.Buckets,
		// The emulator admits a model none of its buckets matches; so does
		// the mirror of it.
		Unmatched: config.UnmatchedUnlimited,
	}}
	cfg.ApplyDefaults()
	cfg.DataDir = dir
	d.cfg = cfg
	logger.Warn("DEMO MODE: the upstream is an in-process emulator, not Amazon Bedrock; no AWS account is used and data is temporary",
		"emulator", "http://"+ln.Addr().String(), "data_dir", dir)
	return d, nil
}

// createKeys makes the demo keys and prints their Claude Code settings.
func (d *demoSetup) createKeys(ctx context.Context, st *sqlitestore.Store, r *keys.Registry, w io.Writer, url string) error {
	fmt.Fprintf(w, "headroom serve --demo: a gateway on %s in front of an EMULATED Bedrock (no AWS account, temporary data in %s)\n\n", url, d.dataDir)
	for _, name := range demoKeys {
		secret := keys.NewSecret()
		k := keys.Key{Name: name, Hash: keys.Hash(secret), Weight: 1, CreatedAt: time.Now().UTC()}
		if err := st.Create(ctx, k); err != nil {
			return fmt.Errorf("create demo key %s: %w", name, err)
		}
		fmt.Fprintf(w, "Key %q: Claude Code settings (~/.claude/settings.json or .claude/settings.local.json):\n%s\n\n", name,
			keys.ClaudeSettings(url, d.region, secret))
	}
	fmt.Fprintf(w, "Claude Code in Mantle mode (the Anthropic Messages API) works too: use CLAUDE_CODE_USE_MANTLE=1 and ANTHROPIC_BEDROCK_MANTLE_BASE_URL=%s instead of the first and third variables.\n", url)
	fmt.Fprintf(w, "Try: curl -s %s/v1/status   (buckets, keys, queue)\n", url)
	return r.Refresh(ctx)
}

// close stops the emulator and removes the temporary data.
func (d *demoSetup) close() {
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.emu.Shutdown(sctx); err != nil {
		_ = d.emu.Close()
	}
	<-d.emuDone
	_ = os.RemoveAll(d.dataDir)
}
