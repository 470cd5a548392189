package doctor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Settings layers, in the order Claude Code applies them: each later layer
// overrides the earlier ones key by key. Measured with Claude Code 2.1.197
// against a local server: the "env" of a settings file overrides the same
// variable exported in the shell, and settings.local.json overrides the
// project's settings.json, which overrides the user's.
const (
	LayerEnvironment = "environment"
	LayerUser        = "user"
	LayerProject     = "project"
	LayerLocal       = "local"
)

// Layer is one place settings were looked for.
type Layer struct {
	Name string `json:"name"`
	Path string `json:"path,omitempty"`
	// Found is false when the file does not exist.
	Found bool `json:"found"`
	// Ignored says why Claude Code would ignore the whole file (it does so
	// when the JSON is invalid or a known field has the wrong type).
	Ignored string `json:"ignored,omitempty"`
	// Keys is the number of env variables the layer sets.
	Keys int `json:"keys"`
}

// Value is an effective setting and the layer it came from.
type Value struct {
	Value string `json:"value"`
	From  string `json:"from"`
}

// Settings is the effective configuration Claude Code would run with.
type Settings struct {
	Layers []Layer
	// Env is the merged environment: the process environment overridden by
	// the "env" objects of the settings files.
	Env map[string]Value
	// Model is the top-level "model" setting, which ANTHROPIC_MODEL overrides.
	Model Value
}

// Get returns the effective value of an environment variable; an empty value
// counts as unset, as it does for Claude Code.
func (s Settings) Get(key string) (Value, bool) {
	v, ok := s.Env[key]
	if !ok || v.Value == "" {
		return Value{}, false
	}
	return v, true
}

// File is what one settings file contributes.
type File struct {
	Env   map[string]string
	Model string
	// HasModel is true when the file sets "model".
	HasModel bool
}

// ParseSettings decodes one settings file. It returns an error when Claude
// Code would ignore the whole file: invalid JSON, a top level that is not an
// object, an "env" that is not an object, or a "model" that is not a string.
// Env values that are numbers or booleans are converted to strings as
// JavaScript does; null, arrays and objects are skipped.
func ParseSettings(data []byte) (File, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return File{}, fmt.Errorf("not a JSON object: %w", err)
	}
	if top == nil {
		return File{}, errors.New("not a JSON object")
	}
	var f File
	if raw, ok := top["model"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &f.Model); err != nil {
			return File{}, errors.New(`"model" is not a string`)
		}
		f.HasModel = true
	}
	raw, ok := top["env"]
	if !ok || string(raw) == "null" {
		return f, nil
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(raw, &env); err != nil || env == nil {
		return File{}, errors.New(`"env" is not an object`)
	}
	f.Env = make(map[string]string, len(env))
	for k, v := range env {
		if s, ok := jsString(v); ok {
			f.Env[k] = s
		}
	}
	return f, nil
}

// jsString converts a JSON value to the string JavaScript's String() gives,
// for the kinds Claude Code accepts in "env".
func jsString(raw json.RawMessage) (string, bool) {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case json.Number:
		f, err := v.Float64()
		if err != nil || math.IsInf(f, 0) {
			return "", false
		}
		if f == math.Trunc(f) && math.Abs(f) < 1e21 {
			return strconv.FormatFloat(f, 'f', -1, 64), true
		}
		return strconv.FormatFloat(f, 'g', -1, 64), true
	}
	return "", false
}

// SettingsPaths are the three settings files Claude Code reads for a user
// home and a project directory. CLAUDE_CONFIG_DIR in environ moves the user
// settings, as it does for Claude Code.
func SettingsPaths(home, project string, environ map[string]string) (user, shared, local string) {
	userDir := filepath.Join(home, ".claude")
	if d := environ["CLAUDE_CONFIG_DIR"]; d != "" {
		userDir = d
	}
	projDir := filepath.Join(project, ".claude")
	return filepath.Join(userDir, "settings.json"), filepath.Join(projDir, "settings.json"), filepath.Join(projDir, "settings.local.json")
}

// ReadSettings reads Claude Code's settings for a user home and a project
// directory, over the process environment environ, and merges them the way
// Claude Code does. A file that is missing is skipped; one that Claude Code
// would ignore is reported in its Layer and skipped.
func ReadSettings(home, project string, environ map[string]string) Settings {
	return readSettings(home, project, environ, os.ReadFile)
}

// readSettings is ReadSettings with the file reader as a parameter.
func readSettings(home, project string, environ map[string]string, readFile func(string) ([]byte, error)) Settings {
	s := Settings{Env: make(map[string]Value, len(environ))}
	for k, v := range environ {
		s.Env[k] = Value{Value: v, From: LayerEnvironment}
	}
	s.Layers = append(s.Layers, Layer{Name: LayerEnvironment, Found: true, Keys: len(environ)})
	user, shared, local := SettingsPaths(home, project, environ)
	seen := map[string]bool{}
	for _, l := range []struct{ name, path string }{{LayerUser, user}, {LayerProject, shared}, {LayerLocal, local}} {
		layer := Layer{Name: l.name, Path: l.path}
		if abs, err := filepath.Abs(l.path); err == nil && seen[abs] {
			// Run from the home directory, the project file is the user
			// file: count it once.
			layer.Ignored = "same file as the user settings"
			s.Layers = append(s.Layers, layer)
			continue
		} else if err == nil {
			seen[abs] = true
		}
		data, err := readFile(l.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			s.Layers = append(s.Layers, layer)
			continue
		case err != nil:
			layer.Found = true
			layer.Ignored = err.Error()
			s.Layers = append(s.Layers, layer)
			continue
		}
		layer.Found = true
		f, err := ParseSettings(data)
		if err != nil {
			layer.Ignored = err.Error()
			s.Layers = append(s.Layers, layer)
			continue
		}
		s.apply(f, l.name)
		layer.Keys = len(f.Env)
		s.Layers = append(s.Layers, layer)
	}
	return s
}

// apply lays one file over the settings merged so far.
func (s *Settings) apply(f File, layer string) {
	for k, v := range f.Env {
		s.Env[k] = Value{Value: v, From: layer}
	}
	if f.HasModel {
		s.Model = Value{Value: f.Model, From: layer}
	}
}

// EnvironMap turns os.Environ-style "KEY=VALUE" entries into a map; later
// entries win, as they do for a process.
func EnvironMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			m[k] = v
		}
	}
	return m
}

// parseJSInt parses a number the way JavaScript's parseInt(s) does, which is
// how Claude Code reads its numeric variables: leading white space, an
// optional sign and the longest run of digits ("4096abc" is 4096, "1e5" is 1,
// "0x10" is 16). ok is false when there are no digits.
func parseJSInt(s string) (n int64, ok bool) {
	s = strings.TrimLeft(s, " \t\n\v\f\r\u00a0\ufeff")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	base := int64(10)
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		base, s = 16, s[2:]
	}
	const limit = math.MaxInt64 / 16
digits:
	for _, c := range s {
		var d int64
		switch {
		case c >= '0' && c <= '9':
			d = int64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = int64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = int64(c-'A') + 10
		default:
			break digits
		}
		ok = true
		if n < limit {
			n = n*base + d
		}
	}
	if neg {
		n = -n
	}
	return n, ok
}
