package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/httpsrv"
)

// hostileServe is a real `headroom serve` (run by Main in this process)
// in front of an emulator, with one key, and short client timeouts so that
// every attack ends within seconds.
type hostileServe struct {
	base, host, key string
	s               *inProcessServe
}

const (
	hostileModel = "us.anthropic.claude-sonnet-4-20250514-v1:0"
	hostileBody  = `{"anthropic_version":"bedrock-2023-05-31","max_tokens":100,"messages":[{"role":"user","content":"hello"}]}`
)

func startHostile(t *testing.T, scenario string) *hostileServe {
	t.Helper()
	ec := config.DefaultEmulator()
	ec.Scenario = scenario
	emu, err := emulator.New(ec, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	es := httptest.NewServer(emu)
	t.Cleanup(es.Close)
	args, data := serveYAML(t, fmt.Sprintf(`listen: 127.0.0.1:0
upstreams:
  - name: emu
    region: us-east-1
    endpoint: %s
    auth: {mode: none}
    buckets:
      - {name: tpm, kind: tpm, limit: 10000000}
      - {name: tpd, kind: tpd, limit: 1000000000}
limits: {body_read_timeout: 1s, max_connections: 400}
`, es.URL))
	h := &hostileServe{key: newKey(t, "dev", "--data-dir", data)}
	h.s = startInProcess(t, append(args, "--log-level", "warn"))
	h.base = h.s.url(t)
	u, _ := url.Parse(h.base)
	h.host = u.Host
	return h
}

// good sends one good request and reports its status.
func (h *hostileServe) good(t *testing.T) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.base+"/model/"+hostileModel+"/invoke", strings.NewReader(hostileBody))
	req.Header.Set("Authorization", "Bearer "+h.key)
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("good request: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.CloseIdleConnections()
	return resp.StatusCode
}

// ledger is what /v1/status says is reserved, in flight and queued.
func (h *hostileServe) ledger(t *testing.T) (reserved int64, inflight, queued int) {
	t.Helper()
	resp, err := http.Get(h.base + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Upstreams []struct {
			Queued   int `json:"queued"`
			InFlight int `json:"in_flight"`
			Buckets  []struct {
				Reserved int64 `json:"reserved"`
			} `json:"buckets"`
		} `json:"upstreams"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	for _, u := range st.Upstreams {
		inflight += u.InFlight
		queued += u.Queued
		for _, b := range u.Buckets {
			reserved += b.Reserved
		}
	}
	http.DefaultClient.CloseIdleConnections()
	return reserved, inflight, queued
}

// procUsage is the process's open descriptors, goroutines and live heap.
type procUsage struct {
	fds, goroutines int
	heap            uint64
}

func measure() procUsage {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, _ := os.ReadDir("/proc/self/fd")
	return procUsage{fds: len(fds), goroutines: runtime.NumGoroutine(), heap: ms.HeapAlloc}
}

// raw opens n connections and writes each the same bytes.
func (h *hostileServe) raw(t *testing.T, n int, send string) []net.Conn {
	t.Helper()
	var cs []net.Conn
	for range n {
		c, err := net.Dial("tcp", h.host)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		if send != "" {
			if _, err := io.WriteString(c, send); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		cs = append(cs, c)
	}
	return cs
}

// closedByServer reports whether the server ended c (or answered and
// closed it) within d: the attack does not hold it.
func closedByServer(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	return err == nil // EOF: the server closed it
}

// TestHostileClients runs each attack of issue 13 against a real serve,
// then checks that the ledger is back to zero (reserved, in flight,
// queued), that descriptors, goroutines and heap are back near their
// baseline, and that a good request still succeeds.
func TestHostileClients(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc/self/fd")
	}
	h := startHostile(t, "")
	if code := h.good(t); code != http.StatusOK {
		t.Fatalf("good request before any attack: %d", code)
	}
	base := measure()
	const n = 100
	hdr := func(key string, length int) string {
		auth := ""
		if key != "" {
			auth = "Authorization: Bearer " + key + "\r\n"
		}
		return fmt.Sprintf("POST /model/%s/invoke HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			hostileModel, h.host, auth, length)
	}
	for _, tt := range []struct {
		name    string
		promise string
		attack  func(t *testing.T) []net.Conn
		// within: the server must have closed every attack connection by then
		within time.Duration
		// upstream: how many calls the attack makes to the upstream at
		// once. The gateway may keep that many connections to it idle for
		// reuse (30 s, at most 256), each two descriptors in this process,
		// whose emulator holds the other end: not a leak.
		upstream int
	}{
		{"slowloris headers, no key", "closed after the 10 s header timeout",
			func(t *testing.T) []net.Conn {
				return h.raw(t, n, fmt.Sprintf("POST /model/%s/invoke HTTP/1.1\r\nHost: %s\r\nX-Slow: ", hostileModel, h.host))
			}, 14 * time.Second, 0},
		{"slowloris body, no key", "refused (403) and closed at once",
			func(t *testing.T) []net.Conn { return h.raw(t, n, hdr("", 200_000)+`{"anthropic`) }, 5 * time.Second, 0},
		{"slowloris body, bad key", "refused (403) and closed at once",
			func(t *testing.T) []net.Conn { return h.raw(t, n, hdr("hr_bad", 200_000)+`{"anthropic`) }, 5 * time.Second, 0},
		{"slowloris body, with key", "400 and closed after the body read timeout",
			func(t *testing.T) []net.Conn { return h.raw(t, n, hdr(h.key, 200_000)+`{"anthropic`) }, 5 * time.Second, 0},
		{"declared but unsent 20 MB, with key", "holds 256 KB at most, 400 after the body read timeout",
			func(t *testing.T) []net.Conn { return h.raw(t, n, hdr(h.key, 20<<20)) }, 5 * time.Second, 0},
		{"huge declared length, with key", "refused at once (400), nothing read",
			func(t *testing.T) []net.Conn { return h.raw(t, n, hdr(h.key, 1<<40)) }, 5 * time.Second, 0},
		{"healthz with an unsent body", "answered and closed at once",
			func(t *testing.T) []net.Conn {
				return h.raw(t, n, fmt.Sprintf("GET /healthz HTTP/1.1\r\nHost: %s\r\nContent-Length: 100000\r\n\r\n", h.host))
			}, 5 * time.Second, 0},
		{"pipelined requests then a stalled one", "each answered in order; the stalled body closed",
			func(t *testing.T) []net.Conn {
				good := hdr(h.key, len(hostileBody)) + hostileBody
				cs := h.raw(t, 5, strings.Repeat(good, 20)+hdr(h.key, 100_000)+"{")
				for _, c := range cs {
					br := bufio.NewReader(c)
					_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
					for i := range 20 {
						resp, err := http.ReadResponse(br, nil)
						if err != nil {
							t.Fatalf("pipelined answer %d: %v", i, err)
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							t.Errorf("pipelined answer %d: %d", i, resp.StatusCode)
						}
					}
				}
				return cs
			}, 20 * time.Second, 5}, // 100 requests through the emulator first: slow under -race on a loaded machine
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			cs := tt.attack(t)
			for i, c := range cs {
				if left := tt.within - time.Since(start); !closedByServer(c, max(left, 100*time.Millisecond)) {
					t.Errorf("connection %d still open %v after the attack began; promise: %s", i, tt.within, tt.promise)
					break
				}
			}
			for _, c := range cs {
				c.Close()
			}
			checkRecovered(t, h, base, 2*tt.upstream)
			t.Logf("held: %s (%v)", tt.promise, time.Since(start).Round(time.Millisecond))
		})
	}
}

