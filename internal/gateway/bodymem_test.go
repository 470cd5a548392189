package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/bedrock/bedrocktest"
	"github.com/headroomhq/headroom/internal/keys"
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

// TestBodyBuffersRecycled: request bodies are read into recycled buffers,
// and no request ever sends upstream another one's bytes. Rounds of
// concurrent Messages streams of sizes across the buffer classes (4 KB to
// the 256 KB one-buffer limit), each body marked with a member of its
// own, go through the gateway to an upstream that checks each
// body it receives is whole JSON with the same mark at both ends, and
// answers with the mark; every
// client must get its own mark back. A buffer handed to the next request
// while the previous one was still using it would garble one or the other.
func TestBodyBuffersRecycled(t *testing.T) {
	const answer = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":5}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read late, so that a large body's write waits for it with its
		// buffer in use.
		time.Sleep(20 * time.Millisecond)
		b, _ := io.ReadAll(r.Body)
		var v struct {
			Mark string `json:"x_test_mark"`
			Tail string `json:"x_test_tail"`
		}
		if err := json.Unmarshal(b, &v); err != nil || v.Mark != v.Tail {
			http.Error(w, fmt.Sprintf("garbled body: %v, marks %q and %q", err, v.Mark, v.Tail), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Test-Mark", v.Mark)
		_, _ = io.WriteString(w, answer)
	})
	h := newHarness(t, harnessOpts{buckets: testBuckets(1e15, 1e18), keys: []keys.Key{{Name: "alice", Weight: 1}},
		settleDelay: -1, upstream: up})
	sizes := []int{3000, 20000, 86 << 10, 250 << 10}
	var wg sync.WaitGroup
	for round := range 3 {
		for i := range 8 * len(sizes) { // eight at once of each class
			size := sizes[i%len(sizes)]
			mark := fmt.Sprintf("mark-%d-%d", round, i)
			body := bedrocktest.ClaudeCodeMessagesBody(size, 32000, sonnet)
			body = append([]byte(`{"x_test_mark":"`+mark+`",`), body[1:len(body)-1]...)
			body = append(body, `,"x_test_tail":"`+mark+`"}`...)
			wg.Go(func() {
				resp, b := h.post(h.gwURL, h.secret["alice"], "/anthropic/v1/messages", string(body), nil)
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s (%d bytes): status %d: %s", mark, len(body), resp.StatusCode, b)
					return
				}
				if got := resp.Header.Get("X-Test-Mark"); got != mark {
					t.Errorf("%s (%d bytes): the upstream received the body marked %q", mark, len(body), got)
				}
			})
		}
		wg.Wait()
	}
}

func TestBodyClass(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want int
	}{{1, 0}, {4096, 0}, {4097, 1}, {86000, 5}, {1 << 17, 5}, {1<<17 + 1, 6}, {fastBody, bodyClasses - 1}} {
		if got := bodyClass(tt.n); got != tt.want {
			t.Errorf("bodyClass(%d) = %d, want %d", tt.n, got, tt.want)
		}
		if classSize(bodyClass(tt.n)) < tt.n+rewriteRoom {
			t.Errorf("class %d of %d bytes is too small", bodyClass(tt.n), tt.n)
		}
	}
}
