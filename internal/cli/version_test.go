package cli

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionLine(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "fea62c4e2eead59f3b5800011535a496bc2d96d3"},
		{Key: "vcs.time", Value: "2026-12-06T02:41:44Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	installed := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261206024144-fea62c4e2eea"}}
	tests := []struct {
		name    string
		version string
		bi      *debug.BuildInfo
		want    []string
	}{
		{"git checkout", "dev", stamped, []string{"headroom dev", "commit fea62c4e2eea of 2026-12-06T02:41:44Z with uncommitted changes", "go1.26.8"}},
		{"ldflags version wins", "v1.2.3", stamped, []string{"headroom v1.2.3", "commit fea62c4e2eea"}},
		{"go install pseudo-version", "dev", installed, []string{"headroom v0.0.0-20261206024144-fea62c4e2eea", "commit unknown"}},
	}
	for _, tt := range tests {
		got := versionLine(tt.version, tt.bi, true)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", tt.name, got, w)
			}
		}
	}
	code, out, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "headroom ") || !strings.Contains(out, "go1.") {
		t.Errorf("headroom version: exit %d, %q", code, out)
	}
}
