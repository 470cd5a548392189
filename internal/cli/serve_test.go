package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const serveChildEnv = "HEADROOM_TEST_SERVE_ARGS"

// TestServeChild is not a test: it is `headroom serve` run as a child
// process by TestServeSurvivesKill9, with the arguments in serveChildEnv.
func TestServeChild(t *testing.T) {
	args := os.Getenv(serveChildEnv)
	if args == "" {
		t.Skip("only runs as a child process")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	os.Exit(Main(ctx, append([]string{"serve"}, strings.Fields(args)...), strings.NewReader(""), os.Stdout, os.Stderr))
}

var listeningRE = regexp.MustCompile(`listening on (http://\S+)`)

// startServeChild starts `headroom serve` in a child process and returns it
// with its URL.
func startServeChild(t *testing.T, args string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChild$")
	cmd.Env = append(os.Environ(), serveChildEnv+"="+args)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
	}()
	select {
	case u := <-urlc:
		return cmd, u
	case <-time.After(10 * time.Second):
		t.Fatalf("serve did not start; stderr:\n%s", stderr.String())
	}
	return nil, ""
}

type statusView struct {
	Day       string `json:"day"`
	Upstreams []struct {
		Buckets []struct {
			Name string `json:"name"`
			Used int64  `json:"used"`
		} `json:"buckets"`
	} `json:"upstreams"`
	Keys []struct {
		Name      string `json:"name"`
		UsedToday int64  `json:"used_today"`
	} `json:"keys"`
}

func getStatus(t *testing.T, base string) (day string, tpd, alice int64) {
	t.Helper()
	resp, err := http.Get(base + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st statusView
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	for _, b := range st.Upstreams[0].Buckets {
		if b.Name == "tpd" {
			tpd = b.Used
		}
	}
	for _, k := range st.Keys {
		if k.Name == "alice" {
			alice = k.UsedToday
		}
	}
	return st.Day, tpd, alice
}

func invoke(t *testing.T, base, secret string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke",
		strings.NewReader(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeSurvivesKill9: keys and the day's usage (ledger and per key)
// are back after the server is killed without warning and restarted.
func TestServeSurvivesKill9(t *testing.T) {
	cfgPath := emulatorConfig(t, "")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	secret := newKey(t, "alice", "--data-dir", data)

	args := "--config " + cfgPath + " --data-dir " + data
	cmd, base := startServeChild(t, args)
	for range 3 {
		if got := invoke(t, base, secret); got != 200 {
			t.Fatalf("invoke: %d", got)
		}
	}
	// Settled (the refund comes after the gateway's settle delay), then saved
	// within usageSaveEvery: wait for the store (which several processes may
	// open) to hold it rather than sleeping for the saver, whose tick and
	// SQLite write a loaded machine may delay past any fixed sleep.
	var day string
	var tpd, alice int64
	deadline := time.Now().Add(3 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if day, tpd, alice = getStatus(t, base); tpd > 0 && tpd < 3*(20480+10) && alice == tpd {
			break
		}
	}
	if tpd == 0 || alice != tpd {
		t.Fatalf("usage before the kill: tpd %d, alice %d", tpd, alice)
	}
	st := openStore(t, data)
	var saved map[string]int64
	var err error
	deadline = time.Now().Add(10 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if saved, err = st.LoadUsage(context.Background(), day); err != nil {
			t.Fatal(err)
		}
		if saved["emu/tpd"] == tpd && saved["emu/key:alice"] == alice {
			break
		}
	}
	if saved["emu/tpd"] != tpd || saved["emu/key:alice"] != alice {
		t.Fatalf("usage saved for %s: %v; want emu/tpd %d and emu/key:alice %d", day, saved, tpd, alice)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	_, base = startServeChild(t, args)
	_, gotTPD, gotAlice := getStatus(t, base)
	if gotTPD != tpd || gotAlice != alice {
		t.Errorf("after kill -9 and restart: tpd %d, alice %d; want %d, %d", gotTPD, gotAlice, tpd, alice)
	}
	if got := invoke(t, base, secret); got != 200 {
		t.Errorf("alice's key after the restart: status %d", got)
	}
}

// TestServeDemo runs `serve --demo` in-process: three keys with Claude Code
// settings, a working gateway in front of the emulator, and a clean stop.
func TestServeDemo(t *testing.T) {
	out, base, errb, stop := runDemoLog(t)
	defer stop()
	secrets := secretRE.FindAllString(out, -1)
	if len(secrets) != 3 {
		t.Fatalf("want three keys, got:\n%s", out)
	}
	for _, name := range demoKeys {
		if !strings.Contains(out, `"`+name+`"`) {
			t.Errorf("no settings for %s", name)
		}
	}
	if !strings.Contains(errb.String(), "DEMO MODE") {
		t.Errorf("the log does not say loudly that this is a demo:\n%s", errb.String())
	}
	for _, s := range secrets {
		if got := invoke(t, base, s); got != 200 {
			t.Errorf("invoke with a demo key: %d", got)
		}
	}
	dataDir := regexp.MustCompile(`temporary data in (\S+)\)`).FindStringSubmatch(out)
	if code := stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
	if dataDir == nil {
		t.Fatal("no data dir printed")
	}
	if _, err := os.Stat(dataDir[1]); !os.IsNotExist(err) {
		t.Errorf("demo data dir %s still exists (%v)", dataDir[1], err)
	}
}

func TestServeFlags(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve"}, 2, "--config FILE is required"},
		{[]string{"serve", "--demo", "--config", "x.yaml"}, 2, "exclude each other"},
		{[]string{"serve", "--demo", "--tls-cert", "c.pem"}, 2, "go together"},
		{[]string{"serve", "--config", filepath.Join(t.TempDir(), "missing.yaml")}, 1, "missing.yaml"},
		{[]string{"serve", "extra"}, 2, "unexpected argument"},
	}
	for _, tt := range tests {
		code, _, stderr := run(t, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d mentioning %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server's log writer and the
// test to use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
