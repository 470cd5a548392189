package bedrock

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseModel(t *testing.T) {
	const sonnet4 = "anthropic.claude-sonnet-4-20250514-v1:0"
	tests := []struct {
		raw  string
		want Model
	}{
		{sonnet4, Model{ID: sonnet4, Base: sonnet4}},
		{"anthropic.claude-sonnet-4-20250514-v1%3A0", Model{ID: sonnet4, Base: sonnet4}},
		{"us." + sonnet4, Model{ID: "us." + sonnet4, Base: sonnet4, Geo: "us"}},
		{"eu.anthropic.claude-sonnet-4-20250514-v1%3A0", Model{ID: "eu." + sonnet4, Base: sonnet4, Geo: "eu"}},
		{"apac." + sonnet4, Model{ID: "apac." + sonnet4, Base: sonnet4, Geo: "apac"}},
		{"global." + sonnet4, Model{ID: "global." + sonnet4, Base: sonnet4, Geo: "global"}},
		{"us-gov." + sonnet4, Model{ID: "us-gov." + sonnet4, Base: sonnet4, Geo: "us-gov"}},
		{"arn:aws:bedrock:us-east-1:123456789012:inference-profile%2Fus." + sonnet4,
			Model{ID: "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us." + sonnet4, Base: sonnet4, Geo: "us", Region: "us-east-1", Account: "123456789012"}},
		{"arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Ainference-profile%2Feu.anthropic.claude-sonnet-4-20250514-v1%3A0",
			Model{ID: "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu." + sonnet4, Base: sonnet4, Geo: "eu", Region: "eu-west-1", Account: "123456789012"}},
		{"arn:aws:bedrock:us-west-2::foundation-model/" + sonnet4,
			Model{ID: "arn:aws:bedrock:us-west-2::foundation-model/" + sonnet4, Base: sonnet4, Region: "us-west-2"}},
		{"arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/us-gov." + sonnet4,
			Model{ID: "arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/us-gov." + sonnet4, Base: sonnet4, Geo: "us-gov", Region: "us-gov-west-1", Account: "123456789012"}},
		{"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile%2Fa1b2c3d4e5f6",
			Model{ID: "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6", Base: "a1b2c3d4e5f6", Region: "us-east-1", Account: "123456789012"}},
		{"amazon.nova-pro-v1:0", Model{ID: "amazon.nova-pro-v1:0", Base: "amazon.nova-pro-v1:0"}},
	}
	for _, tt := range tests {
		got, err := ParseModel(tt.raw)
		if err != nil {
			t.Errorf("ParseModel(%q): %v", tt.raw, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseModel(%q) (-want +got):\n%s", tt.raw, diff)
		}
	}
}

func TestParseModelErrors(t *testing.T) {
	for _, raw := range []string{
		"",
		"%",
		"anthropic.claude%ZZ",
		"arn:aws:s3:us-east-1:123:bucket/x",
		"arn:aws:bedrock:us-east-1:123",
		"arn:aws:bedrock:us-east-1:123:inference-profile",
		"arn:aws:bedrock:us-east-1:123:inference-profile/",
		"arn:aws:bedrock:us-east-1:123:agent/abc",
		"anthropic.claude sonnet",
		"us.",
		"global.",
		"arn:aws:bedrock:us-east-1:123:inference-profile/eu.",
		"anthropic/claude",
		"a?b",
		string(make([]byte, 2049)),
	} {
		if m, err := ParseModel(raw); err == nil {
			t.Errorf("ParseModel(%.40q) = %+v, want an error", raw, m)
		}
	}
}

// TestModelSpellingsShareBurndown checks that every way a client can name
// Claude Sonnet 4 resolves to one foundation model, and so to one burndown
// rate and one default output limit (BEDROCK.md sections 1 and 3).
func TestModelSpellingsShareBurndown(t *testing.T) {
	const base = "anthropic.claude-sonnet-4-20250514-v1:0"
	spellings := []string{
		base,
		"anthropic.claude-sonnet-4-20250514-v1%3A0",
		"us." + base, "eu." + base, "apac." + base, "global." + base,
		"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us." + base,
		"arn:aws:bedrock:us-east-1:123456789012:inference-profile%2Fus." + base,
		"arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-sonnet-4-20250514-v1%3A0",
		"arn:aws:bedrock:us-east-1::foundation-model/" + base,
	}
	burndown := DefaultBurndown()
	for _, s := range spellings {
		m, err := ParseModel(s)
		if err != nil {
			t.Fatalf("ParseModel(%q): %v", s, err)
		}
		type facts struct {
			Base      string
			Rate, Max int
			Anthropic bool
		}
		got := facts{m.Base, burndown.Rate(m), DefaultMaxOutput(m), m.Anthropic()}
		want := facts{base, 5, 64000, true}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", s, diff)
		}
	}
}

