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
)

// demoKeys are the developer keys `serve --demo` creates.
var demoKeys = []string{"alice", "bob", "carol"}

// demoSetup is what `serve --demo` runs besides the gateway: an emulator on
// a loopback port standing in for Bedrock, and a data directory: a
// temporary one removed at exit, or the user's --data-dir, kept.
type demoSetup struct {
	cfg     config.Serve
	dataDir string
	// temporary is set when dataDir was made for this run (and is removed).
	temporary bool
	region    string
	emu       *http.Server
	emuDone   chan struct{}
}

// startDemo starts the in-process emulator and builds a serve
// configuration that mirrors its quotas exactly. dataDir, when not empty,
// keeps the demo's keys and usage across restarts.
func startDemo(ctx context.Context, logger *slog.Logger, dataDir string) (*demoSetup, error) {
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
	dir, temporary := dataDir, false
	if dir == "" {
		if dir, err = os.MkdirTemp("", "headroom-demo-"); err != nil {
			ln.Close()
			return nil, err
		}
		temporary = true
	}
	d := &demoSetup{dataDir: dir, temporary: temporary, region: ec.DefaultRegion, emuDone: make(chan struct{}),
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
	data := "data is temporary"
	if !temporary {
		data = "data is kept in " + dir
	}
	logger.Warn("DEMO MODE: the upstream is an in-process emulator, not Amazon Bedrock; no AWS account is used and "+data,
		"emulator", "http://"+ln.Addr().String(), "data_dir", dir)
	return d, nil
}

// createKeys makes the demo keys and prints their Claude Code settings. A
// demo key still active in a kept data directory is kept: its secret was
// printed when it was made (Headroom keeps only its hash).
func (d *demoSetup) createKeys(ctx context.Context, st keys.Store, r *keys.Registry, w io.Writer, url string) error {
	data := "temporary data in " + d.dataDir
	if !d.temporary {
		data = "data kept in " + d.dataDir
	}
	fmt.Fprintf(w, "headroom serve --demo: a gateway on %s in front of an EMULATED Bedrock (no AWS account, %s)\n\n", url, data)
	for _, name := range demoKeys {
		secret := keys.NewSecret()
		k := keys.Key{Name: name, Hash: keys.Hash(secret), Weight: 1, CreatedAt: time.Now().UTC()}
		err := st.Create(ctx, k)
		if errors.Is(err, keys.ErrExists) {
			fmt.Fprintf(w, "Key %q: kept from an earlier run in %s (its secret and settings were printed then).\n\n", name, d.dataDir)
			continue
		}
		if err != nil {
			return fmt.Errorf("create demo key %s: %w", name, err)
		}
		fmt.Fprintf(w, "Key %q: Claude Code settings (~/.claude/settings.json or .claude/settings.local.json):\n%s\n\n", name,
			keys.ClaudeSettings(url, d.region, secret))
	}
	fmt.Fprintf(w, "Claude Code in Mantle mode (the Anthropic Messages API) works too: use CLAUDE_CODE_USE_MANTLE=1 and ANTHROPIC_BEDROCK_MANTLE_BASE_URL=%s instead of the first and third variables.\n", url)
	fmt.Fprintf(w, "Try: curl -s %s/v1/status   (buckets, keys, queue)\n", url)
	return r.Refresh(ctx)
}

// close stops the emulator and removes the data directory if it is temporary.
func (d *demoSetup) close() {
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.emu.Shutdown(sctx); err != nil {
		_ = d.emu.Close()
	}
	<-d.emuDone
	if d.temporary {
		_ = os.RemoveAll(d.dataDir)
	}
}
