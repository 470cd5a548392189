package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
)

func TestLoadServeMinimalGetsDefaults(t *testing.T) {
	got, err := LoadServe("testdata/serve-good-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultServe()
	want.Upstreams = []Upstream{{
		Name: "main", Region: "us-east-1", Service: ServiceRuntime, Auth: UpstreamAuth{Mode: AuthDefault},
		Buckets: []Bucket{{Name: "sonnet-tpm", Kind: KindTPM, Limit: 200000,
			Scope: bedrock.Scope{Models: []string{"claude-sonnet-4"}, Inference: bedrock.InferenceCrossRegion}}},
	}}
	want.Routes = []Route{{Upstreams: []string{"main"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadServe (-want +got):\n%s", diff)
	}
	// The defaults the issue promises, spelled out once.
	if got.Listen != "127.0.0.1:8080" || got.Policy.MaxTokensCap != 4096 || got.Policy.ThinkingBudgetCap != 1024 ||
		got.Policy.Mode != "learned" || got.Policy.Enforcement != "enforce" || got.Policy.Shadow() || got.Policy.Percentile != 0.95 || got.Policy.RoomFraction != 0 || got.Policy.Floor != 4096 ||
		got.Fairness.ProtectedFraction != 0.5 || got.Queue.MaxWait.Duration != 60*time.Second ||
		got.KeysRefresh.Duration != 2*time.Second || got.Redis.WhenDown != WhenDownRefuse || got.Windows != DefaultWindows() || got.Accounting.Profile != "seed" {
		t.Errorf("defaults = %+v", got)
	}
}

func TestLoadServeFull(t *testing.T) {
	got, err := LoadServe("testdata/serve-good-full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Serve{
		Listen:  "0.0.0.0:8443",
		TLS:     TLS{CertFile: "/etc/headroom/cert.pem", KeyFile: "/etc/headroom/key.pem"},
		DataDir: "/var/lib/headroom",
		Redis:   Redis{URL: "redis://redis.internal:6379/2", WhenDown: WhenDownLocalShare, Replicas: 3},
		Accounting: Accounting{Profile: "aws", CacheReadAtAdmission: true,
			Burndown: bedrock.Burndown{{Match: "claude", Rate: 5}}},
		Windows: Windows{Minute: MinuteClock, Day: DayRolling, DayResetHourUTC: 7},
		Upstreams: []Upstream{
			{Name: "east", Region: "us-east-1", Account: "123456789012", Service: ServiceRuntime,
				Auth: UpstreamAuth{Mode: AuthProfile, Profile: "bedrock-prod"}, MaxInFlight: 64,
				Buckets: []Bucket{
					{Name: "sonnet-tpm", Kind: KindTPM, Limit: 200000,
						Scope: bedrock.Scope{Models: []string{"claude-sonnet-4"}, Inference: bedrock.InferenceCrossRegion}},
					{Name: "daily", Kind: KindTPD, Limit: 144000000},
				}},
			{Name: "west", Region: "us-west-2", Service: ServiceRuntime, Endpoint: "https://bedrock-runtime.us-west-2.amazonaws.com",
				Auth: UpstreamAuth{Mode: AuthAPIKey, APIKeyEnv: "WEST_BEDROCK_KEY"}, ModelPrefix: "global",
				ModelIDs: map[string]string{"claude-opus": "arn:aws:bedrock:us-west-2:123456789012:application-inference-profile/abc123"}},
			{Name: "local", Region: "us-east-1", Service: ServiceMantle, Endpoint: "http://127.0.0.1:4567/mantle", Auth: UpstreamAuth{Mode: AuthNone}},
		},
		Routes: []Route{
			{Models: []string{"claude-opus"}, Keys: []string{"alice"}, Upstreams: []string{"west", "east"},
				Weights: map[string]float64{"west": 3, "east": 1}, Affinity: AffinityNone},
			{Upstreams: []string{"east"}},
		},
		Policy: func() Policy {
			p := DefaultPolicy()
			p.Mode, p.MaxTokensCap, p.ThinkingBudgetCap = PolicyFixed, 8192, 2048
			p.Models = []ModelPolicy{
				{Match: "claude-opus", MaxTokensCap: 16000},
				{Match: "claude-haiku", ThinkingBudgetCap: 4096},
			}
			p.Floor, p.Priors = 2048, []Prior{{Match: "claude-opus", Median: 1000, P99: 16000}}
			p.Escalation.Factor = 0
			return p
		}(),
		Fairness:    Fairness{ProtectedFraction: 0}, // an explicit 0 is kept, not defaulted
		Queue:       Queue{MaxWait: Duration{90 * time.Second}},
		Failover:    Failover{TripAfter: 5, OutFor: Duration{30 * time.Second}, MaxOutFor: Duration{10 * time.Minute}},
		KeysRefresh: Duration{500 * time.Millisecond},
		Operations:  Operations{TokenEnv: "HEADROOM_OPS_TOKEN"},
		Limits:      Limits{MaxConnections: 1000, MaxBodyMemoryMB: 64, BodyReadTimeout: Duration{60 * time.Second}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadServe (-want +got):\n%s", diff)
	}
	if !got.TLS.Enabled() {
		t.Error("TLS.Enabled() = false with both files set")
	}
}

// Each bad file breaks one rule (serve-many-problems breaks several) and
// must report exactly the problems listed.
func TestLoadServeProblems(t *testing.T) {
	tests := []struct {
		file string
		want Problems
	}{
		{"serve-no-upstreams", Problems{"upstreams: at least one upstream is required"}},
		{"serve-upstream-dup-name", Problems{`upstreams[main].name: "main" is used twice`}},
		{"serve-upstream-no-name", Problems{"upstreams[0].name: required"}},
		{"serve-upstream-no-region", Problems{"upstreams[main].region: required"}},
		{"serve-upstream-bad-service", Problems{`upstreams[main].service: "bedrock-agent" is not bedrock-runtime or bedrock-mantle`}},
		{"serve-upstream-bad-endpoint", Problems{`upstreams[main].endpoint: "ftp://127.0.0.1:4567" is not an http:// or https:// URL`}},
		{"serve-upstream-endpoint-no-host", Problems{`upstreams[main].endpoint: "http://" is not an http:// or https:// URL`}},
		{"serve-upstream-bad-auth-mode", Problems{`upstreams[main].auth.mode: "sigv5" is not default, profile, api-key or none`}},
		{"serve-upstream-profile-missing", Problems{"upstreams[main].auth.profile: required with mode profile"}},
		{"serve-upstream-api-key-env-missing", Problems{"upstreams[main].auth.api_key_env: required with mode api-key (the name of the variable holding the key)"}},
		{"serve-upstream-negative-in-flight", Problems{"upstreams[main].max_in_flight: -1 is negative"}},
		{"serve-upstream-bad-bucket", Problems{`upstreams[main].buckets[b].kind: "tph" is not tpm, tpd or rpm`}},
		{"serve-upstream-mantle-bucket-kind", Problems{`upstreams[mantle].buckets[opus-tpm].kind: "tpm" is not input-tpm or output-tpm`}},
		{"serve-route-unknown-upstream", Problems{`routes[0].upstreams: "mian" is not an upstream`}},
		{"serve-route-no-upstreams", Problems{"routes[0].upstreams: at least one upstream is required"}},
		{"serve-route-empty-model", Problems{"routes[0].models: an empty entry would match every model; leave the list empty instead"}},
		{"serve-policy-max-tokens-cap", Problems{"policy.max_tokens_cap: 0 must be at least 1"}},
		{"serve-policy-mode", Problems{`policy.mode: "hard" is not learned, fixed or shadow (shadow: watch without enforcing, the same as policy.enforcement: shadow)`}},
		{"serve-policy-enforcement", Problems{`policy.enforcement: "watch" is not enforce or shadow`}},
		{"serve-policy-percentile", Problems{"policy.percentile: 1.5 is not in (0, 1]"}},
		{"serve-policy-prior", Problems{"policy.priors[opus]: median 900 and p99 800 must satisfy 1 <= median < p99"}},
		{"serve-policy-escalation", Problems{"policy.escalation.factor: -1 must not be negative", "policy.escalation.ttl: 0s must be positive"}},
		{"serve-policy-room", Problems{"policy.censored_factor: 0.5 must be at least 1", "policy.room_fraction: 2 is not between 0 and 1"}},
		{"serve-policy-thinking-cap", Problems{"policy.thinking_budget_cap: 512 must be at least 1024 (Bedrock's minimum budget)"}},
		{"serve-policy-model-no-match", Problems{"policy.models[0].match: required"}},
		{"serve-policy-model-dup", Problems{`policy.models[opus].match: "opus" is used twice`}},
		{"serve-policy-model-negative-cap", Problems{"policy.models[opus].max_tokens_cap: -5 must be at least 1 (or 0 to inherit)"}},
		{"serve-policy-model-thinking-cap", Problems{"policy.models[opus].thinking_budget_cap: 100 must be at least 1024 (or 0 to inherit)"}},
		{"serve-fairness-fraction", Problems{"fairness.protected_fraction: 1.5 is not between 0 and 1"}},
		{"serve-queue-max-wait", Problems{"queue.max_wait: 0s must be positive"}},
		{"serve-upstream-unmatched", Problems{`upstreams[main].unmatched: "allow" is not refuse or unlimited`, `upstreams[main].inference_profiles[abc123]: "not a model" is not a model identifier`}},
		{"serve-route-routing", Problems{
			`upstreams[east].model_prefix: "usa" is not one of us, eu, apac, jp, au, ca, us-gov, global, none`,
			`routes[0].weights: "north" is not one of the route's upstreams`,
			`routes[0].weights.west: 0 must be a positive number (at most 1000000)`,
			`routes[0].affinity: "sticky" is not session or none`,
			`routes[0].upstreams: "west" is listed twice`,
			"failover: trip_after (0) must be at least 1, out_for (10s) positive and max_out_for (5m0s) at least out_for"}},
		{"serve-route-options", Problems{`routes[0].forward_headers: "Authorization" is not an X-Amzn-Bedrock-* request option`, `routes[0].service_tiers: "Priority" is not reserved, priority, standard or flex`}},
		{"serve-limits", Problems{"limits.max_connections: 0 must be positive", "limits.max_body_memory_mb: -1 must be positive"}},
		{"serve-keys-refresh", Problems{"keys_refresh: -1s must be positive"}},
		{"serve-redis-url", Problems{`redis.url: scheme "http" is not redis, rediss or unix (want redis://HOST:PORT)`}},
		{"serve-redis-when-down", Problems{`redis.when_down: "carry_on" is not refuse or local_share`, "redis.replicas: -2 is not between 0 and 1000"}},
		{"serve-operations-token-env", Problems{`operations.token_env: "HEADROOM OPS TOKEN" is not an environment variable name`}},
		{"serve-listen-empty", Problems{"listen: required (HOST:PORT)"}},
		{"serve-listen-no-port", Problems{`listen: "localhost" is not HOST:PORT`}},
		{"serve-listen-port-name", Problems{`listen: port "http" of "localhost:http" is not a number from 0 to 65535`}},
		{"serve-unknown-field", Problems{"line 7: listn: unknown field (did you mean listen?)"}},
		{"serve-duration-number", Problems{"line 7: queue.max_wait: expected a duration with its unit like 60s or 1m30s, got the bare number 60"}},
		{"serve-duration-garbage", Problems{`line 7: queue.max_wait: expected a duration like 60s or 1m30s, got "soon"`}},
		{"serve-yaml-types-all-at-once", Problems{
			"line 4: upstreams[main].regoin: unknown field (did you mean region?)",
			`line 6: upstreams[main].buckets[tpm].limit: expected a whole number, got "lots"`,
			`line 8: policy.fair_share: expected true or false, got "maybe"`,
			"line 9: policy.floor: expected a whole number, got a list",
			"line 10: queue: expected a mapping of fields (key: value), got \"60s\"",
			`listen: port "99999" of "127.0.0.1:99999" is not a number from 0 to 65535`,
			"upstreams[main].region: required",
		}},
		{"serve-tls-half", Problems{"tls: cert_file and key_file must both be set, or neither"}},
		{"serve-accounting-profile", Problems{`accounting.profile: ` + profileErr(t, "azure")}},
		{"serve-accounting-burndown", Problems{"accounting.burndown[0]: match must be set and rate at least 1"}},
		{"serve-windows", Problems{`windows.minute: "sliding" is not refill or clock`, "windows.day_reset_hour_utc: 24 is not an hour 0-23"}},
		{"serve-many-problems", Problems{
			"listen: required (HOST:PORT)",
			"upstreams[a].auth.profile: required with mode profile",
			`upstreams[a].name: "a" is used twice`,
			"upstreams[a].region: required",
			`routes[0].upstreams: "b" is not an upstream`,
			"fairness.protected_fraction: -0.1 is not between 0 and 1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := LoadServe(filepath.Join("testdata", tt.file+".yaml"))
			var got Problems
			if !errors.As(err, &got) {
				t.Fatalf("LoadServe error = %v, want Problems", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func profileErr(t *testing.T, name string) string {
	t.Helper()
	_, err := bedrock.LookupProfile(name)
	if err == nil {
		t.Fatalf("profile %q exists", name)
	}
	return err.Error()
}

// Files that are not valid YAML for the schema fail to parse: an error that
// is not Problems.
func TestLoadServeParseErrors(t *testing.T) {
	for _, file := range []string{"serve-not-yaml"} {
		t.Run(file, func(t *testing.T) {
			_, err := LoadServe(filepath.Join("testdata", file+".yaml"))
			var p Problems
			if err == nil || errors.As(err, &p) {
				t.Errorf("LoadServe error = %v, want a parse error", err)
			}
		})
	}
}

// Every serve-*.yaml in testdata is covered by a test above.
func TestEveryServeTestdataFileIsTested(t *testing.T) {
	files, err := filepath.Glob("testdata/serve-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("serve_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		if !strings.Contains(string(src), `"`+name+`"`) && !strings.Contains(string(src), name+".yaml") {
			t.Errorf("%s is not used by any test", f)
		}
	}
}

func TestLoadServeMissingFile(t *testing.T) {
	_, err := LoadServe(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadServe(missing) = %v, want os.ErrNotExist", err)
	}
}

// The example configurations shipped in examples/ must stay valid.
func TestExamplesAreValid(t *testing.T) {
	for _, f := range []string{"bedrock.yaml", "serve-emulator.yaml"} {
		t.Run(f, func(t *testing.T) {
			s, err := LoadServe(filepath.Join("..", "..", "examples", f))
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Upstreams) == 0 || len(s.Routes) == 0 {
				t.Errorf("example has no upstream or route: %+v", s)
			}
		})
	}
}

// TestEmulatorExampleMirrorsDefaults: examples/serve-emulator.yaml promises
// buckets equal to the emulator's default us-east-1 quotas, so that
// Claude Code's models (Opus 5.5 by default) are mirrored, not refused as
// unmatched.
func TestEmulatorExampleMirrorsDefaults(t *testing.T) {
	s, err := LoadServe(filepath.Join("..", "..", "examples", "serve-emulator.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ec := DefaultEmulator()
	region, ok := ec.Region("us-east-1")
	if !ok {
		t.Fatal("no default us-east-1 region")
	}
	if diff := cmp.Diff(region.Buckets, s.Upstreams[0].Buckets); diff != "" {
		t.Errorf("examples/serve-emulator.yaml's buckets differ from the emulator's defaults (-emulator +example):\n%s", diff)
	}
}

func TestRouteFor(t *testing.T) {
	s := Serve{Routes: []Route{
		{Models: []string{"claude-opus"}, Keys: []string{"alice"}, Upstreams: []string{"west"}},
		{Models: []string{"claude-haiku", "claude-3-5"}, Upstreams: []string{"cheap"}},
		{Keys: []string{"bob"}, Upstreams: []string{"bobs"}},
	}}
	tests := []struct {
		model, key string
		want       []string
	}{
		{"anthropic.claude-opus-4-1-20250805-v1:0", "alice", []string{"west"}},
		{"anthropic.claude-opus-4-1-20250805-v1:0", "carol", nil},
		{"anthropic.claude-haiku-4-5-20251001-v1:0", "carol", []string{"cheap"}},
		{"anthropic.claude-3-5-sonnet-20240620-v1:0", "alice", []string{"cheap"}},
		{"anthropic.claude-sonnet-4-20250514-v1:0", "bob", []string{"bobs"}},
		{"anthropic.claude-opus-4-1-20250805-v1:0", "bob", []string{"bobs"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, s.RouteFor(tt.model, tt.key)); diff != "" {
			t.Errorf("RouteFor(%s, %s) (-want +got):\n%s", tt.model, tt.key, diff)
		}
	}
}

func TestPolicyCaps(t *testing.T) {
	p := Policy{MaxTokensCap: 4096, ThinkingBudgetCap: 1024, Models: []ModelPolicy{
		{Match: "claude-opus", MaxTokensCap: 16000},
		{Match: "claude-haiku", ThinkingBudgetCap: 2048},
		{Match: "claude", MaxTokensCap: 1, ThinkingBudgetCap: 9999},
	}}
	tests := []struct {
		model                 string
		wantMax, wantThinking int
	}{
		{"anthropic.claude-opus-4-6-v1", 16000, 1024},
		{"anthropic.claude-haiku-4-5-20251001-v1:0", 4096, 2048},
		{"anthropic.claude-sonnet-4-20250514-v1:0", 1, 9999},
		{"meta.llama3-70b-instruct-v1:0", 4096, 1024},
	}
	for _, tt := range tests {
		gotMax, gotThinking := p.Caps(tt.model)
		if gotMax != tt.wantMax || gotThinking != tt.wantThinking {
			t.Errorf("Caps(%s) = %d, %d; want %d, %d", tt.model, gotMax, gotThinking, tt.wantMax, tt.wantThinking)
		}
	}
}

// Validate works on a Serve built in code (serve --demo) after ApplyDefaults.
func TestValidateBuiltInCode(t *testing.T) {
	s := DefaultServe()
	s.Upstreams = []Upstream{{Name: "emulator", Region: "us-east-1", Endpoint: "http://127.0.0.1:4567"}}
	s.ApplyDefaults()
	s.ApplyDefaults() // idempotent
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Route{{Upstreams: []string{"emulator"}}}, s.Routes); diff != "" {
		t.Errorf("default routes (-want +got):\n%s", diff)
	}
	if s.Upstreams[0].Auth.Mode != AuthDefault {
		t.Errorf("auth mode = %q, want %q", s.Upstreams[0].Auth.Mode, AuthDefault)
	}
}

func TestDurationYAML(t *testing.T) {
	var v struct {
		D Duration `yaml:"d"`
	}
	if err := decodeYAML([]byte("d: 1m30s\n"), &v); err != nil {
		t.Fatal(err)
	}
	if v.D.Duration != 90*time.Second {
		t.Errorf("decoded %v, want 1m30s", v.D.Duration)
	}
	out, err := v.D.MarshalYAML()
	if err != nil || out != "1m30s" {
		t.Errorf("MarshalYAML = %v, %v; want 1m30s", out, err)
	}
	for _, bad := range []string{"d: 60\n", "d: [1s]\n", "d: soon\n"} {
		if err := decodeYAML([]byte(bad), &v); err == nil {
			t.Errorf("decoding %q succeeded, want an error", bad)
		}
	}
}

func FuzzParseServe(f *testing.F) {
	files, _ := filepath.Glob("testdata/serve-*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("upstreams: [{name: a, region: r, endpoint: 'http://[::1'}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseServe(data)
		if err != nil {
			return
		}
		// Whatever parses is valid and routable.
		if verr := s.Validate(); verr != nil {
			t.Fatalf("ParseServe accepted a file that does not validate: %v", verr)
		}
		if len(s.Upstreams) == 0 || len(s.Routes) == 0 {
			t.Fatalf("accepted a file with no upstream or route")
		}
	})
}

func TestRedisValidate(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"", true},
		{"redis://127.0.0.1:6379", true},
		{"redis://user:pw@redis.internal:6379/3", true},
		{"rediss://redis.internal:6380/0", true},
		{"unix:///run/redis.sock", true},
		{"redis://:pw@127.0.0.1:6379/zero", false},
		{"redis//:pw@localhost", false},
		{"http://:pw@localhost", false},
		{"redis:///0", false},
		{"unix://", false},
		{"127.0.0.1:6379", false},
		{"https://redis.internal", false},
		{"redis://%zz", false},
	} {
		err := Redis{URL: tc.url}.Validate("--redis")
		if (err == nil) != tc.ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "--redis: ") {
			t.Errorf("Validate(%q) = %q, want it to name the field", tc.url, err)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("Validate(%q) = %q shows the password", tc.url, err)
		}
	}
}

// TestShadowEnforcement: policy.enforcement: shadow is read beside the
// max_tokens policy's mode, which it leaves alone.
func TestShadowEnforcement(t *testing.T) {
	s, err := ParseServe([]byte(`
upstreams: [{name: main, region: us-east-1}]
policy: {enforcement: shadow, mode: fixed}
`))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Policy.Shadow() || s.Policy.Learned() {
		t.Errorf("policy = %+v, want shadow with the fixed policy", s.Policy)
	}
}

// TestPolicyModeShadow: policy.mode: shadow, as operators write it, turns
// on shadow enforcement with the learned max_tokens policy beside it.
func TestPolicyModeShadow(t *testing.T) {
	s, err := ParseServe([]byte(`
upstreams: [{name: main, region: us-east-1}]
policy: {mode: shadow}
`))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Policy.Shadow() || !s.Policy.Learned() {
		t.Errorf("policy = %+v, want shadow with the learned policy", s.Policy)
	}
}
