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

// DefaultMaxOutput is the model's own output limit, which is what a request
// reserves when it sets no max_tokens (BEDROCK.md section 1: 64,000 for Sonnet 4).
func DefaultMaxOutput(m Model) int {
	b := m.Base
	switch {
	case strings.Contains(b, "opus-4-6"), strings.Contains(b, "opus-4-7"), strings.Contains(b, "sonnet-4-6"):
		return 128000
	case strings.Contains(b, "opus-4-5"):
		return 64000
	case strings.Contains(b, "opus-4-1"), strings.Contains(b, "opus-4-2"), strings.Contains(b, "claude-opus-4-"):
		return 32000
	case strings.Contains(b, "claude-sonnet-4"), strings.Contains(b, "claude-haiku-4"), strings.Contains(b, "claude-3-7"):
		return 64000
	case strings.Contains(b, "claude-3-5"):
		return 8192
	case strings.Contains(b, "claude-3"):
		return 4096
	case strings.Contains(b, "claude"):
		return 64000
	}
	return 4096
}
