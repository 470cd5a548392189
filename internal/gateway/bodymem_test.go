package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// declare opens a connection to the gateway and sends a request's headers
// declaring length body bytes, and the first sent of them.
func declare(t *testing.T, h *harness, key string, length int, sent string) net.Conn {
	t.Helper()
	u, _ := url.Parse(h.gwURL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	auth := ""
	if key != "" {
		auth = "Authorization: Bearer " + key + "\r\n"
	}
	fmt.Fprintf(conn, "POST /model/%s/invoke HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		sonnet, u.Host, auth, length, sent)
	return conn
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestDeclaredLengthNotAllocated: a key holder declaring 20 MB bodies and
// sending one byte of each makes the gateway hold what arrived (a 256 KB
// first buffer), not what was declared. It used to allocate the declared
// length at once: 20 connections took 400 MB.
func TestDeclaredLengthNotAllocated(t *testing.T) {
	h := newHarness(t, harnessOpts{bodyRead: 30 * time.Second})
	before := heapInUse()
	const conns, declared = 20, 20 << 20
	for range conns {
		declare(t, h, h.secret["alice"], declared, "{")
	}
	// Wait for every handler to be reading its body.
	time.Sleep(300 * time.Millisecond)
	grew := int64(heapInUse()) - int64(before)
	if grew > 40<<20 {
		t.Errorf("heap grew %d MB for %d bodies of one byte each, want under 40 MB (%d MB declared)", grew>>20, conns, conns*declared>>20)
	}
	t.Logf("heap grew %d KB for %d connections declaring %d MB each", grew>>10, conns, declared>>20)
}

// TestBodyMemoryBound: the request bodies held at once are bounded; a
// body that would pass the bound is refused at once with a throttle the
// client may retry, and once the holders are gone a request succeeds.
func TestBodyMemoryBound(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{bodyRead: 30 * time.Second, bodyMem: 1 << 20, settleDelay: -1})
	// Each holds a 256 KB first buffer: four fill the bound.
	var held []net.Conn
	for range 4 {
		held = append(held, declare(t, h, h.secret["alice"], 5<<20, "{"))
	}
	time.Sleep(300 * time.Millisecond)
	conn := declare(t, h, h.secret["alice"], 5<<20, "{")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer past the body bound: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get(bedrock.HeaderErrorType) != bedrock.ThrottlingException ||
		resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(b), "request bodies") {
		t.Errorf("past the body bound: %d %s Retry-After %q: %s", resp.StatusCode, resp.Header.Get(bedrock.HeaderErrorType), resp.Header.Get("Retry-After"), b)
	}
	for _, c := range held {
		c.Close()
	}
	waitFor(t, "the bodies to be given back", func() bool {
		resp, _ := h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke", fmt.Sprintf(smallMsg, 100), nil)
		return resp.StatusCode == http.StatusOK
	})
	if got := h.reserved(); got != 0 {
		t.Errorf("%d tokens reserved, want 0", got)
	}
}
