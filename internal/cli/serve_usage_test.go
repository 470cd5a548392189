package cli

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/gateway"
	"github.com/headroomhq/headroom/internal/store/memstore"
)

// TestImpossibleUsageNotRestored: a day's usage outside [0, a trillion]
// in the store (written by an earlier version that trusted an upstream's
// 1e18 output tokens, or tampered with) is not restored: the gateway
// would otherwise lock every key out for the rest of the day after a
// restart. A plausible entry beside it is.
func TestImpossibleUsageNotRestored(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	u, err := gateway.NewUpstream("emu", nil, []config.Bucket{{Name: "tpd", Kind: config.KindTPD, Limit: 1_000_000}},
		config.DefaultWindows(), admission.Options{}, now)
	u.Admission.SetKeys([]admission.Key{{Name: "alice"}, {Name: "bob"}, {Name: "carol"}})
	if err != nil {
		t.Fatal(err)
	}
	st := memstore.New()
	day := u.Ledger().Day(now)
	if err := st.SaveUsage(ctx, day, map[string]int64{"emu/tpd": 500_000_000_000_000_000, "emu/key:alice": 1234, "emu/key:bob": -7, "emu/key:carol": 500_000_000_000_000_000}); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	s := &usageSaver{store: st, upstreams: []*gateway.Upstream{u}, log: slog.New(slog.NewTextHandler(&log, nil))}
	if err := s.restore(ctx, now); err != nil {
		t.Fatal(err)
	}
	if got := u.Ledger().DayUsage(now).Used["tpd"]; got != 0 {
		t.Errorf("tpd restored to %d, want 0 (the saved value is impossible)", got)
	}
	if got := u.Admission.KeyUsage(now).Used["key:alice"]; got != 1234 {
		t.Errorf("alice restored to %d, want 1,234", got)
	}
	for _, k := range []string{"key:bob", "key:carol"} {
		if got := u.Admission.KeyUsage(now).Used[k]; got != 0 {
			t.Errorf("%s restored to %d, want 0 (the saved value is impossible)", k, got)
		}
	}
	if !strings.Contains(log.String(), "impossible") {
		t.Errorf("nothing logged about the impossible entry: %s", log.String())
	}
}
