package cli

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestServeConnectionLimit: limits.max_connections caps the connections
// open at once. At the cap a new connection is not served (it waits in the
// backlog) and the log says why; when one closes it is served.
func TestServeConnectionLimit(t *testing.T) {
	s := startInProcess(t, serveConfig(t, "{mode: none}", "limits: {max_connections: 3}\n"))
	u, err := url.Parse(s.url(t))
	if err != nil {
		t.Fatal(err)
	}
	var idle []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	extra, err := net.Dial("tcp", u.Host) // the kernel accepts it into the backlog
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	fmt.Fprintf(extra, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", u.Host)
	br := bufio.NewReader(extra)
	_ = extra.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := http.ReadResponse(br, nil); err == nil {
		t.Fatal("a fourth connection was served past max_connections 3")
	}
	if !s.waitFor(func() bool { return strings.Contains(s.stderr.String(), "connection limit reached") }) {
		t.Errorf("no log line about the connection limit: %s", s.stderr.String())
	}
	idle[0].Close()
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the fourth connection was not served once one closed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: %d", resp.StatusCode)
	}
}

func TestLoopbackListen(t *testing.T) {
	for listen, want := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:8080": true, "localhost:8080": true, "127.0.0.2:1": true,
		"0.0.0.0:8080": false, ":8080": false, "10.0.0.5:8080": false, "[::]:8080": false, "gateway.internal:8080": false,
	} {
		if got := loopbackListen(listen); got != want {
			t.Errorf("loopbackListen(%q) = %v, want %v", listen, got, want)
		}
	}
}
