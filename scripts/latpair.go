//go:build ignore

// latpair measures the latency several HTTP/1.1 servers add to the same
// request, interleaved: each connection sends the request to every target in
// turn (the order rotating), pausing between requests, so every target is
// measured in the same milliseconds. wrk measures one target for several
// seconds and then the next; on a shared VM the direct path alone moves by
// ±0.3 ms from one 5 s window to the next, more than the difference being
// measured. Interleaving removes that drift from the comparison.
//
//	go run scripts/latpair.go -d 20s -rounds 5 -body B.json -path /p \
//	    -H 'Authorization: Bearer K' direct=127.0.0.1:1 gateway=127.0.0.1:2
//
// The first target is the reference: the output gives each target's p50
// and p99 (time to the whole answer) and what it adds to the reference's,
// per round (the duration split in equal parts) and as the median of the
// rounds. Each connection is read on its own goroutine with net/http's
// parser (http.ReadResponse), no transport goroutines in between.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

type target struct {
	name, addr string
}

type sample struct {
	round  int
	target int
	d      time.Duration
}

func main() {
	dur := flag.Duration("d", 20*time.Second, "total duration")
	rounds := flag.Int("rounds", 5, "rounds the duration is split into")
	conns := flag.Int("c", 4, "connections (one per target each)")
	pause := flag.Duration("pause", 10*time.Millisecond, "pause after each request")
	bodyFile := flag.String("body", "", "request body file")
	path := flag.String("path", "/", "request path")
	var hs headers
	flag.Var(&hs, "H", "request header 'Name: value' (repeatable)")
	flag.Parse()
	var targets []target
	for _, a := range flag.Args() {
		name, addr, ok := strings.Cut(a, "=")
		if !ok {
			fail("target %q: want name=host:port", a)
		}
		targets = append(targets, target{name, strings.TrimPrefix(addr, "http://")})
	}
	if len(targets) < 2 {
		fail("want a reference and at least one target")
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		fail("%v", err)
	}
	var req strings.Builder
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", *path, len(body))
	for _, h := range hs {
		req.WriteString(h + "\r\n")
	}
	req.WriteString("\r\n")
	wire := append([]byte(req.String()), body...)

	start := time.Now()
	end := start.Add(*dur)
	per := *dur / time.Duration(*rounds)
	var mu sync.Mutex
	var samples []sample
	var wg sync.WaitGroup
	for w := range *conns {
		wg.Go(func() {
			cs := make([]net.Conn, len(targets))
			brs := make([]*bufio.Reader, len(targets))
			for i, t := range targets {
				c, err := net.Dial("tcp", t.addr)
				if err != nil {
					fail("%s: %v", t.name, err)
				}
				defer c.Close()
				cs[i], brs[i] = c, bufio.NewReaderSize(c, 64<<10)
			}
			var mine []sample
			for k := w; ; k++ {
				for j := range targets {
					i := (k + j) % len(targets)
					t0 := time.Now()
					if !t0.Before(end) {
						mu.Lock()
						samples = append(samples, mine...)
						mu.Unlock()
						return
					}
					if _, err := cs[i].Write(wire); err != nil {
						fail("%s: %v", targets[i].name, err)
					}
					resp, err := http.ReadResponse(brs[i], nil)
					if err != nil {
						fail("%s: %v", targets[i].name, err)
					}
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					d := time.Since(t0)
					if err != nil || resp.StatusCode != http.StatusOK {
						fail("%s: status %d, %v", targets[i].name, resp.StatusCode, err)
					}
					mine = append(mine, sample{int(t0.Sub(start) / per), i, d})
					time.Sleep(*pause)
				}
			}
		})
	}
	wg.Wait()

	pct := func(ds []time.Duration, p float64) float64 {
		if len(ds) == 0 {
			return 0
		}
		slices.Sort(ds)
		return float64(ds[int(p*float64(len(ds)-1))]) / 1e6
	}
	// by[round][target]
	by := make([][][]time.Duration, *rounds)
	for r := range by {
		by[r] = make([][]time.Duration, len(targets))
	}
	all := make([][]time.Duration, len(targets))
	for _, s := range samples {
		if s.round < *rounds {
			by[s.round][s.target] = append(by[s.round][s.target], s.d)
		}
		all[s.target] = append(all[s.target], s.d)
	}
	added := make([][2][]float64, len(targets))
	for r := range *rounds {
		fmt.Printf("-- round %d\n", r+1)
		ref50, ref99 := pct(by[r][0], 0.5), pct(by[r][0], 0.99)
		for i, t := range targets {
			p50, p99 := pct(by[r][i], 0.5), pct(by[r][i], 0.99)
			line := fmt.Sprintf("%-10s n %5d  p50 %6.3f ms  p99 %6.3f ms", t.name, len(by[r][i]), p50, p99)
			if i > 0 {
				added[i][0] = append(added[i][0], p50-ref50)
				added[i][1] = append(added[i][1], p99-ref99)
				line += fmt.Sprintf("   added p50 %+.3f  p99 %+.3f", p50-ref50, p99-ref99)
			}
			fmt.Println(line)
		}
	}
	median := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		if n := len(v); n%2 == 1 {
			return v[n/2]
		} else {
			return (v[n/2-1] + v[n/2]) / 2
		}
	}
	fmt.Printf("== whole run: %s n %d p50 %.3f ms p99 %.3f ms\n", targets[0].name, len(all[0]), pct(all[0], 0.5), pct(all[0], 0.99))
	for i := 1; i < len(targets); i++ {
		fmt.Printf("== %s: whole run p50 %.3f ms p99 %.3f ms (n %d); added, median of %d rounds: p50 %+.3f ms, p99 %+.3f ms\n",
			targets[i].name, pct(all[i], 0.5), pct(all[i], 0.99), len(all[i]), *rounds, median(added[i][0]), median(added[i][1]))
	}
}

func fail(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "latpair: "+f+"\n", a...)
	os.Exit(1)
}
