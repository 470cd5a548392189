package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/config"
)

func TestConfigValidate(t *testing.T) {
	bad := filepath.Join("..", "config", "testdata", "serve-many-problems.yaml")
	yamlTerms := filepath.Join("..", "config", "testdata", "serve-yaml-types-all-at-once.yaml")
	emu := filepath.Join(t.TempDir(), "emulate.yaml")
	writeFile(t, emu, "default_region: us-east-1\n")
	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantOut   string // substring of stdout
		wantLines int    // "  - " problem lines on stderr
	}{
		{"bedrock example", []string{"validate", filepath.Join("..", "..", "examples", "bedrock.yaml")}, 0, ": OK", 0},
		{"emulator example", []string{"validate", filepath.Join("..", "..", "examples", "serve-emulator.yaml")}, 0, ": OK", 0},
		{"emulator file", []string{"validate", "--emulator", emu}, 0, ": OK", 0},
		{"every problem", []string{"validate", bad}, 1, "", 6},
		{"emulator file as serve", []string{"validate", emu}, 1, "", 2},
		{"YAML terms, all at once", []string{"validate", yamlTerms}, 1, "", 7},
		{"missing file", []string{"validate", "nope.yaml"}, 1, "", 0},
		{"no file", []string{"validate"}, 2, "", 0},
		{"two files", []string{"validate", "a", "b"}, 2, "", 0},
		{"unknown subcommand", []string{"check", "a"}, 2, "", 0},
		{"help", []string{"--help"}, 0, "Usage:", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"config"}, tt.args...)...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout %q does not contain %q", out, tt.wantOut)
			}
			if got := strings.Count(errOut, "\n  - "); got != tt.wantLines {
				t.Errorf("%d problem lines, want %d:\n%s", got, tt.wantLines, errOut)
			}
			// A user writes YAML: Go's type names mean nothing to them.
			for _, goTerm := range []string{"config.", "int64", "!!str", "unmarshal", "float64"} {
				if strings.Contains(errOut, goTerm) {
					t.Errorf("stderr speaks Go (%q):\n%s", goTerm, errOut)
				}
			}
		})
	}
}

// The serve file's policy defaults are the admission package's.
func TestOutputSettingsDefaults(t *testing.T) {
	got := outputSettings(config.DefaultPolicy())
	got.Caps = nil
	if diff := cmp.Diff(admission.DefaultOutputSettings(), got); diff != "" {
		t.Errorf("config.DefaultPolicy -> admission (-want +got):\n%s", diff)
	}
	fixed := config.DefaultPolicy()
	fixed.Mode = config.PolicyFixed
	if outputSettings(fixed).Mode != admission.ModeFixed {
		t.Error("mode fixed not passed on")
	}
}
