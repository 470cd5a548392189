package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/gateway"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/store/redisstore"
	"github.com/headroomhq/headroom/internal/store/redistest"
)

// tightAccount is an emulator whose minute bucket holds four requests'
// reservations at once (a request reserves ~20,500 tokens and takes
// 100 ms) and whose day holds about a dozen, and a serve configuration
// (with extra appended) in front of it; it counts the emulator's 429s.
type tightAccount struct {
	emu     *emulator.Server
	up429   atomic.Int64
	cfgPath string
}

func newTightAccount(t *testing.T, extra string) *tightAccount {
	t.Helper()
	ec := config.DefaultEmulator()
	scope := bedrock.Scope{Models: []string{"claude-sonnet-4"}, Inference: bedrock.InferenceCrossRegion}
	ec.Regions = []config.EmulatorRegion{{Name: "us-east-1", Buckets: []config.Bucket{
		{Name: "tpm", Kind: config.KindTPM, Limit: 100_000, Scope: scope},
		{Name: "tpd", Kind: config.KindTPD, Limit: 250_000, Scope: scope},
	}}}
	ec.DefaultRegion = "us-east-1"
	ec.Generation.TimeToFirstToken = config.Duration{}
	ec.Generation.TokensPerSecond = 200
	ec.Generation.OutputTokens = config.Distribution{Distribution: config.DistFixed, Mean: 20, Min: 1, Max: 8000}
	emu, err := emulator.New(ec, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	a := &tightAccount{emu: emu, cfgPath: filepath.Join(t.TempDir(), "serve.yaml")}
	es := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		emu.ServeHTTP(&count429{ResponseWriter: w, n: &a.up429}, r)
	}))
	t.Cleanup(es.Close)
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
keys_refresh: 100ms
upstreams:
  - name: emu
    region: us-east-1
    endpoint: %s
    auth: {mode: none}
    buckets:
      - {name: tpm, kind: tpm, limit: 100000, models: [claude-sonnet-4], inference: cross-region}
      - {name: tpd, kind: tpd, limit: 250000, models: [claude-sonnet-4], inference: cross-region}
%s`, es.URL, extra)
	if err := os.WriteFile(a.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

// tpd is what the emulator's day bucket counts.
func (a *tightAccount) tpd() int64 {
	for _, b := range a.emu.Account().State(time.Now()).Regions[0].Buckets {
		if b.Name == "tpd" {
			return b.Used
		}
	}
	return -1
}

// sharedState is how a replica's /v1/status says its shared ledger runs.
func sharedState(t *testing.T, url string) admission.SharedState {
	t.Helper()
	resp, err := http.Get(url + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st gateway.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st.Upstreams) != 1 || st.Upstreams[0].SharedLedger == nil {
		t.Fatalf("status: %v %+v", err, st.Upstreams)
	}
	return *st.Upstreams[0].SharedLedger
}

// Three `headroom serve` replicas set to redis.when_down: local_share, on
// one real redis-server, in front of the tight account: Redis paused
// mid-load (cut off, its data kept), then stopped mid-load and restarted
// empty. Throughout, every request gets a 200 and the account at most a
// 429 or two (the bound of a part's stale start, see below): alone, each replica admits against a third of every bucket (status and
// metrics say so); once Redis answers, the shared day usage is exactly
// the emulator's, neither lost nor counted twice, and no hold is left.
func TestServeReplicasLocalShareWhenRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	acct := newTightAccount(t, "redis: {when_down: local_share}\n")
	var procs []*replicaProc
	for _, k := range []string{"a", "b", "c"} {
		secret := newKey(t, k, "--redis", srv.URL)
		cmd, url := startServeChild(t, "--config "+acct.cfgPath+" --redis "+srv.URL)
		procs = append(procs, &replicaProc{cmd: cmd, url: url, secret: secret})
	}
	peek, err := redisstore.NewLedger(srv.Client(t), []quota.BucketSpec{{Name: "tpm", Kind: quota.TokensPerMinute, Limit: 100_000},
		{Name: "tpd", Kind: quota.TokensPerDay, Limit: 250_000}}, quota.Windows{}, redisstore.LedgerOptions{Upstream: "emu", Replica: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// settled waits until every replica shares again and no hold is left,
	// then checks the shared day usage against the emulator's.
	settled := func(when string) {
		t.Helper()
		var rep redisstore.Reply
		for deadline := time.Now().Add(8 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			up := true
			for _, p := range procs {
				up = up && sharedState(t, p.url).Mode == admission.SharedUp
			}
			if rep, err = peek.Peek(context.Background()); err == nil && up && rep.Buckets[0].Reserved == 0 && rep.Buckets[1].Reserved == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: replicas not back on the shared ledger, or holds left: %+v %v", when, rep.Buckets, err)
			}
		}
		got, want := rep.Buckets[1].Used, acct.tpd()
		t.Logf("%s: shared tpd used %d, emulator's %d", when, got, want)
		if got != want {
			t.Errorf("%s: shared tpd used %d, emulator's %d: tokens lost or counted twice", when, got, want)
		}
	}
	// outage runs the load for 4 s, cuts Redis off with down after 0.5 s
	// and brings it back with up about 2.5 s later, checking meanwhile
	// that the replicas run on a third each.
	outage := func(what string, down, up func()) {
		t.Helper()
		var wg sync.WaitGroup
		var got map[int]int
		before := acct.up429.Load()
		wg.Go(func() { got = replicaLoad(procs, 4, 4*time.Second) })
		time.Sleep(500 * time.Millisecond)
		down()
		for i, p := range procs {
			var st admission.SharedState
			for deadline := time.Now().Add(2500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if st = sharedState(t, p.url); st.Mode == admission.SharedLocalShare {
					break
				}
			}
			if st.Mode != admission.SharedLocalShare || st.Share != 3 || st.Since.IsZero() {
				t.Errorf("%s: replica %d's status says %+v, want local_share, share 3", what, i, st)
			}
		}
		if m := get(t, procs[0].url+"/metrics"); !strings.Contains(m, `headroom_shared_ledger_local_share{upstream="emu"} 3`) ||
			!strings.Contains(m, `headroom_bucket_capacity_tokens{bucket="tpm",kind="tpm",upstream="emu"} 33333`) {
			t.Errorf("%s: /metrics has no headroom_shared_ledger_local_share 3 and tpm capacity 33,333", what)
		}
		time.Sleep(time.Second)
		up()
		wg.Wait()
		n429 := acct.up429.Load() - before
		t.Logf("%s: %v, upstream 429s %d", what, got, n429)
		// Alone, a replica's part starts from what it last heard of the
		// others (README: at most their last second's reserves), so a
		// loaded machine may see one 429 the gateway retries; each replica
		// with the whole bucket instead draws 24-25.
		if got[http.StatusOK] < 10 || len(got) != 1 || n429 > 2 {
			t.Errorf("%s: answers %v, upstream 429s %d; want only 200s and at most 2 upstream 429s", what, got, n429)
		}
	}

	got := replicaLoad(procs, 4, time.Second)
	if got[http.StatusOK] < 10 || len(got) != 1 || acct.up429.Load() != 0 {
		t.Fatalf("three replicas sharing a ledger: answers %v, upstream 429s %d", got, acct.up429.Load())
	}
	settled("shared")
	outage("Redis paused", srv.Pause, srv.Resume)
	settled("after Redis paused and resumed")
	outage("Redis stopped", srv.Stop, func() { srv.Restart(t) })
	settled("after Redis stopped and restarted empty")
}
