package gateway

import (
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// TestBreaker replays a failing upstream on a fake clock: out after three
// failures in a row, one probe after the time out, a failed probe doubles
// the time out, a good answer brings it back.
func TestBreaker(t *testing.T) {
	o := FailoverOptions{TripAfter: 3, OutFor: 10 * time.Second, MaxOutFor: 15 * time.Second}.withDefaults()
	t0 := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	var b breaker
	steps := []struct {
		at    float64
		do    string // fail, trip, ok, allow
		want  bool   // failure: took it out; allow: allowed; ok: brought back
		state string
	}{
		{0, "fail", false, BreakerIn},
		{1, "fail", false, BreakerIn},
		{1.5, "ok", false, BreakerIn}, // a success resets the count
		{2, "fail", false, BreakerIn},
		{3, "fail", false, BreakerIn},
		{4, "fail", true, BreakerOut},
		{5, "allow", false, BreakerOut},
		{13.9, "allow", false, BreakerOut},
		{14, "allow", true, BreakerProbing}, // the probe
		{14.5, "allow", false, BreakerProbing},
		{15, "fail", false, BreakerOut}, // the probe failed: out for 15 s (doubling, capped)
		{29.9, "allow", false, BreakerOut},
		{30, "allow", true, BreakerProbing},
		{41, "allow", true, BreakerProbing}, // a probe that never reported is replaced after OutFor
		{42, "ok", true, BreakerIn},
		{43, "allow", true, BreakerIn},
		{44, "trip", true, BreakerOut}, // a daily throttle: out at once
	}
	for _, s := range steps {
		var got bool
		switch s.do {
		case "fail":
			got = b.failure(at(s.at), causeUnavailable, false, o)
		case "trip":
			got = b.failure(at(s.at), causeDailyQuota, true, o)
		case "ok":
			got = b.success()
		case "allow":
			got = b.allow(at(s.at), o)
		}
		if got != s.want || b.state().State != s.state {
			t.Fatalf("at %vs %s = %v, state %s; want %v, %s", s.at, s.do, got, b.state().State, s.want, s.state)
		}
	}
}

// TestWRR: smooth weighted round robin spreads first choices by weight,
// interleaved, and gives none to an upstream without weight.
func TestWRR(t *testing.T) {
	var w wrr
	names := []string{"a", "b", "c"}
	weights := map[string]float64{"a": 1, "b": 2}
	var got []string
	for range 6 {
		got = append(got, w.next(names, weights))
	}
	want := []string{"b", "a", "b", "b", "a", "b"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("first choices %v, want %v", got, want)
		}
	}
	if got := w.next(names, nil); got != "" {
		t.Errorf("no weights chose %q", got)
	}
}

// TestModelFor: the geography prefix and explicit IDs are rewritten per
// upstream; ARNs the client sent are kept.
func TestModelFor(t *testing.T) {
	const arn = "arn:aws:bedrock:eu-west-1:123456789012:application-inference-profile/abc"
	for _, tt := range []struct {
		prefix string
		ids    map[string]string
		in     string
		want   string
	}{
		{"", nil, sonnet, sonnet},
		{"eu", nil, sonnet, "eu.anthropic.claude-sonnet-4-20250514-v1:0"},
		{"global", nil, "anthropic.claude-sonnet-4-20250514-v1:0", "global.anthropic.claude-sonnet-4-20250514-v1:0"},
		{"none", nil, sonnet, "anthropic.claude-sonnet-4-20250514-v1:0"},
		{"eu", map[string]string{"claude-sonnet-4": arn}, sonnet, arn},
		{"eu", map[string]string{"claude-opus": arn}, sonnet, "eu.anthropic.claude-sonnet-4-20250514-v1:0"},
		{"eu", nil, "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0",
			"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0"},
	} {
		u := &Upstream{ModelPrefix: tt.prefix, ModelIDs: tt.ids}
		for k := range tt.ids {
			u.modelIDKeys = append(u.modelIDKeys, k)
		}
		m, err := bedrock.ParseModel(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		got := u.modelFor(m)
		if got.ID != tt.want || got.Base != m.Base {
			t.Errorf("prefix %q ids %v: %s -> %s (base %s), want %s (base %s)", tt.prefix, tt.ids, tt.in, got.ID, got.Base, tt.want, m.Base)
		}
	}
}