func TestBurndownRate(t *testing.T) {
	tests := []struct {
		id   string
		want int
	}{
		{"anthropic.claude-3-7-sonnet-20250219-v1:0", 5},
		{"us.anthropic.claude-sonnet-4-20250514-v1:0", 5},
		{"anthropic.claude-sonnet-4-5-20250929-v1:0", 5},
		{"global.anthropic.claude-sonnet-4-6", 5},
		{"anthropic.claude-opus-4-20250514-v1:0", 5},
		{"anthropic.claude-opus-4-1-20250805-v1:0", 5},
		{"anthropic.claude-opus-4-5-20251101-v1:0", 5},
		{"anthropic.claude-opus-4-6-v1", 5},
		{"anthropic.claude-opus-4-7", 5},
		{"anthropic.claude-haiku-4-5-20251001-v1:0", 5},
		{"anthropic.claude-opus-4-8-v1", 15},
		{"anthropic.claude-sonnet-4-8-v1", 15},
		{"anthropic.claude-sonnet-5-v1", 10},
		{"anthropic.claude-opus-5-v1", 10},
		{"anthropic.claude-opus-5-5-v1", 10},
		{"anthropic.claude-fable-5-1-v1", 10},
		// The IDs Claude Code 2.1.332 names (its binary's strings).
		{"us.anthropic.claude-opus-5-5", 10},
		{"anthropic.claude-sonnet-5-5", 10}, // unconfirmed
		{"anthropic.claude-haiku-5-5", 10},  // unconfirmed
		{"anthropic.claude-fable-5-1", 10},
		{"anthropic.claude-opus-5", 10},
		{"anthropic.claude-sonnet-5", 10},
		{"anthropic.claude-opus-4-8", 15},
		{"anthropic.claude-opus-4-7", 5},
		{"anthropic.claude-sonnet-4-6", 5},
		{"anthropic.claude-3-5-sonnet-20241022-v2:0", 1},
		{"anthropic.claude-3-5-haiku-20241022-v1:0", 1},
		{"anthropic.claude-3-haiku-20240307-v1:0", 1},
		{"amazon.nova-pro-v1:0", 1},
		{"meta.llama3-70b-instruct-v1:0", 1},
	}
	b := DefaultBurndown()
	for _, tt := range tests {
		m, err := ParseModel(tt.id)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Rate(m); got != tt.want {
			t.Errorf("Rate(%s) = %d, want %d", tt.id, got, tt.want)
		}
	}
	// The table is data: an override replaces the defaults.
	custom := Burndown{{Match: "nova", Rate: 3}}
	if got := custom.Rate(Model{Base: "amazon.nova-pro-v1:0"}); got != 3 {
		t.Errorf("custom Rate = %d, want 3", got)
	}
}

