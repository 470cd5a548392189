package simulate

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/config"
)

func TestBuiltinsParse(t *testing.T) {
	got := BuiltinNames()
	want := []string{"heavy-user", "opus-5.5-established", "opus-5.5-new-account", "seed", "team-5", "team-50"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("built-ins (-want +got):\n%s", diff)
	}
	sizes := map[string]int{"heavy-user": 6, "opus-5.5-established": 20, "opus-5.5-new-account": 20, "seed": 3, "team-5": 5, "team-50": 50}
	for _, name := range got {
		sc, err := Builtin(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if sc.Name != name {
			t.Errorf("%s: name %q", name, sc.Name)
		}
		if got, want := sc.Size(), sizes[name]; got != want {
			t.Errorf("%s: %d developers, want %d", name, got, want)
		}
		if _, err := ParseStrategies(strings.Join(sc.Strategies, ",")); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSeedScenarioIsTheStory(t *testing.T) {
	sc, err := Builtin("seed")
	if err != nil {
		t.Fatal(err)
	}
	got := struct {
		Profile string
		Buckets []config.Bucket
		Team    int
		Main    string
	}{sc.Accounting.Profile, sc.Buckets, sc.Team, sc.Workload.MainModel}
	want := struct {
		Profile string
		Buckets []config.Bucket
		Team    int
		Main    string
	}{"seed", []config.Bucket{{Name: "daily-tokens", Kind: "tpd", Limit: 500000}}, 3, "us.anthropic.claude-sonnet-4-20250514-v1:0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("seed scenario (-want +got):\n%s", diff)
	}
}

func TestDeveloperGroupOverrides(t *testing.T) {
	sc, err := Builtin("heavy-user")
	if err != nil {
		t.Fatal(err)
	}
	g := sc.Developers[0]
	// Overridden fields change; the others are the scenario's.
	if got, want := g.Effective.Parallel.Probability, 0.3; got != want {
		t.Errorf("heavy parallel probability %v, want %v", got, want)
	}
	if got, want := g.Effective.Output.Median, 800.0; got != want {
		t.Errorf("heavy output median %v, want %v", got, want)
	}
	if got, want := g.Effective.MainModel, sc.Workload.MainModel; got != want {
		t.Errorf("heavy main model %q, want the scenario's %q", got, want)
	}
	if got, want := g.Effective.TaskGapSeconds.Median, 20.0; got != want {
		t.Errorf("heavy task gap %v, want %v", got, want)
	}
	if got, want := sc.Workload.TaskGapSeconds.Median, 900.0; got != want {
		t.Errorf("team task gap %v, want %v (the override must not leak)", got, want)
	}
}

func TestParseScenarioProblems(t *testing.T) {
	const base = "name: x\nbuckets: [{name: d, kind: tpd, limit: 1000}]\nteam: 1\n"
	tests := []struct {
		name string
		yaml string
		want []string // fields named by the problems, in order
	}{
		{"ok", base, nil},
		{"no name", "buckets: [{name: d, kind: tpd, limit: 1000}]\nteam: 1\n", []string{"name:"}},
		{"no buckets", "name: x\nteam: 1\n", []string{"buckets:"}},
		{"bad bucket kind", "name: x\nbuckets: [{name: d, kind: tpx, limit: 1}]\nteam: 1\n", []string{".kind:"}},
		{"no developers", "name: x\nbuckets: [{name: d, kind: tpd, limit: 1}]\n", []string{"team:"}},
		{"bad hours and strategy", base + "hours: 0\nstrategies: [direct, headroom]\n", []string{"hours:", "strategies:"}},
		{"bad workload", base + "workload: {calls_per_task: {min: 5, max: 2}, max_tool_use_concurrency: 0, output: {median: 0, p95: 1}}\n",
			[]string{"workload.max_tool_use_concurrency:", "workload.calls_per_task:", "workload.output.median:"}},
		{"bad model", base + "workload: {main_model: 'a b'}\n", []string{"workload.main_model:"}},
		{"bad group", base + "developers: [{count: 0, weight: -1}]\n", []string{"developers[0].name:", "developers[0].count:", "developers[0].weight:"}},
		{"group typo", base + "developers: [{name: h, count: 1, workload: {outptu: {median: 1}}}]\n", []string{"developers[0].workload:"}},
		{"headroom", base + "headroom: {max_tokens_cap: 0, thinking_budget_cap: 10, max_wait_seconds: 0, protected_fraction: 2}\n",
			[]string{"headroom.max_tokens_cap:", "headroom.thinking_budget_cap:", "headroom.max_wait_seconds:", "headroom.protected_fraction:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario([]byte(tc.yaml))
			var got []string
			if err != nil {
				var p config.Problems
				if !errors.As(err, &p) {
					t.Fatalf("error %v is not config.Problems", err)
				}
				for _, prob := range p {
					got = append(got, prob)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %d naming %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("problem %d %q does not name %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestParseScenarioRefusesUnknownFields(t *testing.T) {
	_, err := ParseScenario([]byte("name: x\nteam: 1\nbukets: []\n"))
	if err == nil {
		t.Fatal("a misspelt field was accepted")
	}
}

func TestFindScenario(t *testing.T) {
	if _, err := FindScenario("seed"); err != nil {
		t.Fatal(err)
	}
	if _, err := FindScenario("no-such-scenario"); err == nil {
		t.Fatal("an unknown scenario was found")
	}
	src, err := BuiltinSource("seed")
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/mine.yaml"
	if err := writeFile(path, src); err != nil {
		t.Fatal(err)
	}
	got, err := FindScenario(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Builtin("seed")
	if diff := cmp.Diff(want.Buckets, got.Buckets); diff != "" {
		t.Errorf("scenario from file (-want +got):\n%s", diff)
	}
}

func FuzzParseScenario(f *testing.F) {
	for _, name := range BuiltinNames() {
		src, _ := BuiltinSource(name)
		f.Add(src)
	}
	f.Add([]byte("name: x\nteam: 1\nbuckets: [{name: d, kind: tpm, limit: 5}]\ndevelopers: [{name: h, count: 2, workload: {output: {median: 9}}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := ParseScenario(data)
		if err != nil {
			return
		}
		// A valid scenario can be simulated: it has developers and buckets
		// and every strategy it names exists.
		if sc.Size() < 1 || len(sc.Buckets) == 0 || sc.Hours <= 0 {
			t.Fatalf("accepted a scenario that cannot run: %+v", sc)
		}
		if _, err := ParseStrategies(strings.Join(sc.Strategies, ",")); err != nil {
			t.Fatal(err)
		}
	})
}
