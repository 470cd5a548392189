package cli

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/config"
)

// TestSoak runs good and bad clients together against a real serve in
// front of `emulate --scenario flaky` (5xx, throttles and cut streams),
// and samples open descriptors, goroutines and heap. They must end flat:
// within a margin of the first sample taken under load. 20 s by default;
// HEADROOM_SOAK=90s (any duration) for the longer run BENCHMARKS.md
// reports.
func TestSoak(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc/self/fd")
	}
	if testing.Short() {
		t.Skip("soak")
	}
	length := 20 * time.Second
	if v := os.Getenv("HEADROOM_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("HEADROOM_SOAK=%q: %v", v, err)
		}
		length = d
	}
	h := startHostile(t, config.ScenarioFlaky)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var good, goodOK, bad atomic.Int64
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 4 { // good clients: invoke and stream in turn
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				op := "invoke"
				if (n+i)%2 == 1 {
					op = "invoke-with-response-stream"
				}
				req, _ := http.NewRequest(http.MethodPost, h.base+"/model/"+hostileModel+"/"+op, strings.NewReader(hostileBody))
				req.Header.Set("Authorization", "Bearer "+h.key)
				good.Add(1)
				if resp, err := client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						goodOK.Add(1)
					}
				}
			}
		})
	}
	attacks := []string{
		"POST /model/" + hostileModel + "/invoke HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n{",
		"POST /model/" + hostileModel + "/invoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + h.key + "\r\nContent-Length: 20000000\r\n\r\n{",
		"POST /model/" + hostileModel + "/invoke HTTP/1.1\r\nHost: x\r\nX-Slow: ",
		"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
	}
	for i := range 4 { // bad clients: one attack connection after another, dropped after 300 ms
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", h.host)
				if err != nil {
					continue
				}
				bad.Add(1)
				_, _ = io.WriteString(c, attacks[(n+i)%len(attacks)])
				time.Sleep(300 * time.Millisecond)
				c.Close()
			}
		})
	}
	var samples []procUsage
	tick := time.NewTicker(length / 10)
	for range 10 {
		<-tick.C
		samples = append(samples, measure())
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	client.CloseIdleConnections()
	first, last := samples[1], samples[len(samples)-1] // the first sample is the ramp-up
	var rows []string
	for i, s := range samples {
		rows = append(rows, fmt.Sprintf("t=%v fds=%d goroutines=%d heap=%dMB", time.Duration(i+1)*length/10, s.fds, s.goroutines, s.heap>>20))
	}
	t.Logf("soak %v: %d good requests (%d answered 200; flaky upstream), %d attack connections\n%s",
		length, good.Load(), goodOK.Load(), bad.Load(), strings.Join(rows, "\n"))
	if last.fds > first.fds+20 || last.goroutines > first.goroutines+40 || last.heap > first.heap+32<<20 {
		t.Errorf("not flat: from %+v to %+v", first, last)
	}
	if goodOK.Load() == 0 {
		t.Error("no good request succeeded")
	}
	checkRecovered(t, h, samples[0], 2*4) // 4 good clients: up to 4 idle upstream connections
}
