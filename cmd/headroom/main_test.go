package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the real binary: signals and the Go build information
// only exist for a process built by `go build`.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  string
)

// headroomBinary builds ./cmd/headroom once (the README's build command,
// with -buildvcs=true so that a GOFLAGS=-buildvcs=false in the environment
// does not hide the commit).
func headroomBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH to build the binary with")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "headroom-bin-")
		if err != nil {
			buildErr = err.Error()
			return
		}
		binPath = filepath.Join(dir, "headroom")
		args := []string{"build", "-buildvcs=true", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command(goTool, append(args, ".")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = err.Error() + "\n" + string(out)
		}
	})
	if buildErr != "" {
		t.Fatalf("go build: %s", buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestVersionNamesTheCommit: `headroom version` prints the commit the
// binary was built from, as git knows it, and its date.
func TestVersionNamesTheCommit(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, ".git")); err != nil || !fi.IsDir() {
		// Go stamps VCS information only in a checkout whose .git is a
		// directory (not in a git worktree, not in an archive).
		t.Skipf("%s/.git is not a directory: go build records no commit here", root)
	}
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("git rev-parse HEAD: %v", err)
	}
	date, _ := exec.Command("git", "-C", root, "show", "-s", "--format=%cI", "HEAD").Output()
	out, err := exec.Command(headroomBinary(t), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("headroom version: %v\n%s", err, out)
	}
	got := string(out)
	if want := "commit " + strings.TrimSpace(string(head))[:12]; !strings.Contains(got, want) {
		t.Errorf("headroom version = %q; want it to contain %q", got, want)
	}
	day := strings.TrimSpace(string(date))
	if len(day) >= 10 && !strings.Contains(got, day[:10]) {
		t.Errorf("headroom version = %q; want the commit's date %s", got, day[:10])
	}
}

var dataDirRE = regexp.MustCompile(`temporary data in (\S+)\)`)

// startDemo runs `headroom serve --demo` and returns the process, its
// gateway URL and its temporary data directory once the keys are printed.
// stdout is read through r, which the caller may close.
func startDemo(t *testing.T, stdout *os.File, r *os.File, stderr io.Writer) (cmd *exec.Cmd, url, dataDir, printed string) {
	t.Helper()
	cmd = exec.Command(headroomBinary(t), "serve", "--demo", "--addr", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			printed += l + "\n"
			if !ok {
				t.Fatal("serve --demo closed its output before printing its keys")
			}
			if m := dataDirRE.FindStringSubmatch(l); m != nil {
				dataDir = m[1]
				url = regexp.MustCompile(`on (http://\S+) in front`).FindStringSubmatch(l)[1]
			}
			if strings.HasPrefix(l, "Try: curl") {
				go func() {
					for range lines {
					}
				}()
				if dataDir == "" {
					t.Fatal("serve --demo printed no data directory")
				}
				return cmd, url, dataDir, printed
			}
		case <-deadline:
			t.Fatal("serve --demo did not print its keys within 30 s")
		}
	}
}

// waitExit waits for the process and fails if a signal killed it.
func waitExit(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		t.Fatal("the process did not exit within 40 s")
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("the process was killed by %v instead of shutting down", ws.Signal())
	}
}

func assertRemoved(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the demo's temporary data %s is still there (stat: %v)", dir, err)
	}
}

// TestDemoSIGTERMRemovesItsData: SIGTERM shuts the demo down and removes
// its temporary data directory.
func TestDemoSIGTERMRemovesItsData(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var errb strings.Builder
	cmd, _, dir, _ := startDemo(t, w, r, &errb)
	w.Close()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the data directory the demo printed: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd)
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM; want 0; stderr:\n%s", code, errb.String())
	}
	assertRemoved(t, dir)
}

// TestDemoBrokenPipeRemovesItsData: `headroom serve --demo 2>&1 | head`:
// once the reader is gone, the next log line raises SIGPIPE, and the demo
// shuts down and removes its data instead of dying with it left behind.
func TestDemoBrokenPipeRemovesItsData(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := (*exec.Cmd)(nil)
	var url, dir string
	cmd, url, dir, _ = startDemo(t, w, r, w)
	w.Close()
	r.Close() // the reader (head) exits
	// A request makes the gateway write a log line to its stderr, the
	// closed pipe.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/model/x/invoke", strings.NewReader("{}"))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	waitExit(t, cmd)
	assertRemoved(t, dir)
}

// TestReadmeCurlProvesTheGatewayWorks runs the README's curl line, as
// written, against `serve --demo` with one of the keys it printed.
func TestReadmeCurlProvesTheGatewayWorks(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?m)^KEY=\\S+\n(curl [^\n]+)\n```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no KEY=... line followed by a curl line in a code block")
	}
	line := string(m[1])
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd, url, _, printed := startDemo(t, w, r, io.Discard)
	w.Close()
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); waitExit(t, cmd) }()
	key := regexp.MustCompile(`hr_[A-Za-z0-9_-]+`).FindString(printed)
	if key == "" {
		t.Fatalf("the demo printed no key:\n%s", printed)
	}
	line = strings.ReplaceAll(line, "http://127.0.0.1:8080", url)
	sh := exec.Command("sh", "-c", line)
	sh.Env = append(os.Environ(), "KEY="+key, "PATH="+filepath.Dir(curl)+":"+os.Getenv("PATH"))
	out, err := sh.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"type":"message"`) || !strings.Contains(string(out), `"usage"`) {
		t.Errorf("the README's curl line (%s): %v\n%s", line, err, out)
	}
}
