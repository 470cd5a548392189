package emulator

import (
	"slices"

	"github.com/headroomhq/headroom/internal/config"
)

// Applied quotas of the provisioning-bug scenario (the seed's Situation 1:
// "the internal effective limit is near zero").
const (
	provisioningBugTPD = 0
	provisioningBugTPM = 100
	crossModelTPD      = "cross-model-tpd"
)

// Applied Mantle quotas of the new-account scenario.
const (
	newAccountInputTPM  = 200_000
	newAccountOutputTPM = 40_000
)

// applyScenario returns cfg with the quota and fault changes of its
// scenario. It does not modify cfg. The saturated scenario changes no
// setting: NewAccount plays it as reservations held by another client.
func applyScenario(cfg config.Emulator) config.Emulator {
	switch cfg.Scenario {
	case config.ScenarioProvisioningBug:
		regions := make([]config.EmulatorRegion, len(cfg.Regions))
		for i, r := range cfg.Regions {
			bs := slices.Clone(r.Buckets)
			for j := range bs {
				switch bs[j].Kind {
				case config.KindTPD:
					bs[j].Limit = provisioningBugTPD
				case config.KindTPM:
					bs[j].Limit = min(bs[j].Limit, provisioningBugTPM)
				}
			}
			// The account-wide daily quota (L-E3F10727) is applied as 0 too,
			// so every model fails, not only those with their own buckets.
			if !slices.ContainsFunc(bs, func(b config.Bucket) bool { return b.Name == crossModelTPD }) {
				bs = append(bs, config.Bucket{Name: crossModelTPD, Kind: config.KindTPD, Limit: provisioningBugTPD})
			}
			regions[i] = config.EmulatorRegion{Name: r.Name, Buckets: bs, Mantle: r.Mantle}
		}
		cfg.Regions = regions
	case config.ScenarioNewAccount:
		// Mantle's quotas "depend on your usage history" (BEDROCK.md
		// section 6); AWS gives no figure for a new account, so these are
		// assumptions, small enough that one Claude Code call (input +
		// 128,000) fits at a time.
		regions := make([]config.EmulatorRegion, len(cfg.Regions))
		for i, r := range cfg.Regions {
			ms := slices.Clone(r.Mantle)
			for j := range ms {
				switch ms[j].Kind {
				case config.KindInputTPM:
					ms[j].Limit = min(ms[j].Limit, newAccountInputTPM)
				case config.KindOutputTPM:
					ms[j].Limit = min(ms[j].Limit, newAccountOutputTPM)
				}
			}
			regions[i] = config.EmulatorRegion{Name: r.Name, Buckets: r.Buckets, Mantle: ms}
		}
		cfg.Regions = regions
	case config.ScenarioFlaky:
		cfg.Faults.UnavailableRate = 0.05
		cfg.Faults.MidStreamThrottleRate = 0.05
		cfg.Faults.SlowRate = 0.10
	}
	return cfg
}
