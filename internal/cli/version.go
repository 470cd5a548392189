package cli

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
)

// Version is set at build time with -ldflags "-X .../cli.Version=..."; when
// it is not, versionInfo takes the module version from the build info.
var Version = "dev"

// versionLine describes the binary from the Go build information: the
// module version, the commit and its date (vcs.revision and vcs.time, which
// `go build` records inside a git checkout; Go records no build time, and
// the commit's is the one that identifies the code), whether the tree had
// uncommitted changes, and the Go version. A binary built by `go install
// module@version` has no VCS stamp, but its pseudo-version names the commit.
func versionLine(version string, bi *debug.BuildInfo, ok bool) string {
	if !ok {
		return "headroom " + version + " (no build information)"
	}
	if version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	set := map[string]string{}
	for _, s := range bi.Settings {
		set[s.Key] = s.Value
	}
	var parts []string
	if rev := set["vcs.revision"]; rev != "" {
		commit := "commit " + rev[:min(12, len(rev))]
		if t := set["vcs.time"]; t != "" {
			commit += " of " + t
		}
		if set["vcs.modified"] == "true" {
			commit += " with uncommitted changes"
		}
		parts = append(parts, commit)
	} else {
		parts = append(parts, "commit unknown: built outside a git checkout")
	}
	parts = append(parts, bi.GoVersion)
	return "headroom " + version + " (" + strings.Join(parts, ", ") + ")"
}

func runVersion(_ context.Context, e env) int {
	bi, ok := debug.ReadBuildInfo()
	fmt.Fprintln(e.stdout, versionLine(Version, bi, ok))
	return 0
}
