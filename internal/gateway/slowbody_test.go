package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/bedrock/eventstream"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
)

// TestStalledBody: a client that stops sending in the middle of its body
// gets a ValidationException once the body read timeout passes, instead of
// holding the connection for ever, and nothing is reserved.
func TestStalledBody(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	h := newHarness(t, harnessOpts{bodyRead: timeout})
	u, _ := url.Parse(h.gwURL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	// 200 bytes announced, 20 sent.
	fmt.Fprintf(conn, "POST /model/%s/invoke HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n%s",
		sonnet, u.Host, h.secret["alice"], `{"anthropic_version"`)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	waited := time.Since(start)
	if resp.StatusCode != 400 || resp.Header.Get(bedrock.HeaderErrorType) != bedrock.ValidationException ||
		!strings.Contains(string(body), "did not arrive within") {
		t.Errorf("stalled body: %d %s %s, want 400 ValidationException saying the body did not arrive",
			resp.StatusCode, resp.Header.Get(bedrock.HeaderErrorType), body)
	}
	if waited < timeout || waited > timeout+5*time.Second {
		t.Errorf("answered after %v, want just after the %v timeout", waited, timeout)
	}
	if got := h.reserved(); got != 0 {
		t.Errorf("%d tokens reserved after a refused body, want 0", got)
	}
}

// TestStreamOutlivesBodyTimeout: the body read deadline is lifted once the
// body is in, so a stream that lasts far longer than it is not cut (a
// deadline left on the connection would end the request's context).
func TestStreamOutlivesBodyTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{bodyRead: 100 * time.Millisecond, emu: func(c *config.Emulator) {
		c.Generation.TokensPerSecond = 200 // 200 tokens take 1 s
		c.Generation.ChunkTokens = 4
	}})
	req, _ := http.NewRequest(http.MethodPost, h.gwURL+"/model/"+sonnet+"/invoke-with-response-stream",
		strings.NewReader(fmt.Sprintf(smallMsg, 4096)))
	req.Header.Set("Authorization", "Bearer "+h.secret["alice"])
	req.Header.Set(emulator.HeaderOutputTokens, "200")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	dec := eventstream.NewDecoder(resp.Body)
	frames := 0
	for {
		_, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("stream cut after %v: %v", time.Since(start), err)
		}
		frames++
	}
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Errorf("the stream took %v: too short to outlive the 100ms body timeout", took)
	}
	if frames < 200/4 { // one delta per 4-token chunk, plus start and stop events
		t.Errorf("%d frames, want the whole answer (more than %d)", frames, 200/4)
	}
	waitFor(t, "the reservation to end", func() bool { return h.reserved() == 0 })
}
