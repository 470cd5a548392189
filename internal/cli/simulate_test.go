package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/headroomhq/headroom/internal/simulate"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestSimulateSeedJSON(t *testing.T) {
	code, out, errOut := runCLI(t, "simulate", "--scenario", "seed", "--json", "--strategies", "direct-defaults,headroom")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if errOut != "" {
		t.Errorf("stderr is not a terminal, so no progress bar, yet it got %q", errOut)
	}
	var r simulate.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("stdout is not the JSON result: %v", err)
	}
	if got, want := len(r.Strategies), 2; got != want {
		t.Fatalf("%d strategies, want %d", got, want)
	}
	if r.Figures.Rows[0].Reserved != 321000 {
		t.Errorf("max_tokens unset reserves %d, want 321,000", r.Figures.Rows[0].Reserved)
	}
	d, h := r.Strategies[0], r.Strategies[1]
	if h.TasksCompleted <= d.TasksCompleted || h.Client429s != 0 {
		t.Errorf("headroom %d tasks with %d 429s, defaults %d tasks: want more tasks and no 429", h.TasksCompleted, h.Client429s, d.TasksCompleted)
	}
}

func TestSimulateSeedFlagIsDeterministic(t *testing.T) {
	_, a, _ := runCLI(t, "simulate", "--scenario", "seed", "--json", "--seed", "7")
	_, b, _ := runCLI(t, "simulate", "--scenario", "seed", "--json", "--seed", "7")
	_, c, _ := runCLI(t, "simulate", "--scenario", "seed", "--json", "--seed", "8")
	if a != b {
		t.Error("the same --seed gave different output")
	}
	if a == c {
		t.Error("another --seed gave the same output")
	}
	if !strings.Contains(a, `"seed": 7`) {
		t.Error("--seed not applied")
	}
}

func TestSimulateReportAndCharts(t *testing.T) {
	dir := t.TempDir()
	report, charts := filepath.Join(dir, "report"), filepath.Join(dir, "charts")
	code, out, errOut := runCLI(t, "simulate", "--scenario", "seed", "--strategies", "direct-defaults,direct-4096,headroom",
		"--report", report, "--charts", charts)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "headroom") || !strings.Contains(out, "321,000") {
		t.Errorf("table output:\n%s", out)
	}
	for _, f := range []string{"report/index.html", "report/result.json", "report/drain.svg", "charts/reservation.png", "charts/comparison.svg"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestSimulateBadUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no scenario", []string{"simulate"}, 2},
		{"unknown scenario", []string{"simulate", "--scenario", "nope"}, 2},
		{"unknown strategy", []string{"simulate", "--scenario", "seed", "--strategies", "direct,nope"}, 2},
		{"stray argument", []string{"simulate", "--scenario", "seed", "extra"}, 2},
		{"help", []string{"simulate", "--help"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, _, _ := runCLI(t, tc.args...); got != tc.want {
				t.Errorf("exit %d, want %d", got, tc.want)
			}
		})
	}
}

func TestSimulateShow(t *testing.T) {
	code, out, _ := runCLI(t, "simulate", "--scenario", "team-5", "--show")
	if code != 0 || !strings.Contains(out, "name: team-5") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	path := filepath.Join(t.TempDir(), "mine.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(out, "team: 5", "team: 2", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, js, errOut := runCLI(t, "simulate", "--scenario", path, "--json", "--strategies", "headroom-4096")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r simulate.Result
	if err := json.Unmarshal([]byte(js), &r); err != nil || r.Developers != 2 {
		t.Fatalf("edited scenario: %d developers, %v", r.Developers, err)
	}
}
