package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/store/redisstore"
	"github.com/headroomhq/headroom/internal/store/redistest"
)

// TestReplicasPoolUsage: two replicas on Redis, alice's requests served by
// one and bob's by the other. Each replica's /v1/status shows the whole
// account: both keys among the day bucket's top consumers with what they
// settled, the bucket's rate and forecast counting both, and alice's
// budget forecast counting what she used on the other replica.
func TestReplicasPoolUsage(t *testing.T) {
	h := newHarness(t, harnessOpts{buckets: testBuckets(replicaTPM, replicaTPD), emu: replicaEmulator,
		keys: []keys.Key{{Name: "alice", Weight: 1, DailyTokens: 1_000_000}, {Name: "bob", Weight: 1}}})
	reps := pooledReplicas(t, h, 2, replicaOpts{settleDelay: -1})
	// alice: 3 × (7 + 100 × 5) on r0; bob: 2 × (7 + 200 × 5) on r1.
	want := map[string]int64{"alice": 3 * 507, "bob": 2 * 1007}
	for _, c := range []struct {
		rep       *replica
		key       string
		n, output int
	}{{reps[0], "alice", 3, 100}, {reps[1], "bob", 2, 200}} {
		for range c.n {
			if resp, body := h.post(c.rep.url, h.secret[c.key], "/model/"+sonnet+"/invoke", fmt.Sprintf(smallMsg, 1000),
				map[string]string{emulator.HeaderOutputTokens: fmt.Sprint(c.output)}); resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", c.key, resp.StatusCode, body)
			}
		}
	}
	total := float64(want["alice"] + want["bob"])
	for i, r := range reps {
		var last string
		waitFor(t, fmt.Sprintf("replica %d to show both keys' use", i), func() bool {
			s := replicaStatus(t, r.url)
			tpd := s.Upstreams[0].Buckets[1]
			got := map[string]int64{}
			for _, c := range tpd.TopToday {
				got[c.Key] = c.Tokens
			}
			var alice KeyStatus
			for _, k := range s.Keys {
				if k.Name == "alice" {
					alice = k
				}
			}
			last = fmt.Sprintf("top today %v, rate %+v, forecast %v, alice used %d, her forecast %v",
				tpd.TopToday, tpd.Rates, tpd.Forecast, alice.UsedToday, alice.BudgetForecast)
			return got["alice"] == want["alice"] && got["bob"] == want["bob"] &&
				tpd.Rates.Five >= total*0.99 && tpd.Forecast != nil && tpd.Forecast.Status != "never" &&
				alice.UsedToday >= want["alice"] && alice.BudgetForecast != nil && alice.BudgetForecast.Status != "never"
		})
		t.Logf("replica %d: %s", i, last)
		if !strings.Contains(last, "alice") || !strings.Contains(last, "bob") {
			t.Errorf("replica %d: %s", i, last)
		}
	}
}

// replicaStatus reads a replica's /v1/status.
func replicaStatus(t *testing.T, base string) Status {
	t.Helper()
	resp, err := http.Get(base + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// pooledReplicas starts n replicas (r0, r1, ...) with o on one fresh
// redis-server, pooling their usage counts through it (o.pool).
func pooledReplicas(t *testing.T, h *harness, n int, o replicaOpts) []*replica {
	t.Helper()
	srv := redistest.Start(t)
	st, err := redisstore.Open(context.Background(), srv.URL, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	o.pool = st
	var reps []*replica
	for i := range n {
		reps = append(reps, addReplicaWith(t, h, srv, fmt.Sprintf("r%d", i), o))
	}
	return reps
}