// checkRecovered waits up to 5 s for the ledger to be back to zero and the
// process near its baseline (pooled: descriptors the gateway's idle
// upstream connections may hold), then checks that a good request succeeds.
func checkRecovered(t *testing.T, h *hostileServe, base procUsage, pooled int) {
	t.Helper()
	var now procUsage
	var reserved int64
	var inflight, queued int
	ok := h.s.waitFor(func() bool {
		reserved, inflight, queued = h.ledger(t)
		now = measure()
		return reserved == 0 && inflight == 0 && queued == 0 &&
			now.fds <= base.fds+8+pooled && now.goroutines <= base.goroutines+10 && now.heap <= base.heap+32<<20
	})
	if !ok {
		t.Errorf("not recovered: reserved %d, in flight %d, queued %d; fds %d (baseline %d), goroutines %d (%d), heap %d KB (%d KB)",
			reserved, inflight, queued, now.fds, base.fds, now.goroutines, base.goroutines, now.heap>>10, base.heap>>10)
	}
	if code := h.good(t); code != http.StatusOK {
		t.Errorf("good request after the attack: %d", code)
	}
}

// TestHostileH2C: HTTP/2 abuse over h2c (prior knowledge) against a real
// serve. Many streams on one connection declare bodies and never send
// them, with a key and without; streams are reset by the client half-way;
// a connection sends the preface and nothing else. Each stream is answered
// or ended within its bound, and the gateway recovers as after the
// HTTP/1.1 attacks.
func TestHostileH2C(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc/self/fd")
	}
	h := startHostile(t, "")
	if code := h.good(t); code != http.StatusOK {
		t.Fatalf("good request before any attack: %d", code)
	}
	base := measure()
	tr := httpsrv.H2CTransport()
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, tt := range []struct {
		name, key string
		want      int
		cancel    bool
	}{
		{"streams with unsent bodies, no key", "", http.StatusForbidden, false},
		{"streams with unsent bodies, with key", h.key, http.StatusBadRequest, false},
		{"streams reset by the client mid-body", h.key, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			var wg sync.WaitGroup
			var wrong atomic.Int64
			for range 50 {
				wg.Go(func() {
					pr, pw := io.Pipe() // never written: the body never comes
					defer pw.Close()
					ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
					defer cancel()
					if tt.cancel {
						time.AfterFunc(200*time.Millisecond, cancel)
					}
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.base+"/model/"+hostileModel+"/invoke", pr)
					req.ContentLength = 200_000
					if tt.key != "" {
						req.Header.Set("Authorization", "Bearer "+tt.key)
					}
					resp, err := client.Do(req)
					switch {
					case err != nil && tt.cancel:
					case err != nil:
						wrong.Add(1)
					default:
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.ProtoMajor != 2 || tt.want != 0 && resp.StatusCode != tt.want {
							wrong.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if n := wrong.Load(); n > 0 {
				t.Errorf("%d of 50 streams were not answered %d over HTTP/2", n, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the streams took %v, want about the 1 s body timeout at most", d)
			}
			tr.CloseIdleConnections()
			checkRecovered(t, h, base, 0)
		})
	}
	t.Run("preface only", func(t *testing.T) {
		cs := h.raw(t, 50, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
		for i, c := range cs {
			if !closedByServer(c, 14*time.Second) {
				t.Errorf("connection %d with only the preface still open after 14 s", i)
				break
			}
		}
		for _, c := range cs {
			c.Close()
		}
		checkRecovered(t, h, base, 0)
	})
}
