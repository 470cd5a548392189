package bedrock

import (
	"fmt"
	"net/url"
	"strings"
)

// Model is a model identifier as a client sent it, resolved to the foundation
// model it runs on.
type Model struct {
	// ID is the identifier as received, with percent-escapes decoded.
	ID string
	// Base is the foundation model ID without any geography prefix, for
	// example "anthropic.claude-sonnet-4-20250514-v1:0". For an
	// application inference profile ARN, whose model cannot be known from the
	// ID alone, Base is the profile's resource name.
	Base string
	// Geo is the cross-region geography prefix ("us", "eu", "apac", "global")
	// or "" for an on-demand, single-region call.
	Geo string
	// Region is the region named in an ARN, or "".
	Region string
	// Account is the account named in an ARN, or "".
	Account string
}

// CrossRegion reports whether the call goes through a cross-region inference
// profile, which Bedrock meters against separate quotas (BEDROCK.md section 2).
func (m Model) CrossRegion() bool { return m.Geo != "" }

// Anthropic reports whether the model is one of Anthropic's.
func (m Model) Anthropic() bool { return strings.HasPrefix(m.Base, "anthropic.") }

var geoPrefixes = []string{"us-gov.", "us.", "eu.", "apac.", "global.", "jp.", "au.", "ca."}

// ParseModel resolves a model identifier taken from a request path. It accepts
// a literal ':' (Claude Code), "%3A" (the AWS SDKs), a geography prefix, and
// inference-profile or foundation-model ARNs with '/' or "%2F".
func ParseModel(raw string) (Model, error) {
	id := raw
	if strings.Contains(id, "%") {
		dec, err := url.PathUnescape(id)
		if err != nil {
			return Model{}, fmt.Errorf("model identifier %q: %w", raw, err)
		}
		id = dec
	}
	if id == "" || len(id) > 2048 {
		return Model{}, fmt.Errorf("model identifier %q: empty or too long", raw)
	}
	m := Model{ID: id}
	name := id
	if strings.HasPrefix(id, "arn:") {
		// arn:PARTITION:bedrock:REGION:ACCOUNT:RESOURCE-TYPE/NAME
		parts := strings.SplitN(id, ":", 6)
		if len(parts) != 6 || parts[2] != "bedrock" {
			return Model{}, fmt.Errorf("model identifier %q: not a Bedrock ARN", raw)
		}
		m.Region, m.Account = parts[3], parts[4]
		kind, rest, ok := strings.Cut(parts[5], "/")
		if !ok || rest == "" {
			return Model{}, fmt.Errorf("model identifier %q: ARN has no resource name", raw)
		}
		switch kind {
		case "foundation-model", "inference-profile", "application-inference-profile", "provisioned-model", "custom-model":
		default:
			return Model{}, fmt.Errorf("model identifier %q: unknown resource type %q", raw, kind)
		}
		name = rest
	}
	for _, p := range geoPrefixes {
		if strings.HasPrefix(name, p) {
			m.Geo = strings.TrimSuffix(p, ".")
			name = name[len(p):]
			break
		}
	}
	if name == "" {
		return Model{}, fmt.Errorf("model identifier %q: no model after the prefix", raw)
	}
	if strings.ContainsAny(name, " /?#") {
		return Model{}, fmt.Errorf("model identifier %q: invalid characters", raw)
	}
	m.Base = name
	return m, nil
}

// maxOutputs is each model family's own output limit, first match wins
// (patterns as in MatchModel). Sources are BEDROCK.md's sections.
var maxOutputs = []struct {
	match string
	limit int
}{
	// The 5 generations (Opus 5.5, Sonnet 5.5, Haiku 5.5, Fable 5.x, Opus 5,
	// Sonnet 5): 128K max output, 1M context (section 6, measured with
	// Claude Code 2.1.332, which asks Opus 5.5 for max_tokens 128,000).
	{"claude-opus-5", 128000},
	{"claude-sonnet-5", 128000},
	{"claude-haiku-5", 128000},
	{"claude-fable-5", 128000},
	// Opus 4.6 and 4.7, Sonnet 4.6: 128K (Anthropic's models overview).
	// Opus 4.8: no published figure in BEDROCK.md; assumed as Opus 4.7's.
	{"claude-opus-4-8", 128000},
	{"claude-opus-4-7", 128000},
	{"claude-opus-4-6", 128000},
	{"claude-sonnet-4-6", 128000},
	// Opus 4.5: 64K; Opus 4 and 4.1: 32K (models overview).
	{"claude-opus-4-5", 64000},
	{"claude-opus-4", 32000},
	// Sonnet 4 and 4.5, Haiku 4.5, 3.7 Sonnet: 64K (section 1: 64,000
	// for Sonnet 4, the seed's figure).
	{"claude-sonnet-4", 64000},
	{"claude-haiku-4", 64000},
	{"claude-3-7", 64000},
	{"claude-3-5", 8192},
	{"claude-3", 4096},
	// Any other Claude: the current generation's common figure.
	{"claude", 64000},
}

// DefaultMaxOutput is the model's own output limit, which is what a request
// reserves when it sets no max_tokens, and the most a request may ask for.
// Models that are not Claude get 4,096.
func DefaultMaxOutput(m Model) int {
	for _, r := range maxOutputs {
		if MatchModel(m.Base, r.match) {
			return r.limit
		}
	}
	return 4096
}

// MatchModel reports whether pattern names the foundation model base: a
// substring of it, so "claude-sonnet-4" names a group; a pattern ending in
// '$' names one model whose name ends there, followed only by a date or a
// version ("claude-opus-5$" matches "anthropic.claude-opus-5" and
// "anthropic.claude-opus-5-v1:0", not "anthropic.claude-opus-5-5").
func MatchModel(base, pattern string) bool {
	pat, exact := strings.CutSuffix(pattern, "$")
	if !exact {
		return strings.Contains(base, pat)
	}
	for off := 0; ; {
		i := strings.Index(base[off:], pat)
		if i < 0 || pat == "" {
			return false
		}
		off += i + len(pat)
		if nameEnds(base[off:]) {
			return true
		}
		off -= len(pat) - 1
	}
}

// nameEnds reports whether rest, what follows a model name in an ID (or in
// a quota's display name), holds no further part of the name: empty, a
// version ("-v1", ":0", " V1"), a list's next item or a date ("-20250514"),
// but not a minor version ("-5", ".5") or more letters.
func nameEnds(rest string) bool {
	if rest == "" || rest[0] == ':' || rest[0] == ',' || strings.HasPrefix(rest, "-v") || strings.HasPrefix(rest, " v") {
		return true
	}
	if rest[0] != '-' {
		return false
	}
	digits := 0
	for _, c := range rest[1:] {
		if c < '0' || c > '9' {
			break
		}
		digits++
	}
	return digits == 8
}
