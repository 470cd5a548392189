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
			regions[i] = config.EmulatorRegion{Name: r.Name, Buckets: bs}
		}
		cfg.Regions = regions
	case config.ScenarioFlaky:
		cfg.Faults.UnavailableRate = 0.05
		cfg.Faults.MidStreamThrottleRate = 0.05
		cfg.Faults.SlowRate = 0.10
	}
	return cfg
}
