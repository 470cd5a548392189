// fasthttpproxy is a measuring stick for scripts/bench-gateway.sh, not part
// of Headroom: a reverse proxy with no Headroom logic built on
// github.com/valyala/fasthttp (server and client) instead of net/http. It
// is its own module so that Headroom does not depend on fasthttp; it shows
// what replacing net/http would buy (BENCHMARKS.md says why the gateway
// does not).
//
//	cd scripts/fasthttpproxy && go run . UPSTREAM_HOST:PORT
package main

import (
	"fmt"
	"log"
	"net"
	"os"

	"github.com/valyala/fasthttp"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: fasthttpproxy UPSTREAM_HOST:PORT")
	}
	addr := os.Args[1]
	up := &fasthttp.HostClient{Addr: addr, MaxConns: 512}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("fasthttp proxy on http://%s -> %s\n", ln.Addr(), addr)
	log.Fatal(fasthttp.Serve(ln, func(ctx *fasthttp.RequestCtx) {
		ctx.Request.SetHost(addr)
		if err := up.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error(err.Error(), fasthttp.StatusBadGateway)
		}
	}))
}
