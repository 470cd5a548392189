package config

import (
	"slices"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// Quota kinds of bedrock-mantle (BEDROCK.md section 6, AWS quotas-mantle.html):
// per model and region, input tokens per minute and output tokens per
// minute, and nothing else (no RPM, no daily quota). The emulator keeps them
// in each region's `mantle` list; the gateway mirrors them for a Mantle
// upstream. What each kind charges is written down in package emulator's
// doc (internal/emulator/mantle.go) and in the README.
const (
	KindInputTPM  = "input-tpm"  // admission charge input + cacheWrite + max_tokens; settles to input + cacheWrite
	KindOutputTPM = "output-tpm" // output tokens as generated; a request is refused while the bucket is in debt
)

// MantleKinds lists the kinds a Mantle bucket may have.
var MantleKinds = []string{KindInputTPM, KindOutputTPM}

// Mantle holds the emulator's bedrock-mantle settings that are not per
// region (each region's buckets are EmulatorRegion.Mantle).
type Mantle struct {
	// Queue is Mantle's "briefly queues" (AWS scaling-throughput-best-practices.html).
	Queue MantleQueue `yaml:"queue"`
}

// MantleQueue says how long a Mantle request that does not fit waits for
// in-flight work to settle (or the window to refill) before it is refused.
type MantleQueue struct {
	// MaxWait is the longest wait; 0 refuses at once. AWS does not say how
	// long Mantle queues, so this is a setting (default 0).
	MaxWait Duration `yaml:"max_wait"`
}

func (m Mantle) validate(p *Problems) {
	if m.Queue.MaxWait.Duration < 0 {
		p.add("mantle.queue.max_wait: %v is negative", m.Queue.MaxWait.Duration)
	}
}

// validateMantleBuckets checks one region's Mantle buckets. Mantle quotas
// are per model and region, so a bucket has no inference scope.
func validateMantleBuckets(where, region string, bs []Bucket, p *Problems) {
	seen := map[string]bool{}
	for i, b := range bs {
		at := fmtIndex(where, i, b.Name)
		if b.Name == "" {
			p.add("%s.name: required", at)
		} else if seen[b.Name] {
			p.add("%s.name: %q is used twice", at, b.Name)
		}
		seen[b.Name] = true
		if !slices.Contains(MantleKinds, b.Kind) {
			p.add("%s.kind: %q is not %s or %s", at, b.Kind, KindInputTPM, KindOutputTPM)
		}
		if b.Limit < 0 {
			p.add("%s.limit: %d is negative", at, b.Limit)
		}
		if b.Scope.Inference != bedrock.InferenceAny {
			p.add("%s.inference: Mantle quotas are per model and region; leave inference out", at)
		}
		if len(b.Scope.Regions) > 0 && region != "" && !slices.Contains(b.Scope.Regions, region) {
			p.add("%s.regions: %v does not include %s, so the bucket never applies", at, b.Scope.Regions, region)
		}
	}
}
