package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// Bucket kinds, as written in configuration files.
const (
	KindTPM = "tpm" // tokens per minute
	KindTPD = "tpd" // tokens per day
	KindRPM = "rpm" // requests per minute
)

// RuntimeKinds are the kinds of bedrock-runtime's buckets (Mantle's are
// MantleKinds): an upstream's service decides which it may have.
var RuntimeKinds = []string{KindTPM, KindTPD, KindRPM}

// Bucket is one quota of an account: a limit of one kind over the requests
// its scope matches. A request draws from every bucket whose scope matches.
type Bucket struct {
	// Name identifies the bucket in messages, metrics and /v1/status.
	Name string `yaml:"name" json:"name"`
	// Kind is tpm, tpd or rpm; input-tpm or output-tpm for Mantle.
	Kind string `yaml:"kind" json:"kind"`
	// Limit is the bucket's capacity: tokens (tpm, tpd, input-tpm,
	// output-tpm) or requests (rpm).
	Limit int64 `yaml:"limit" json:"limit"`
	// Scope selects the requests that draw from the bucket; empty is account-wide.
	Scope bedrock.Scope `yaml:",inline" json:"scope"`
}

// Window modes. Bedrock does not document them (BEDROCK.md section 2), so they
// are settings, with one default shared by emulator and gateway. In every mode
// a bucket counts two things: what requests have consumed (which the window
// gives back) and what live reservations hold (which only their settlement
// releases); a request fits when its charge is at most limit - used - held.
const (
	MinuteRefill = "refill"  // consumption drains continuously at limit per 60 s (default)
	MinuteClock  = "clock"   // consumption resets at every clock minute
	DayFixed     = "fixed"   // consumption resets every day at DayResetHourUTC (default, hour 0)
	DayRolling   = "rolling" // consumption expires 24 h later, by the minute
)

// Windows says how minute and day buckets refill.
type Windows struct {
	Minute          string `yaml:"minute" json:"minute"`
	Day             string `yaml:"day" json:"day"`
	DayResetHourUTC int    `yaml:"day_reset_hour_utc" json:"day_reset_hour_utc"`
}

// DefaultWindows is used by the emulator and the gateway alike.
func DefaultWindows() Windows { return Windows{Minute: MinuteRefill, Day: DayFixed} }

// Accounting chooses the accounting profile and burndown table.
type Accounting struct {
	// Profile is "seed" (default) or "aws" (BEDROCK.md section 1).
	Profile string `yaml:"profile" json:"profile"`
	// CacheReadAtAdmission turns on the older AWS reading that also reserves
	// cache-read tokens at admission.
	CacheReadAtAdmission bool `yaml:"cache_read_at_admission" json:"cache_read_at_admission"`
	// Burndown overrides the built-in burndown table when non-empty.
	Burndown bedrock.Burndown `yaml:"burndown,omitempty" json:"burndown,omitempty"`
}

// ProfileAndBurndown resolves the accounting settings. Call after validation.
func (a Accounting) ProfileAndBurndown() (bedrock.Profile, bedrock.Burndown, error) {
	name := a.Profile
	if name == "" {
		name = "seed"
	}
	p, err := bedrock.LookupProfile(name)
	if err != nil {
		return bedrock.Profile{}, nil, err
	}
	if a.CacheReadAtAdmission {
		p.CacheReadAtAdmission = true
	}
	b := a.Burndown
	if len(b) == 0 {
		b = bedrock.DefaultBurndown()
	}
	return p, b, nil
}

func (a Accounting) validate(where string, p *Problems) {
	if a.Profile != "" {
		if _, err := bedrock.LookupProfile(a.Profile); err != nil {
			p.add("%s.profile: %v", where, err)
		}
	}
	for i, r := range a.Burndown {
		if r.Match == "" || r.Rate < 1 {
			p.add("%s.burndown[%d]: match must be set and rate at least 1", where, i)
		}
	}
}

func (w Windows) validate(where string, p *Problems) {
	if w.Minute != MinuteRefill && w.Minute != MinuteClock {
		p.add("%s.minute: %q is not refill or clock", where, w.Minute)
	}
	if w.Day != DayFixed && w.Day != DayRolling {
		p.add("%s.day: %q is not fixed or rolling", where, w.Day)
	}
	if w.DayResetHourUTC < 0 || w.DayResetHourUTC > 23 {
		p.add("%s.day_reset_hour_utc: %d is not an hour 0-23", where, w.DayResetHourUTC)
	}
}

// validateBuckets checks bs, whose kinds must be among kinds.
func validateBuckets(where string, bs []Bucket, kinds []string, p *Problems) {
	seen := map[string]bool{}
	for i, b := range bs {
		at := fmtIndex(where, i, b.Name)
		if b.Name == "" {
			p.add("%s.name: required", at)
		} else if seen[b.Name] {
			p.add("%s.name: %q is used twice", at, b.Name)
		}
		seen[b.Name] = true
		if !slices.Contains(kinds, b.Kind) {
			p.add("%s.kind: %q is not %s or %s", at, b.Kind, strings.Join(kinds[:len(kinds)-1], ", "), kinds[len(kinds)-1])
		}
		if b.Limit < 0 {
			p.add("%s.limit: %d is negative", at, b.Limit)
		}
		switch b.Scope.Inference {
		case bedrock.InferenceAny, bedrock.InferenceOnDemand, bedrock.InferenceCrossRegion:
		default:
			p.add("%s.inference: %q is not on-demand or cross-region", at, b.Scope.Inference)
		}
	}
}

func fmtIndex(where string, i int, name string) string {
	if name != "" {
		return where + "[" + name + "]"
	}
	return fmt.Sprintf("%s[%d]", where, i)
}