func TestDefaultMaxOutput(t *testing.T) {
	tests := []struct {
		base string
		want int
	}{
		{"anthropic.claude-sonnet-4-20250514-v1:0", 64000}, // the seed's 64,000
		{"anthropic.claude-sonnet-4-5-20250929-v1:0", 64000},
		{"anthropic.claude-haiku-4-5-20251001-v1:0", 64000},
		{"anthropic.claude-3-7-sonnet-20250219-v1:0", 64000},
		{"anthropic.claude-opus-4-20250514-v1:0", 32000},
		{"anthropic.claude-opus-4-1-20250805-v1:0", 32000},
		{"anthropic.claude-opus-4-5-20251101-v1:0", 64000},
		{"anthropic.claude-opus-4-6-v1", 128000},
		{"anthropic.claude-opus-4-7", 128000},
		{"anthropic.claude-opus-4-8", 128000},
		{"anthropic.claude-sonnet-4-6", 128000},
		{"anthropic.claude-opus-5-5", 128000}, // Claude Code 2.1.332 asks for 128,000
		{"anthropic.claude-sonnet-5-5", 128000},
		{"anthropic.claude-haiku-5-5", 128000},
		{"anthropic.claude-fable-5-1", 128000},
		{"anthropic.claude-opus-5", 128000},
		{"anthropic.claude-sonnet-5", 128000},
		{"anthropic.claude-3-5-sonnet-20241022-v2:0", 8192},
		{"anthropic.claude-3-haiku-20240307-v1:0", 4096},
		{"amazon.nova-pro-v1:0", 4096},
	}
	for _, tt := range tests {
		if got := DefaultMaxOutput(Model{Base: tt.base}); got != tt.want {
			t.Errorf("DefaultMaxOutput(%s) = %d, want %d", tt.base, got, tt.want)
		}
	}
}

func TestMatchModel(t *testing.T) {
	tests := []struct {
		base, pattern string
		want          bool
	}{
		{"anthropic.claude-opus-5-5", "claude-opus-5", true}, // a substring names a group
		{"anthropic.claude-opus-5", "claude-opus-5$", true},
		{"anthropic.claude-opus-5-v1:0", "claude-opus-5$", true},
		{"anthropic.claude-opus-5:0", "claude-opus-5$", true},
		{"anthropic.claude-opus-5-5", "claude-opus-5$", false},
		{"anthropic.claude-opus-5.5", "claude-opus-5$", false},
		{"anthropic.claude-opus-5-5-v1", "claude-opus-5$", false},
		{"anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4$", true},
		{"anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4$", false},
		{"anthropic.claude-opus-5-5", "claude-opus-5-5$", true},
		{"anthropic.claude-opus-5x", "claude-opus-5$", false},
		{"anthropic.claude-opus-5", "$", false},
	}
	for _, tt := range tests {
		if got := MatchModel(tt.base, tt.pattern); got != tt.want {
			t.Errorf("MatchModel(%q, %q) = %v, want %v", tt.base, tt.pattern, got, tt.want)
		}
	}
}

// FuzzParseModel checks that ParseModel never panics, that what it accepts
// has a usable Base, and that escaping the decoded ID again parses to the
// same model (so "%3A" and ":" cannot name different models).
func FuzzParseModel(f *testing.F) {
	for _, s := range []string{
		"anthropic.claude-sonnet-4-20250514-v1:0", "us.anthropic.claude-sonnet-4-20250514-v1%3A0",
		"arn:aws:bedrock:us-east-1:123456789012:inference-profile%2Fus.anthropic.claude-sonnet-4-20250514-v1:0",
		"arn:aws:bedrock:us-east-1:123:application-inference-profile/abc", "%", "%zz", "arn:", "global.", "a%2Fb",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		m, err := ParseModel(raw)
		if err != nil {
			return
		}
		if m.Base == "" {
			t.Fatalf("ParseModel(%q) = %+v: empty Base", raw, m)
		}
		again, err := ParseModel(url.PathEscape(m.ID))
		if err != nil {
			t.Fatalf("ParseModel(PathEscape(%q)): %v", m.ID, err)
		}
		if diff := cmp.Diff(m, again); diff != "" {
			t.Fatalf("ParseModel(%q) and its re-escaped ID differ (-first +again):\n%s", raw, diff)
		}
	})
}
