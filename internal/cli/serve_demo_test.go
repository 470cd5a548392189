package cli

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// runDemo runs `serve --demo` with extra flags in-process until its keys are
// printed; stop ends it and returns its exit code.
func runDemo(t *testing.T, extra ...string) (out, base string, stop func() int) {
	t.Helper()
	out, base, _, stop = runDemoLog(t, extra...)
	return out, base, stop
}

// runDemoLog is runDemo that also returns serve's log (its stderr). stop
// may be called more than once (it stops serve once).
func runDemoLog(t *testing.T, extra ...string) (out, base string, log *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errb := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"serve", "--demo", "--addr", "127.0.0.1:0"}, extra...), strings.NewReader(""), pw, errb)
		pw.Close()
	}()
	var b strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
		if m := regexp.MustCompile(`on (https?://\S+) in front`).FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
		}
		if strings.HasPrefix(sc.Text(), "Try: curl") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if base == "" {
		cancel()
		t.Fatalf("serve --demo %v printed no URL:\n%s\nstderr:\n%s", extra, b.String(), errb.String())
	}
	return b.String(), base, errb, sync.OnceValue(func() int {
		cancel()
		code := <-done
		if code != 0 {
			t.Logf("stderr:\n%s", errb.String())
		}
		return code
	})
}

// TestServeDemoDataDirKeepsKeys: `serve --demo --data-dir DIR` keeps its
// data in DIR, so the keys printed by the first run still work after a
// restart, and DIR is not removed at exit.
func TestServeDemoDataDirKeepsKeys(t *testing.T) {
	dir := t.TempDir()
	out, _, stop := runDemo(t, "--data-dir", dir)
	secrets := secretRE.FindAllString(out, -1)
	if len(secrets) != 3 || !strings.Contains(out, "data kept in "+dir) {
		t.Fatalf("first run: want three new keys and data kept in %s, got:\n%s", dir, out)
	}
	if code := stop(); code != 0 {
		t.Fatalf("first run: exit %d", code)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the data directory was removed at exit: %v", err)
	}

	out, base, stop := runDemo(t, "--data-dir", dir)
	defer stop()
	if n := len(secretRE.FindAllString(out, -1)); n != 0 || strings.Count(out, "kept from an earlier run") != 3 {
		t.Errorf("second run: want the three keys kept (no new secrets), got %d new secrets:\n%s", n, out)
	}
	for _, s := range secrets {
		if got := invoke(t, base, s); got != 200 {
			t.Errorf("a key from the first run after the restart: status %d", got)
		}
	}
}

// TestBusyPortSuggestsAddr: a port already taken is refused with the flag
// that picks another.
func TestBusyPortSuggestsAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, args := range [][]string{
		{"serve", "--demo", "--addr", ln.Addr().String()},
		{"emulate", "--addr", ln.Addr().String()},
	} {
		code, _, stderr := run(t, args...)
		if code != 1 || !strings.Contains(stderr, "already in use") || !strings.Contains(stderr, "--addr HOST:PORT") {
			t.Errorf("%v: exit %d, stderr %q; want 1 and advice to use --addr", args, code, stderr)
		}
	}
}
