//go:build ignore

// tcprelay is the floor of scripts/bench-gateway.sh: a relay that copies
// bytes between each client connection and its own upstream connection,
// with no HTTP at all. No proxy that reads requests can cost less, so its
// throughput bounds what any gateway can reach on the same machine.
//
//	go run scripts/tcprelay.go UPSTREAM_HOST:PORT
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: tcprelay UPSTREAM_HOST:PORT")
	}
	upstream := os.Args[1]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("tcp relay on http://%s -> %s\n", ln.Addr(), upstream)
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go relay(c, upstream)
	}
}

func relay(c net.Conn, upstream string) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		log.Print(err)
		return
	}
	defer u.Close()
	go func() {
		_, _ = io.Copy(u, c)
		_ = u.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(c, u)
}
