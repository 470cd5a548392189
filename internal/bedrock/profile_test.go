package bedrock

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sonnet4 is the "5x model" of AWS's example and the seed's model.
func sonnet4(t *testing.T) (Model, int) {
	t.Helper()
	m, err := ParseModel("us.anthropic.claude-sonnet-4-20250514-v1:0")
	if err != nil {
		t.Fatal(err)
	}
	return m, DefaultBurndown().Rate(m)
}

// TestWorkedNumbers reproduces every number BEDROCK.md section 1 works out.
func TestWorkedNumbers(t *testing.T) {
	m, rate := sonnet4(t)
	if rate != 5 {
		t.Fatalf("burndown rate of %s = %d, want 5", m.Base, rate)
	}
	awsCacheRead := ProfileAWS
	awsCacheRead.CacheReadAtAdmission = true
	// AWS's example: input 3,000, cache read 4,000, cache write 1,000, output 1,000.
	awsDemand := func(maxTokens int) Demand {
		return Demand{InputTokens: 3000, CacheReadTokens: 4000, CacheWriteTokens: 1000, MaxTokens: maxTokens}
	}
	awsUsage := Usage{InputTokens: 3000, CacheReadInputTokens: 4000, CacheWriteInputTokens: 1000, OutputTokens: 1000}

	admission := []struct {
		name    string
		profile Profile
		demand  Demand
		want    int64
	}{
		{"aws, max_tokens 32,000", ProfileAWS, awsDemand(32000), 36000},
		{"aws + cache read at admission (older doc)", awsCacheRead, awsDemand(32000), 40000},
		{"aws, max_tokens 1,250", ProfileAWS, awsDemand(1250), 5250},
		{"aws, no floor on max_tokens", ProfileAWS, Demand{InputTokens: 10, MaxTokens: 100}, 110},
		// The seed: 1,000 input, max_tokens unset = Sonnet 4's 64,000.
		{"seed, max_tokens unset", ProfileSeed, Demand{InputTokens: 1000, MaxTokens: DefaultMaxOutput(m)}, 321000},
		// Claude Code's default 32,000; the seed's 160,000 counts output
		// only, so the input is 0 here.
		{"seed, Claude Code's 32,000", ProfileSeed, Demand{MaxTokens: 32000}, 160000},
		{"seed, 4,096", ProfileSeed, Demand{MaxTokens: 4096}, 20480},
		{"seed, floor lifts 1,000 to 4,096", ProfileSeed, Demand{MaxTokens: 1000}, 20480},
		{"seed ignores cache tokens", ProfileSeed, Demand{InputTokens: 1000, CacheReadTokens: 500, CacheWriteTokens: 700, MaxTokens: 32000}, 161000},
	}
	for _, tt := range admission {
		if got := tt.profile.Admission(tt.demand, rate); got != tt.want {
			t.Errorf("%s: Admission = %d, want %d", tt.name, got, tt.want)
		}
	}

	settlement := []struct {
		name          string
		usage         Usage
		quota, billed int64
	}{
		// AWS: the final charge is 9,000 whatever max_tokens was; cache reads
		// are not counted, output burns down 5x.
		{"aws example", awsUsage, 9000, 9000},
		// "you pay for 1,100 tokens where the quota burned 1,500".
		{"1,000 in, 100 out", Usage{InputTokens: 1000, OutputTokens: 100}, 1500, 1100},
	}
	for _, tt := range settlement {
		for _, p := range []Profile{ProfileAWS, awsCacheRead, ProfileSeed} {
			if got := p.Settlement(tt.usage, rate); got != tt.quota {
				t.Errorf("%s, profile %s: Settlement = %d, want %d", tt.name, p.Name, got, tt.quota)
			}
		}
		if got := Billed(tt.usage); got != tt.billed {
			t.Errorf("%s: Billed = %d, want %d", tt.name, got, tt.billed)
		}
	}
	// AWS's billing of its own example: 3,000 + 4,000 + 1,000 + 1,000.
	if got := Billed(awsUsage); got != 9000 {
		t.Errorf("Billed(aws example) = %d, want 9000", got)
	}
}

// TestSeedRatios checks the seed's prose: 321,000 is 64% of a 500,000 daily
// quota, and 4,096 gives about 8x more calls than 32,000.
func TestSeedRatios(t *testing.T) {
	m, rate := sonnet4(t)
	unset := ProfileSeed.Admission(Demand{InputTokens: 1000, MaxTokens: DefaultMaxOutput(m)}, rate)
	if pct := unset * 100 / 500000; pct != 64 {
		t.Errorf("unset max_tokens reserves %d%% of 500,000, want 64%%", pct)
	}
	big := ProfileSeed.Admission(Demand{MaxTokens: 32000}, rate)
	small := ProfileSeed.Admission(Demand{MaxTokens: 4096}, rate)
	if ratio := float64(big) / float64(small); ratio < 7.5 || ratio > 8 {
		t.Errorf("32,000 vs 4,096 reserves %.2fx, want about 8x", ratio)
	}
}

