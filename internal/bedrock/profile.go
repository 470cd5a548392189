package bedrock

import (
	"fmt"
	"math"
)

// Profile is an accounting profile: the rule for what a request reserves at
// admission. Settlement is the same for every profile. BEDROCK.md section 1
// defines the two readings of the public sources that Headroom supports.
type Profile struct {
	Name string `yaml:"name" json:"name"`
	// MaxTokensFloor is the smallest max_tokens admission charges for
	// (the seed's "minimum of 4096 tokens as the max_token penalty").
	MaxTokensFloor int `yaml:"max_tokens_floor" json:"max_tokens_floor"`
	// BurndownAtAdmission multiplies max_tokens by the burndown rate at
	// admission (the seed's reading) instead of charging it once (AWS's).
	BurndownAtAdmission bool `yaml:"burndown_at_admission" json:"burndown_at_admission"`
	// CacheWriteAtAdmission adds cache-write tokens to the admission charge.
	CacheWriteAtAdmission bool `yaml:"cache_write_at_admission" json:"cache_write_at_admission"`
	// CacheReadAtAdmission adds cache-read tokens to the admission charge
	// (an older version of AWS's page).
	CacheReadAtAdmission bool `yaml:"cache_read_at_admission" json:"cache_read_at_admission"`
}

// ProfileAWS is AWS's documented admission charge: input + cacheWrite + max_tokens.
var ProfileAWS = Profile{Name: "aws", CacheWriteAtAdmission: true}

// ProfileSeed is the user story's: input + max(max_tokens, 4096) × burndown.
var ProfileSeed = Profile{Name: "seed", MaxTokensFloor: 4096, BurndownAtAdmission: true}

// LookupProfile returns the named built-in profile.
func LookupProfile(name string) (Profile, error) {
	switch name {
	case "aws":
		return ProfileAWS, nil
	case "seed":
		return ProfileSeed, nil
	}
	return Profile{}, fmt.Errorf("unknown accounting profile %q (want aws or seed)", name)
}

// Demand is what admission knows about a request before it runs.
type Demand struct {
	InputTokens      int
	CacheWriteTokens int
	CacheReadTokens  int
	MaxTokens        int
}

// Usage is what a finished (or interrupted) request actually used, as Bedrock
// reports it.
type Usage struct {
	InputTokens           int `json:"input_tokens"`
	OutputTokens          int `json:"output_tokens"`
	CacheReadInputTokens  int `json:"cache_read_input_tokens"`
	CacheWriteInputTokens int `json:"cache_creation_input_tokens"`
}

// Admission is the number of quota tokens reserved when a request is
// admitted. Like Settlement it saturates: counts a client or an upstream
// made up never wrap a cost negative (a negative count counts 0), and a cost
// past the largest int64 stays there, which no bucket admits.
func (p Profile) Admission(d Demand, burndown int) int64 {
	out := costTerm(max(d.MaxTokens, p.MaxTokensFloor))
	if p.BurndownAtAdmission {
		out = satMul(out, int64(max(burndown, 1)))
	}
	n := satAdd(costTerm(d.InputTokens), out)
	if p.CacheWriteAtAdmission {
		n = satAdd(n, costTerm(d.CacheWriteTokens))
	}
	if p.CacheReadAtAdmission {
		n = satAdd(n, costTerm(d.CacheReadTokens))
	}
	return n
}

// Settlement is the number of quota tokens a request finally costs:
// input + cacheWrite + output × burndown. Cache reads are never counted.
// It saturates like Admission.
func (p Profile) Settlement(u Usage, burndown int) int64 {
	out := satMul(costTerm(u.OutputTokens), int64(max(burndown, 1)))
	return satAdd(satAdd(costTerm(u.InputTokens), costTerm(u.CacheWriteInputTokens)), out)
}

// costTerm is a token count as a cost term: a negative one is 0.
func costTerm(n int) int64 { return int64(max(n, 0)) }

// satAdd adds two non-negative costs, stopping at math.MaxInt64.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// satMul multiplies a non-negative cost by a positive factor, stopping at
// math.MaxInt64.
func satMul(a, f int64) int64 {
	if a > math.MaxInt64/f {
		return math.MaxInt64
	}
	return a * f
}

// Billed is the number of tokens a request is billed for, which is not what it
// costs in quota: input + cacheWrite + cacheRead + output, no burndown.
func Billed(u Usage) int64 {
	return int64(u.InputTokens) + int64(u.CacheWriteInputTokens) + int64(u.CacheReadInputTokens) + int64(u.OutputTokens)
}
