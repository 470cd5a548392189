package doctor

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSettings(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    File
		wantErr bool
	}{
		{"empty object", `{}`, File{}, false},
		{"strings", `{"env":{"A":"1","B":""}}`, File{Env: map[string]string{"A": "1", "B": ""}}, false},
		// Measured: Claude Code applies a number as its decimal string.
		{"numbers and booleans", `{"env":{"N":4096,"F":1.5,"E":1e3,"T":true,"X":false}}`,
			File{Env: map[string]string{"N": "4096", "F": "1.5", "E": "1000", "T": "true", "X": "false"}}, false},
		{"null, arrays and objects are skipped", `{"env":{"A":null,"B":[1],"C":{"d":1},"D":"ok"}}`,
			File{Env: map[string]string{"D": "ok"}}, false},
		{"model", `{"model":"opus","env":{}}`, File{Env: map[string]string{}, Model: "opus", HasModel: true}, false},
		{"null env and model", `{"env":null,"model":null}`, File{}, false},
		{"other keys are ignored", `{"permissions":{"allow":[]},"env":{"A":"1"}}`, File{Env: map[string]string{"A": "1"}}, false},
		// Measured: Claude Code ignores the whole file in these cases.
		{"trailing comma", `{"env":{"A":"1",}}`, File{}, true},
		{"model not a string", `{"model":3,"env":{"A":"1"}}`, File{}, true},
		{"env an array", `{"env":["A"]}`, File{}, true},
		{"top level an array", `[]`, File{}, true},
		{"top level null", `null`, File{}, true},
		{"not JSON", `env=1`, File{}, true},
		{"empty file", ``, File{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSettings([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseSettings(%s) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseSettings(%s) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseJSInt(t *testing.T) {
	// Each case mirrors JavaScript's parseInt, which Claude Code applies;
	// "1e5" sending max_tokens 1 was measured with Claude Code 2.1.197.
	tests := []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{"4096", 4096, true},
		{" 4096 ", 4096, true},
		{"\t+8192", 8192, true},
		{"4096abc", 4096, true},
		{"1e5", 1, true},
		{"4.9", 4, true},
		{"0x10", 16, true},
		{"-5", -5, true},
		{"0", 0, true},
		{"abc", 0, false},
		{"", 0, false},
		{"-", 0, false},
		{"0x", 0, false},
		{"99999999999999999999999", 999999999999999999, true}, // stops growing, never overflows
	}
	for _, tt := range tests {
		got, ok := parseJSInt(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseJSInt(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

// layered is testdata/layered: user settings, the project's settings.json
// and settings.local.json all set CLAUDE_CODE_MAX_OUTPUT_TOKENS.
func layered(t *testing.T, environ map[string]string) Settings {
	t.Helper()
	return ReadSettings(filepath.Join("testdata", "layered", "home"), filepath.Join("testdata", "layered", "project"), environ)
}

func TestReadSettingsPrecedence(t *testing.T) {
	// Measured with Claude Code 2.1.197: settings files override the shell,
	// local overrides project overrides user, ANTHROPIC_MODEL overrides "model".
	s := layered(t, map[string]string{
		"CLAUDE_CODE_MAX_OUTPUT_TOKENS": "100",
		"AWS_REGION":                    "us-west-2",
		"AWS_PROFILE":                   "dev",
	})
	got := map[string]Value{}
	for _, k := range []string{EnvMaxOutput, EnvRegion, EnvProfile, EnvToolConcurrency, EnvThinking, EnvBearer} {
		got[k] = s.Env[k]
	}
	want := map[string]Value{
		EnvMaxOutput:       {"8192", LayerLocal},
		EnvRegion:          {"eu-west-1", LayerUser},
		EnvProfile:         {"dev", LayerEnvironment},
		EnvToolConcurrency: {"4", LayerProject},
		EnvThinking:        {"500", LayerLocal},
		EnvBearer:          {"secret-key-never-printed", LayerUser},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged env (-want +got):\n%s", diff)
	}
	if want := (Value{"us.anthropic.claude-sonnet-4-20250514-v1:0", LayerProject}); s.Model != want {
		t.Errorf("Model = %+v, want %+v", s.Model, want)
	}
	var keys []int
	for _, l := range s.Layers {
		keys = append(keys, l.Keys)
	}
	if diff := cmp.Diff([]int{3, 4, 2, 2}, keys); diff != "" {
		t.Errorf("keys per layer (-want +got):\n%s", diff)
	}
}

func TestReadSettingsIgnoredAndMissing(t *testing.T) {
	home := filepath.Join("testdata", "broken", "home")
	s := ReadSettings(home, home, map[string]string{"CLAUDE_CODE_MAX_OUTPUT_TOKENS": "2048"})
	if got, want := s.Env[EnvMaxOutput], (Value{"2048", LayerEnvironment}); got != want {
		t.Errorf("with the user file ignored, %s = %+v, want %+v", EnvMaxOutput, got, want)
	}
	want := []Layer{
		{Name: LayerEnvironment, Found: true, Keys: 1},
		{Name: LayerUser, Path: filepath.Join(home, ".claude", "settings.json"), Found: true, Ignored: "not a JSON object: invalid character '}' looking for beginning of object key string"},
		{Name: LayerProject, Path: filepath.Join(home, ".claude", "settings.json"), Ignored: "same file as the user settings"},
		{Name: LayerLocal, Path: filepath.Join(home, ".claude", "settings.local.json")},
	}
	if diff := cmp.Diff(want, s.Layers); diff != "" {
		t.Errorf("layers (-want +got):\n%s", diff)
	}
}

func TestReadSettingsConfigDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "settings.json"), []byte(`{"env":{"AWS_REGION":"us-east-2"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := ReadSettings(t.TempDir(), t.TempDir(), map[string]string{"CLAUDE_CONFIG_DIR": dir})
	if got, want := s.Env[EnvRegion], (Value{"us-east-2", LayerUser}); got != want {
		t.Errorf("CLAUDE_CONFIG_DIR settings: %s = %+v, want %+v", EnvRegion, got, want)
	}
}

func TestEnvironMap(t *testing.T) {
	got := EnvironMap([]string{"A=1", "B=x=y", "NOEQUALS", "=hidden", "A=2", "E="})
	want := map[string]string{"A": "2", "B": "x=y", "E": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("EnvironMap (-want +got):\n%s", diff)
	}
}

// FuzzReadSettings feeds arbitrary bytes as the user settings file:
// reading never panics, an accepted file's env reaches the merged settings,
// a rejected one leaves the environment untouched, and the analysis of the
// result does not panic either. Files are served from memory, so that
// fuzzing is not bound by the disk.
func FuzzReadSettings(f *testing.F) {
	for _, seed := range []string{
		`{"env":{"CLAUDE_CODE_MAX_OUTPUT_TOKENS":"4096"}}`,
		`{"env":{"N":1e400,"M":-0,"S":"\u0000"},"model":"sonnet"}`,
		`{"env":{"A":1},"env":{"B":2}}`,
		`{"model":null,"env":{"":""}}`,
		`{"env":{"CLAUDE_CODE_MAX_OUTPUT_TOKENS":"1e5","MAX_THINKING_TOKENS":"-1","CLAUDE_CODE_MAX_TOOL_USE_CONCURRENCY":"0x7fffffffffffffff"}}`,
		`{"env":{"ANTHROPIC_MODEL":"arn:aws:bedrock:us-east-1:1:application-inference-profile/x","AWS_REGION":""}}`,
		`[1,2]`, `"x"`, `{`, ``, `{"env":{"A":{"B":[]}}}`,
	} {
		f.Add([]byte(seed))
	}
	const home = "/fuzz/home"
	userPath, _, _ := SettingsPaths(home, home, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		file, perr := ParseSettings(data)
		read := func(path string) ([]byte, error) {
			if path == userPath {
				return data, nil
			}
			return nil, fs.ErrNotExist
		}
		s := readSettings(home, "/fuzz/project", map[string]string{"FUZZ_SENTINEL": "1"}, read)
		if perr != nil {
			if s.Layers[1].Ignored == "" {
				t.Errorf("ParseSettings rejected the file (%v) but ReadSettings used it", perr)
			}
			if len(s.Env) != 1 {
				t.Errorf("a rejected file changed the env: %v", s.Env)
			}
			return
		}
		for k, v := range file.Env {
			if got := s.Env[k]; got.Value != v || got.From != LayerUser {
				t.Errorf("env %q = %+v, want %q from the user layer", k, got, v)
			}
		}
		r := Analyze(s, Options{}, nil)
		if err := WriteText(io.Discard, r); err != nil {
			t.Fatal(err)
		}
	})
}
