package sqlitestore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/keys/keystest"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/store/sqlitestore"
	"github.com/headroomhq/headroom/internal/store/usagetest"
)

// childEnv makes the test binary act as a process that writes to a store and
// is then killed with SIGKILL (see TestSurvivesKill9).
const childEnv = "HEADROOM_SQLITESTORE_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(child(dir))
	}
	os.Exit(m.Run())
}

// child writes keys, says so on stdout, and waits to be killed without ever
// closing the store.
func child(dir string) int {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, n := range []string{"alice", "bob"} {
		if err := s.Create(ctx, keystest.Key(n)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if err := s.Revoke(ctx, "bob", time.Unix(1e9, 0)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := s.SaveUsage(ctx, "2026-03-14", map[string]int64{"main/tpd": 321_000, "key:alice": 160_000}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("written")
	select {}
}

func open(t *testing.T, dir string) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(context.Background(), dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestKeysConformance(t *testing.T) {
	keystest.Run(t, func(t *testing.T) keys.Store { return open(t, t.TempDir()) })
}

func TestUsageConformance(t *testing.T) {
	usagetest.Run(t, func(t *testing.T) quota.Store { return open(t, t.TempDir()) })
}

var timeEqual = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

// A process killed with SIGKILL right after writing loses nothing.
func TestSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "written\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q, %v; want written", line, err)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("child exited cleanly; want killed")
	}
	if _, err := os.Stat(filepath.Join(dir, sqlitestore.FileName+"-wal")); err != nil {
		t.Logf("no WAL file left behind (%v); the test still checks the data", err)
	}

	s := open(t, dir)
	got, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bob := keystest.Key("bob")
	bob.RevokedAt = time.Unix(1e9, 0)
	if diff := cmp.Diff([]keys.Key{keystest.Key("alice"), bob}, got, timeEqual); diff != "" {
		t.Errorf("keys after kill -9 (-want +got):\n%s", diff)
	}
	usage, err := s.LoadUsage(context.Background(), "2026-03-14")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int64{"main/tpd": 321_000, "key:alice": 160_000}, usage); diff != "" {
		t.Errorf("usage after kill -9 (-want +got):\n%s", diff)
	}
}

// The CLI and the server open the same file at once; neither sees "database
// is locked".
func TestTwoHandlesWriteConcurrently(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a, b := open(t, dir), open(t, dir)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		for j, s := range []*sqlitestore.Store{a, b} {
			wg.Go(func() { errs <- s.Create(ctx, keystest.Key(fmt.Sprintf("k%d-%d", j, i))) })
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, s := range []*sqlitestore.Store{a, b} {
		got, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 40 {
			t.Errorf("List sees %d keys, want 40", len(got))
		}
	}
	// A revocation through one handle is visible through the other at once.
	if err := a.Revoke(ctx, "k1-3", time.Unix(5, 0)); err != nil {
		t.Fatal(err)
	}
	k, err := b.Lookup(ctx, keystest.Key("k1-3").Hash)
	if err != nil || !k.Revoked() {
		t.Errorf("other handle Lookup = %v revoked=%v, want revoked", err, k.Revoked())
	}
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	s := open(t, dir)
	v, err := s.Version(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v < 1 {
		t.Errorf("schema version = %d, want at least 1", v)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, sqlitestore.FileName): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got&^want != 0 {
			t.Errorf("%s mode = %v, want at most %v", path, got, want)
		}
	}
	// Opening again does not re-run migrations (they would fail on existing tables).
	s2 := open(t, dir)
	if v2, _ := s2.Version(context.Background()); v2 != v {
		t.Errorf("version after reopen = %d, want %d", v2, v)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.SetVersionForTest(context.Background(), 999); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := sqlitestore.Open(context.Background(), dir); err == nil {
		t.Error("Open of a file from a newer headroom succeeded; want an error")
	}
}

func TestOpenBadDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{filepath.Join(file, "sub"), "/tmp/what?"} {
		if s, err := sqlitestore.Open(context.Background(), dir); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", dir)
		}
	}
	var pe *os.PathError
	_, err := sqlitestore.Open(context.Background(), filepath.Join(file, "sub"))
	if !errors.As(err, &pe) {
		t.Errorf("Open under a file: %v, want a *os.PathError", err)
	}
}

func BenchmarkLookup(b *testing.B) {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := range 1000 {
		if err := s.Create(ctx, keystest.Key(fmt.Sprintf("dev%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	h := keystest.Key("dev500").Hash
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Lookup(ctx, h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkList1000(b *testing.B) {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := range 1000 {
		if err := s.Create(ctx, keystest.Key(fmt.Sprintf("dev%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.List(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// The gateway saves every per-day bucket and every key's usage periodically.
func BenchmarkSaveUsage(b *testing.B) {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	u := map[string]int64{}
	for i := range 20 {
		u[fmt.Sprintf("key:dev%d", i)] = int64(i) * 1000
	}
	for i := range 10 {
		u[fmt.Sprintf("us-east-1/bucket-%d", i)] = int64(i) * 1_000_000
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.SaveUsage(ctx, "2026-03-14", u); err != nil {
			b.Fatal(err)
		}
	}
}