func TestSettlementMayExceedAdmission(t *testing.T) {
	_, rate := sonnet4(t)
	// AWS: with max_tokens 1,250 admission is 5,250 but the final is 9,000.
	d := Demand{InputTokens: 3000, CacheReadTokens: 4000, CacheWriteTokens: 1000, MaxTokens: 1250}
	u := Usage{InputTokens: 3000, CacheReadInputTokens: 4000, CacheWriteInputTokens: 1000, OutputTokens: 1000}
	if a, s := ProfileAWS.Admission(d, rate), ProfileAWS.Settlement(u, rate); s <= a {
		t.Errorf("Settlement %d <= Admission %d; AWS's example charges extra at the end", s, a)
	}
}

func TestBurndownBelowOneCountsOnce(t *testing.T) {
	// A misconfigured rate of 0 must not make output free.
	if got := ProfileSeed.Admission(Demand{MaxTokens: 5000}, 0); got != 5000 {
		t.Errorf("Admission with rate 0 = %d, want 5000", got)
	}
	if got := ProfileAWS.Settlement(Usage{OutputTokens: 7}, 0); got != 7 {
		t.Errorf("Settlement with rate 0 = %d, want 7", got)
	}
}

func TestLookupProfile(t *testing.T) {
	for _, want := range []Profile{ProfileAWS, ProfileSeed} {
		got, err := LookupProfile(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("LookupProfile(%q) (-want +got):\n%s", want.Name, diff)
		}
	}
	if _, err := LookupProfile("gcp"); err == nil {
		t.Error(`LookupProfile("gcp"): want an error`)
	}
}

// TestCostSaturates: counts an upstream or a client can make up never wrap
// a cost negative; they stop at the largest int64, which no bucket admits.
func TestCostSaturates(t *testing.T) {
	const huge = 1<<63 - 1
	_, rate := sonnet4(t)
	for _, u := range []Usage{
		{OutputTokens: 4_000_000_000_000_000_000},
		{InputTokens: huge, OutputTokens: huge},
		{InputTokens: huge, CacheWriteInputTokens: huge},
	} {
		if got := ProfileAWS.Settlement(u, rate); got != huge {
			t.Errorf("Settlement(%+v) = %d, want %d", u, got, int64(huge))
		}
	}
	for _, p := range []Profile{ProfileAWS, ProfileSeed} {
		for _, d := range []Demand{
			{MaxTokens: huge},
			{InputTokens: huge, MaxTokens: 1},
			{InputTokens: huge, CacheWriteTokens: huge, CacheReadTokens: huge, MaxTokens: huge},
		} {
			p := p
			p.CacheReadAtAdmission = true
			if got := p.Admission(d, rate); got != huge {
				t.Errorf("%s Admission(%+v) = %d, want %d", p.Name, d, got, int64(huge))
			}
		}
	}
	// Negative counts (a corrupt answer) cost nothing rather than a refund.
	if got := ProfileAWS.Settlement(Usage{InputTokens: -5, OutputTokens: -huge}, rate); got != 0 {
		t.Errorf("Settlement of negative counts = %d, want 0", got)
	}
}

func TestMantleCosts(t *testing.T) {
	d := Demand{InputTokens: 3000, CacheWriteTokens: 1000, CacheReadTokens: 4000, MaxTokens: 32000}
	if got, want := MantleAdmission(d), int64(36000); got != want { // cache reads never count
		t.Errorf("MantleAdmission = %d, want %d", got, want)
	}
	u := Usage{InputTokens: 3000, CacheWriteInputTokens: 1000, CacheReadInputTokens: 4000, OutputTokens: 1000}
	if got, want := MantleInput(u), int64(4000); got != want {
		t.Errorf("MantleInput = %d, want %d", got, want)
	}
	if got, want := MantleOutput(u), int64(1000); got != want { // no burndown
		t.Errorf("MantleOutput = %d, want %d", got, want)
	}
	if got := MantleAdmission(Demand{InputTokens: -5, MaxTokens: math.MaxInt}); got != math.MaxInt64 {
		t.Errorf("MantleAdmission saturates: %d", got)
	}
}
