package gateway

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/keys"
)

// loadShape is what a load's requests ask: their max_tokens in turn (0:
// none in the body), and whether a client pauses between calls as Claude
// Code does, 20-60 ms, and 50-150 ms after a 429 (backing off as an SDK
// does).
type loadShape struct {
	maxTokens []int
	pause     bool
}

// burstLoad asks every max_tokens, the gateway's clamp included, with no
// pause: as much as the clients can send.
var burstLoad = loadShape{maxTokens: []int{300, 2000, 4096, 32000, 0}}

// runLoad sends clients × perClient requests of the shape to base, each
// client with its own key, with mixed output lengths and operations, and
// returns the status codes seen.
func runLoad(t *testing.T, base string, secrets []string, perClient int, shape loadShape) map[int]int {
	outputs := []int{5, 60, 200, 400}
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for c, secret := range secrets {
		wg.Go(func() {
			for i := range perClient {
				n := c*perClient + i
				body := `{"anthropic_version":"bedrock-2023-05-31","messages":[{"role":"user","content":"load ` + strconv.Itoa(n) + `"}]}`
				if mt := shape.maxTokens[n%len(shape.maxTokens)]; mt > 0 {
					body = fmt.Sprintf(smallMsg, mt)
				}
				op := "invoke"
				if n%2 == 0 {
					op = "invoke-with-response-stream"
				}
				req, _ := http.NewRequest(http.MethodPost, base+"/model/"+sonnet+"/"+op, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+secret)
				req.Header.Set(emulator.HeaderOutputTokens, strconv.Itoa(outputs[n%len(outputs)]))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				readAll(resp)
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
				if !shape.pause {
					continue
				}
				pause := 20 + rand.N(40) // between calls (Claude Code runs tools there)
				if resp.StatusCode == http.StatusTooManyRequests {
					pause = 50 + rand.N(100) // backing off
				}
				time.Sleep(time.Duration(pause) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	return codes
}

// TestZeroUpstreamThrottles: a bounded concurrent load that the emulator
// throttles when sent straight at it passes through the gateway, with the
// same quota and profile, without a single upstream 429: the gateway
// queues what would not fit instead.
func TestZeroUpstreamThrottles(t *testing.T) {
	t.Parallel()
	const clients, perClient = 16, 3
	var ks []keys.Key
	for i := range clients {
		ks = append(ks, keys.Key{Name: "dev" + strconv.Itoa(i), Weight: 1})
	}
	h := newHarness(t, harnessOpts{
		buckets: testBuckets(100_000, 100_000_000), // about 4 reservations of 20,480 at once
		keys:    ks,
		emu: func(c *config.Emulator) {
			c.Generation.TokensPerSecond = 4000
			c.Generation.ChunkTokens = 4
		},
	})
	var secrets []string
	for _, k := range ks {
		secrets = append(secrets, h.secret[k.Name])
	}

	direct := runLoad(t, h.emuURL, secrets, perClient, burstLoad)
	if direct[http.StatusTooManyRequests] == 0 || h.throttle.Load() == 0 {
		t.Fatalf("straight at the emulator nothing was throttled (%v): the load is too light to test anything", direct)
	}
	t.Logf("direct: %v", direct)

	h.emu.Reset()
	h.throttle.Store(0)
	through := runLoad(t, h.gwURL, secrets, perClient, burstLoad)
	t.Logf("through the gateway: %v", through)
	if got := h.throttle.Load(); got != 0 {
		t.Errorf("the emulator throttled %d requests from the gateway, want 0", got)
	}
	if through[http.StatusOK] != clients*perClient {
		t.Errorf("through the gateway: %v, want all %d OK", through, clients*perClient)
	}
	waitFor(t, "the refunds", func() bool { return h.reserved() == 0 })
}
