package gateway

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/store/redistest"
)

// TestShadowReplicasOnRedis: two replicas in shadow mode share their
// ledger on Redis, each forwarding half of a load that the emulator's
// tight minute bucket throttles. Each replica's mirror counts what the
// other forwards (shadow mode's holds are made in the shared ledger too,
// whether or not they fit), so together they predict the emulator's
// throttles as one gateway does; with a ledger each, each sees half the
// load and misses most of them.
func TestShadowReplicasOnRedis(t *testing.T) {
	for _, shared := range []bool{true, false} {
		t.Run(map[bool]string{true: "redis", false: "alone"}[shared], func(t *testing.T) {
			const clients, perClient = 16, 6
			var ks []keys.Key
			for i := range clients {
				ks = append(ks, keys.Key{Name: "dev" + fmt.Sprint(i), Weight: 1})
			}
			buckets := testBuckets(100_000, 100_000_000) // about 4 reservations of 20,480 at once
			h := newHarness(t, harnessOpts{buckets: buckets, keys: ks, emu: func(c *config.Emulator) {
				c.Generation.TokensPerSecond = 4000
				c.Generation.ChunkTokens = 4
			}})
			var srv *redistest.Server
			if shared {
				srv = redistest.Start(t)
			}
			var reps []*replica
			for i := range 2 {
				reps = append(reps, addReplicaWith(t, h, srv, fmt.Sprintf("r%d", i),
					replicaOpts{shadow: true, buckets: buckets, settleDelay: -1}))
			}
			var wg sync.WaitGroup
			for i, r := range reps {
				var secrets []string
				for _, k := range ks[i*clients/2 : (i+1)*clients/2] {
					secrets = append(secrets, h.secret[k.Name])
				}
				wg.Go(func() { runLoad(t, r.url, secrets, perClient, shadowShape) })
			}
			wg.Wait()
			var sum ShadowStatus
			for _, r := range reps {
				st := replicaShadow(t, r.url)
				sum.Answered += st.Answered
				sum.Upstream429 += st.Upstream429
				sum.Predicted += st.Predicted
				sum.Missed += st.Missed
				sum.FalseAlarms += st.FalseAlarms
			}
			throttled := h.throttle.Load()
			share := float64(sum.Predicted) / float64(max(sum.Upstream429, 1))
			t.Logf("emulator 429s %d; both replicas: %d answered, %d upstream 429s, %d predicted (%.0f%%), %d missed, %d false alarms",
				throttled, sum.Answered, sum.Upstream429, sum.Predicted, 100*share, sum.Missed, sum.FalseAlarms)
			if sum.Upstream429 != throttled || throttled < clients {
				t.Fatalf("the replicas recorded %d upstream 429s, the emulator answered %d: want equal, and enough to test", sum.Upstream429, throttled)
			}
			if shared && share < 0.8 {
				t.Errorf("on Redis the replicas predicted %.0f%% of the emulator's 429s, want at least 80%% (one gateway: 85%%)", 100*share)
			}
			if shared && float64(sum.FalseAlarms) > 0.45*float64(sum.Answered) {
				t.Errorf("%d false alarms of %d answers, want at most 45%%", sum.FalseAlarms, sum.Answered)
			}
			if !shared && share >= 0.85 {
				t.Errorf("with a ledger each the replicas predicted %.0f%%: the load does not tell a whole-account view from a replica's", 100*share)
			}
			for _, r := range reps {
				waitFor(t, "every replica's mirror to give its reservations back", func() bool {
					for _, b := range r.up.Ledger().Snapshot(time.Now()) {
						if b.Reserved != 0 {
							return false
						}
					}
					return true
				})
			}
		})
	}
}

// replicaShadow reads the shadow section of a replica's /v1/status.
func replicaShadow(t *testing.T, base string) ShadowStatus {
	t.Helper()
	st := replicaStatus(t, base).Shadow
	if st == nil {
		t.Fatal("status: no shadow section")
	}
	return *st
}

// TestShadowBudgetAcrossReplicas: alice's daily budget is 30,000. She
// settles 20,007 through one shadow replica; then a request of hers that
// reserves 20,487 through the other is judged as enforce mode would judge
// it: refused for her budget (the replicas pool the keys' settlements),
// though that replica served her nothing itself.
func TestShadowBudgetAcrossReplicas(t *testing.T) {
	h := newHarness(t, harnessOpts{buckets: testBuckets(replicaTPM, replicaTPD), keys: []keys.Key{{Name: "alice", Weight: 1, DailyTokens: 30_000}},
		emu: func(c *config.Emulator) {
			c.Generation.TimeToFirstToken, c.Generation.TokensPerSecond = config.Duration{}, 0
		}})
	reps := pooledReplicas(t, h, 2, replicaOpts{shadow: true, settleDelay: -1})
	invoke := "/model/" + sonnet + "/invoke"
	if resp, body := h.post(reps[0].url, h.secret["alice"], invoke, fmt.Sprintf(smallMsg, 4096),
		map[string]string{emulator.HeaderOutputTokens: "4000"}); resp.StatusCode != 200 {
		t.Fatalf("on r0: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "r1 to count alice's use on r0", func() bool {
		for _, k := range replicaStatus(t, reps[1].url).Keys {
			if k.Name == "alice" {
				return k.UsedToday >= 20_007
			}
		}
		return false
	})
	if resp, body := h.post(reps[1].url, h.secret["alice"], invoke, fmt.Sprintf(smallMsg, 4096), nil); resp.StatusCode != 200 {
		t.Fatalf("on r1: %d %s (shadow mode forwards it)", resp.StatusCode, body)
	}
	if got := replicaShadow(t, reps[1].url).WouldRefuse["budget"]; got != 1 {
		t.Errorf("r1 would have refused %d of alice's requests for her budget, want 1 (she spent 20,007 of 30,000 on r0)", got)
	}
}
