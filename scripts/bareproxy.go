//go:build ignore

// bareproxy is the baseline of scripts/bench-gateway.sh: a reverse proxy
// with none of Headroom's work (no auth, admission, ledger, metering, logs),
// built on the same net/http server and transport settings as the gateway,
// so the benchmark can tell the cost of a second HTTP hop from the cost of
// Headroom's logic.
//
//	go run scripts/bareproxy.go UPSTREAM_URL
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: bareproxy UPSTREAM_URL")
	}
	target, err := url.Parse(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.DisableCompression = 256, 256, true
	p := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:     tr,
		FlushInterval: -1, // flush every write, as the gateway does for streams
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bare proxy on http://%s -> %s\n", ln.Addr(), target)
	log.Fatal(http.Serve(ln, p))
}
