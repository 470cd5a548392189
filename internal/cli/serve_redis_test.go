package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/store/redistest"
)

// emulatorConfig starts an emulator and writes a serve file in front of it,
// with extra appended.
func emulatorConfig(t *testing.T, extra string) string {
	t.Helper()
	emu, err := emulator.New(config.DefaultEmulator(), slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	es := httptest.NewServer(emu)
	t.Cleanup(es.Close)
	path := filepath.Join(t.TempDir(), "serve.yaml")
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
keys_refresh: 100ms
upstreams:
  - name: emu
    region: us-east-1
    endpoint: %s
    auth: {mode: none}
    buckets:
      - {name: tpm, kind: tpm, limit: 200000, models: [claude-sonnet-4], inference: cross-region}
      - {name: tpd, kind: tpd, limit: 144000000, models: [claude-sonnet-4], inference: cross-region}
%s`, es.URL, extra)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Two replicas on one Redis: a key made with `keys create --redis` works on
// both, and revoked with `keys revoke --redis` is refused by both; neither
// replica touches a data directory.
func TestServeReplicasShareKeysOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	home := t.TempDir()
	t.Setenv("XDG_DATA_HOME", home) // the default data directory, which must stay unused
	cfgPath := emulatorConfig(t, "")
	code, out, errOut := run(t, "keys", "create", "alice", "--redis", srv.URL)
	if code != 0 {
		t.Fatalf("keys create --redis: %d %s", code, errOut)
	}
	secret := secretRE.FindString(out)

	_, a := startServeChild(t, "--config "+cfgPath+" --redis "+srv.URL)
	_, b := startServeChild(t, "--config "+cfgPath+" --redis "+srv.URL)
	for _, base := range []string{a, b} {
		if got := invoke(t, base, secret); got != 200 {
			t.Fatalf("alice's key on %s: status %d, want 200", base, got)
		}
	}
	// A key made while both run works on both at once (a miss looks it up).
	code, out, errOut = run(t, "keys", "create", "bob", "--redis", srv.URL)
	if code != 0 {
		t.Fatalf("keys create bob: %d %s", code, errOut)
	}
	bob := secretRE.FindString(out)
	for _, base := range []string{a, b} {
		if got := invoke(t, base, bob); got != 200 {
			t.Errorf("bob's new key on %s: status %d, want 200", base, got)
		}
	}
	if code, _, errOut := run(t, "keys", "revoke", "alice", "--redis", srv.URL); code != 0 {
		t.Fatalf("keys revoke --redis: %d %s", code, errOut)
	}
	for _, base := range []string{a, b} {
		got := 0
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if got = invoke(t, base, secret); got == 403 {
				break
			}
		}
		if got != 403 {
			t.Errorf("revoked key on %s: status %d, want 403", base, got)
		}
	}
	if code, out, _ := run(t, "keys", "list", "--redis", srv.URL); code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "bob") {
		t.Errorf("keys list --redis: %d %q, want alice and bob", code, out)
	}
	if _, err := os.Stat(filepath.Join(home, "headroom")); !os.IsNotExist(err) {
		t.Errorf("the default data directory exists (%v): with --redis nothing goes there", err)
	}
}

// A second server on the data directory of a running one refuses to start,
// pointing to Redis; once the first is killed with SIGKILL, a server starts
// there again (the kernel dropped the lock).
func TestServeSecondOnSameDataDirRefuses(t *testing.T) {
	cfgPath := emulatorConfig(t, "")
	data := t.TempDir()
	args := "--config " + cfgPath + " --data-dir " + data
	first, _ := startServeChild(t, args)

	code, _, errOut := run(t, "serve", "--config", cfgPath, "--data-dir", data)
	if code != 1 {
		t.Fatalf("second serve on %s: exit %d, want 1; stderr %s", data, code, errOut)
	}
	for _, want := range []string{data, fmt.Sprintf("pid %d", first.Process.Pid), "--redis"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("second serve's error does not mention %q:\n%s", want, errOut)
		}
	}
	// The keys commands still work beside the running server.
	if code, _, errOut := run(t, "keys", "create", "carol", "--data-dir", data); code != 0 {
		t.Errorf("keys create beside a running server: %d %s", code, errOut)
	}

	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	startServeChild(t, args) // fails the test if it does not start
}

// Wrong or unreachable Redis URLs fail at start with a message that names
// the setting and never shows the password.
func TestServeRedisErrors(t *testing.T) {
	srv := redistest.Start(t)
	down := srv.Addr
	srv.Kill()
	cfgPath := emulatorConfig(t, "")
	badFile := emulatorConfig(t, `redis: {url: "redis//:s3cret@localhost"}`)
	for _, tc := range []struct {
		args []string
		want []string
		code int
	}{
		{[]string{"serve", "--config", cfgPath, "--redis", "http://:s3cret@localhost:6379"}, []string{"--redis", "redis://"}, 1},
		{[]string{"serve", "--config", cfgPath, "--redis", "redis://:s3cret@" + down}, []string{"redis at " + down, "did not answer"}, 1},
		{[]string{"serve", "--config", badFile}, []string{"redis.url"}, 1},
		{[]string{"serve", "--config", cfgPath, "--redis", "redis://" + down, "--data-dir", t.TempDir()}, []string{"exclude each other"}, 1},
		{[]string{"serve", "--demo", "--redis", "redis://" + down}, []string{"--demo"}, 2},
		{[]string{"keys", "list", "--redis", "redis://:s3cret@" + down}, []string{"did not answer"}, 1},
		{[]string{"keys", "create", "x", "--redis", "localhost:6379"}, []string{"--redis", "redis://"}, 1},
	} {
		code, _, errOut := run(t, tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d; stderr %s", tc.args, code, tc.code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr does not mention %q:\n%s", tc.args, w, errOut)
			}
		}
		if strings.Contains(errOut, "s3cret") {
			t.Errorf("%v: stderr shows the password:\n%s", tc.args, errOut)
		}
	}
}

// `keys` with a configuration whose redis.url is set manages the keys in
// that Redis; --data-dir on the command line overrides the file's Redis.
func TestKeysFollowConfigRedis(t *testing.T) {
	srv := redistest.Start(t)
	cfgPath := emulatorConfig(t, "redis: {url: \""+srv.URL+"\"}\n")
	if code, _, errOut := run(t, "keys", "create", "alice", "--config", cfgPath); code != 0 {
		t.Fatalf("keys create --config: %d %s", code, errOut)
	}
	data := t.TempDir()
	if code, _, errOut := run(t, "keys", "create", "bob", "--config", cfgPath, "--data-dir", data); code != 0 {
		t.Fatalf("keys create --config --data-dir: %d %s", code, errOut)
	}
	for _, tc := range []struct {
		args      []string
		want, not string
	}{
		{[]string{"keys", "list", "--redis", srv.URL}, "alice", "bob"},
		{[]string{"keys", "list", "--data-dir", data}, "bob", "alice"},
	} {
		code, out, errOut := run(t, tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) || strings.Contains(out, tc.not) {
			t.Errorf("%v: %d %q %s; want %s and not %s", tc.args, code, out, errOut, tc.want, tc.not)
		}
	}
}

// go-redis's own messages (here: dials to a Redis that is gone) reach the
// serve log as JSON, at most one a second with a count of those dropped.
func TestRedisClientMessagesInServeLog(t *testing.T) {
	srv := redistest.Start(t)
	srv.Kill()
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	if _, _, err := openState(context.Background(), srv.URL, "", true, logger); err == nil {
		t.Fatal("openState on a stopped Redis succeeded")
	}
	if !strings.Contains(buf.String(), `"msg":"redis client"`) || !strings.Contains(buf.String(), "connection refused") {
		t.Errorf("serve log has no go-redis dial message:\n%s", buf.String())
	}

	var buf2 syncBuffer // buf stays go-redis's logger's
	now := time.Unix(1000, 0)
	rl := &redisLog{log: slog.New(slog.NewJSONHandler(&buf2, nil)), now: func() time.Time { return now }}
	for i := range 30 {
		rl.Printf(context.Background(), "dial %d failed", i)
		now = now.Add(100 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(buf2.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], `"similar_dropped":9`) {
		t.Errorf("30 messages over 3 s logged as %d lines, want 3 (the 2nd with 9 dropped):\n%s", len(lines), buf2.String())
	}
}
