package simulate

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

//go:embed scenarios/*.yaml
var builtinFS embed.FS

// BuiltinNames lists the built-in scenarios.
func BuiltinNames() []string {
	entries, _ := fs.ReadDir(builtinFS, "scenarios")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// Builtin returns the built-in scenario called name.
func Builtin(name string) (Scenario, error) {
	data, err := builtinFS.ReadFile(path.Join("scenarios", name+".yaml"))
	if err != nil {
		return Scenario{}, fmt.Errorf("no built-in scenario %q (built-ins: %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	return ParseScenario(data)
}

// BuiltinSource returns a built-in scenario's YAML, to copy and edit.
func BuiltinSource(name string) ([]byte, error) {
	return builtinFS.ReadFile(path.Join("scenarios", name+".yaml"))
}

// FindScenario resolves --scenario: a built-in's name, or a file's path.
func FindScenario(nameOrPath string) (Scenario, error) {
	for _, n := range BuiltinNames() {
		if n == nameOrPath {
			return Builtin(n)
		}
	}
	if _, err := os.Stat(nameOrPath); err != nil {
		return Scenario{}, fmt.Errorf("scenario %q is neither a built-in (%s) nor a readable file", nameOrPath, strings.Join(BuiltinNames(), ", "))
	}
	return LoadScenario(nameOrPath)
}
