package cli

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/store/redisstore"
	"github.com/headroomhq/headroom/internal/store/redistest"
)

// Three `headroom serve` processes on one real redis-server, in front of
// one emulator whose minute bucket holds four requests' reservations at
// once (a request reserves ~20,500 tokens and takes 100 ms): the load
// spread over all three gets no upstream 429; Redis stopped mid-load gets
// 503s (the documented setting: refuse) and nothing else; Redis restarted
// empty comes back with the day's usage neither lost nor counted twice; a
// replica killed with SIGKILL while it holds reservations has them
// released within the lease, and the others carry on.
func TestServeReplicasShareLedgerOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	acct := newTightAccount(t, "")
	cfgPath, up429 := acct.cfgPath, &acct.up429
	secrets := map[string]string{}
	for _, k := range []string{"a", "b", "c"} {
		code, out, errOut := run(t, "keys", "create", k, "--redis", srv.URL)
		if code != 0 {
			t.Fatalf("keys create: %s", errOut)
		}
		secrets[k] = secretRE.FindString(out)
	}
	var procs []*replicaProc
	for _, k := range []string{"a", "b", "c"} {
		cmd, url := startServeChild(t, "--config "+cfgPath+" --redis "+srv.URL)
		procs = append(procs, &replicaProc{cmd: cmd, url: url, secret: secrets[k]})
	}
	peek, err := redisstore.NewLedger(rdb, []quota.BucketSpec{{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 100_000},
		{Name: "tpd", Kind: quota.TokensPerDay, Limit: 250_000}}, quota.Windows{}, redisstore.LedgerOptions{Upstream: "emu", Replica: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ledger := func(field string) (tpm, tpd int64) {
		rep, err := peek.Peek(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if field == "res" {
			return rep.Buckets[0].Reserved, rep.Buckets[1].Reserved
		}
		return rep.Buckets[0].Used, rep.Buckets[1].Used
	}
	emuTPD := acct.tpd
	quiet := func() { // every hold ended and settled, in Redis too
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if m, d := ledger("res"); m == 0 && d == 0 {
				return
			}
			if time.Now().After(deadline) {
				m, d := ledger("res")
				t.Fatalf("holds left in the shared ledger: tpm %d, tpd %d", m, d)
			}
		}
	}

	// 1. The load over three replicas: every answer a 200, no upstream 429.
	got := replicaLoad(procs, 4, 1500*time.Millisecond)
	t.Logf("three replicas: %v, upstream 429s %d", got, up429.Load())
	if got[http.StatusOK] < 15 || len(got) != 1 || up429.Load() != 0 {
		t.Fatalf("three replicas sharing a ledger: answers %v, upstream 429s %d; want only 200s and no 429", got, up429.Load())
	}
	quiet()

	// 2. Redis stops mid-load: new requests are refused with 503, the
	// ones in flight finish; nothing reaches the upstream over its quota.
	var wg sync.WaitGroup
	var during map[int]int
	wg.Go(func() { during = replicaLoad(procs, 4, 1500*time.Millisecond) })
	time.Sleep(400 * time.Millisecond)
	srv.Stop()
	wg.Wait()
	t.Logf("Redis stopped mid-load: %v", during)
	for code := range during {
		if code != http.StatusOK && code != http.StatusServiceUnavailable {
			t.Errorf("Redis down: answers %v; want 200 (admitted before) and 503 only", during)
		}
	}
	if during[http.StatusServiceUnavailable] == 0 {
		t.Errorf("Redis down: no 503 in %v", during)
	}

	// 3. Redis back, empty: the replicas re-publish; the day's usage is
	// the emulator's (not lost, not counted twice) and the load runs again.
	srv.Restart(t)
	time.Sleep(2500 * time.Millisecond) // a beat, the recovery hold, the keys re-published
	if code, out, errOut := run(t, "keys", "list", "--redis", srv.URL); code != 0 || strings.Count(out, "\n") < 4 {
		t.Errorf("keys after Redis restarted empty: %d %q %s; want a, b and c written back", code, out, errOut)
	}
	_, tpd := ledger("used")
	want := emuTPD()
	t.Logf("after Redis restarted empty: shared tpd used %d, emulator's %d", tpd, want)
	if tpd < want-250 || tpd > want+250 {
		t.Errorf("shared tpd used %d after the restart, emulator's %d: usage lost or counted twice", tpd, want)
	}
	got = replicaLoad(procs, 4, time.Second)
	t.Logf("after the restart: %v, upstream 429s %d", got, up429.Load())
	if got[http.StatusOK] < 8 || len(got) != 1 || up429.Load() != 0 {
		t.Errorf("after Redis came back: answers %v, upstream 429s %d", got, up429.Load())
	}
	quiet()

	// 4. kill -9 a replica holding two long requests: their holds are
	// released within the lease (3 s) and a beat (1 s); the others carry on.
	for range 2 {
		go slowInvoke(procs[0].url, procs[0].secret)
	}
	var held int64
	for deadline := time.Now().Add(2 * time.Second); held < 2*20_000 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		held, _ = ledger("res")
	}
	if held < 2*20_000 {
		t.Fatalf("the slow requests hold %d in the shared ledger, want two reservations", held)
	}
	killed := time.Now()
	if err := procs[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	got = replicaLoad(procs[1:], 4, 1500*time.Millisecond)
	t.Logf("after kill -9 of one replica: %v, upstream 429s %d", got, up429.Load())
	if got[http.StatusOK] < 8 || len(got) != 1 || up429.Load() != 0 {
		t.Errorf("the other replicas after a kill -9: answers %v, upstream 429s %d", got, up429.Load())
	}
	quiet()
	if d := time.Since(killed); d > 5*time.Second {
		t.Errorf("the killed replica's holds were released %v after the kill, want within 5 s (lease 3 s + beat 1 s)", d)
	} else {
		t.Logf("the killed replica's holds were released within %v", d.Round(time.Millisecond))
	}
	// The day's usage is the shared ledger's: no replica saves a copy of
	// its own view (the last writer would win, and a replica restarting
	// would take it as its own and publish it again after an empty Redis).
	if saved, err := rdb.Keys(context.Background(), redisstore.DefaultPrefix+"usage:*").Result(); err != nil || len(saved) != 0 {
		t.Errorf("replicas on Redis saved a day's usage of their own: %v %v", saved, err)
	}
}

type replicaProc struct {
	cmd         *exec.Cmd
	url, secret string
}

type count429 struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *count429) WriteHeader(code int) {
	if code == http.StatusTooManyRequests {
		c.n.Add(1)
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *count429) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// replicaLoad runs clients loops per replica for d (each finishes the
// request it has started) and counts the answers by status.
func replicaLoad(procs []*replicaProc, clients int, d time.Duration) map[int]int {
	end := time.Now().Add(d)
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	for _, p := range procs {
		for range clients {
			wg.Go(func() {
				for time.Now().Before(end) {
					code := invokeStatus(p.url, p.secret, "")
					mu.Lock()
					got[code]++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	return got
}

func invokeStatus(base, secret, output string) int {
	req, _ := http.NewRequest(http.MethodPost, base+"/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke",
		strings.NewReader(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":1000,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+secret)
	if output != "" {
		req.Header.Set(emulator.HeaderOutputTokens, output)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// slowInvoke sends a request the emulator answers in 3 s.
func slowInvoke(base, secret string) { invokeStatus(base, secret, "600") }
