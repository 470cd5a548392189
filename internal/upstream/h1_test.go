package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// h1Server is a test upstream that counts the connections it accepted.
type h1Server struct {
	*httptest.Server
	conns atomic.Int64
}

func newH1Server(t *testing.T, h http.HandlerFunc) *h1Server {
	t.Helper()
	s := &h1Server{}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// h1Client is a Client with no AWS authentication whose runtime calls go
// through an h1Transport, which it returns too.
func h1Client(t *testing.T, endpoint string, o Options) (*Client, *h1Transport) {
	t.Helper()
	isolateAWS(t)
	o.Name, o.Region, o.Endpoint, o.Auth = "u", "us-east-1", endpoint, AuthNone
	c, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	h1, ok := c.runtimeRT.(*h1Transport)
	if !ok {
		t.Fatalf("runtime transport is %T, want *h1Transport", c.runtimeRT)
	}
	t.Cleanup(h1.CloseIdleConnections) // before the server's Close, which waits for its connections
	return c, h1
}

func invoke(ctx context.Context, c *Client, body string) (*http.Response, error) {
	return c.Do(ctx, Call{Op: bedrock.OpInvoke, ModelID: "m", Body: []byte(body)})
}

// readAll reads a whole answer and closes it.
func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return string(b)
}

// TestH1ReusesConnection: answers read whole give their connection back,
// so sequential calls, with a fixed-length, a chunked or an empty answer,
// share one connection.
func TestH1ReusesConnection(t *testing.T) {
	srv := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch string(b) {
		case "chunked":
			_, _ = io.WriteString(w, "part one;")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part two")
		case "empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			_, _ = w.Write(b)
		}
	})
	c, h1 := h1Client(t, srv.URL, Options{})
	// Bodies of every size class: in the connection's buffer, in a pooled
	// one-write buffer, and larger than that.
	mid, big := strings.Repeat("m", 100<<10), strings.Repeat("b", oneWriteMax+1)
	for i, tc := range []struct{ body, want string }{
		{"hello", "hello"}, {"chunked", "part one;part two"}, {"empty", ""}, {mid, mid}, {big, big}, {mid, mid}, {"again", "again"},
	} {
		resp, err := invoke(context.Background(), c, tc.body)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if got := readAll(t, resp); got != tc.want {
			t.Fatalf("call %d: got %q, want %q", i, got, tc.want)
		}
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("server accepted %d connections for 7 sequential calls, want 1", n)
	}
	if n := h1.dialed.Load(); n != 1 {
		t.Errorf("transport dialed %d times, want 1", n)
	}
}

// TestH1ServerClosedIdle: a pooled connection the server has closed is
// replaced, and the request (body included) is sent again on a new one.
func TestH1ServerClosedIdle(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		_, _ = w.Write(b)
	})
	c, h1 := h1Client(t, srv.URL, Options{})
	resp, err := invoke(context.Background(), c, "first")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	srv.CloseClientConnections()
	resp, err = invoke(context.Background(), c, "second")
	if err != nil {
		t.Fatalf("call after the server closed the idle connection: %v", err)
	}
	if got := readAll(t, resp); got != "second" {
		t.Fatalf("got %q", got)
	}
	if n := h1.dialed.Load(); n != 2 {
		t.Errorf("dialed %d times, want 2", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(bodies, ",") != "first,second" {
		t.Errorf("server saw bodies %q", bodies)
	}
}

// TestH1AllIdleClosed: when the server has closed every pooled connection
// (an idle timeout of its own), the next call finds out on the first,
// sends again on a new connection and drops the others unused.
func TestH1AllIdleClosed(t *testing.T) {
	release := make(chan struct{})
	srv := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) == "hold" {
			<-release
		}
		_, _ = w.Write(b)
	})
	c, h1 := h1Client(t, srv.URL, Options{})
	// Three calls at once leave three connections in the pool.
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			resp, err := invoke(context.Background(), c, "hold")
			if err != nil {
				t.Error(err)
				return
			}
			readAll(t, resp)
		})
	}
	for srv.conns.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if n := len(h1.idle); n != 3 {
		t.Fatalf("%d pooled connections, want 3", n)
	}
	srv.CloseClientConnections()
	resp, err := invoke(context.Background(), c, "after")
	if err != nil {
		t.Fatalf("call after the server closed every idle connection: %v", err)
	}
	if got := readAll(t, resp); got != "after" {
		t.Fatalf("got %q", got)
	}
	if n := h1.dialed.Load(); n != 4 {
		t.Errorf("dialed %d times, want 4 (one new connection)", n)
	}
	if n := len(h1.idle); n != 1 {
		t.Errorf("%d pooled connections, want only the new one", n)
	}
}

// TestH1CancelWhileWaiting: a request whose context ends while the
// upstream works returns at once with the context's error, and the
// upstream sees the connection go.
func TestH1CancelWhileWaiting(t *testing.T) {
	gone := make(chan struct{})
	srv := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // net/http watches the connection once the body is read
		select {
		case <-r.Context().Done():
			close(gone)
		case <-time.After(10 * time.Second):
		}
	})
	c, h1 := h1Client(t, srv.URL, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	resp, err := invoke(ctx, c, "{}")
	if err == nil {
		readAll(t, resp)
		t.Fatal("cancelled call answered")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled call returned after %v", d)
	}
	waitGone(t, gone)
	if n := len(h1.idle); n != 0 {
		t.Errorf("%d connections pooled after a cancelled call", n)
	}
}

// waitGone fails t unless the upstream closes gone, having seen its
// connection close, within 5 s.
func waitGone(t *testing.T, gone chan struct{}) {
	t.Helper()
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream never saw the connection close")
	}
}

// streamHandler writes a line every 10 ms until its client goes, and
// closes gone then.
func streamHandler(gone chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for {
			if _, err := io.WriteString(w, "frame\n"); err != nil {
				break
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				close(gone)
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		close(gone)
	}
}

func streamServer(t *testing.T, gone chan struct{}) *h1Server {
	return newH1Server(t, streamHandler(gone))
}

// cutMidStream starts a call whose answer is streamHandler's, ends its
// context 50 ms in, and checks that the body's read ends at once with the
// context's error and that the upstream sees the connection close.
func cutMidStream(t *testing.T, c *Client, body string, gone chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := invoke(ctx, c, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.AfterFunc(50*time.Millisecond, cancel)
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		copied <- err
	}()
	select {
	case err = <-copied:
	case <-time.After(5 * time.Second):
		t.Fatal("the request's end did not cut its answer")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("body read ended with %v, want context.Canceled", err)
	}
	waitGone(t, gone)
}

// TestH1CloseMidStream: closing an endless answer early closes its
// connection (no draining), and the next call dials a new one.
func TestH1CloseMidStream(t *testing.T) {
	gone := make(chan struct{})
	srv := streamServer(t, gone)
	c, h1 := h1Client(t, srv.URL, Options{})
	resp, err := invoke(context.Background(), c, "{}")
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "frame\n" {
		t.Fatalf("first frame %q, %v", line, err)
	}
	done := make(chan struct{})
	go func() { _ = resp.Body.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close of an endless answer did not return (draining it?)")
	}
	if _, err := resp.Body.Read(make([]byte, 8)); err == nil {
		t.Error("read after Close succeeded")
	}
	waitGone(t, gone)
	if n := len(h1.idle); n != 0 {
		t.Errorf("%d connections pooled after closing mid-answer", n)
	}
}

// TestH1CancelMidStream: the request's end cuts the answer's body too, with
// the context's error.
func TestH1CancelMidStream(t *testing.T) {
	gone := make(chan struct{})
	srv := streamServer(t, gone)
	c, _ := h1Client(t, srv.URL, Options{})
	cutMidStream(t, c, "{}", gone)
}

// TestH1TLS: over TLS (roots from AWS_CA_BUNDLE), connections are reused
// and the request's end cuts a streaming answer, as in cleartext.
func TestH1TLS(t *testing.T) {
	gone := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) == "stream" {
			streamHandler(gone)(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	isolateAWS(t)
	t.Setenv("AWS_CA_BUNDLE", writeCABundle(t, srv))
	c, h1 := h1Client(t, srv.URL, Options{})
	if h1.tls == nil {
		t.Fatal("no TLS for an https upstream")
	}
	for _, body := range []string{"one", "two"} {
		resp, err := invoke(context.Background(), c, body)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, resp); got != body {
			t.Fatalf("got %q, want %q", got, body)
		}
		if resp.Proto != "HTTP/1.1" {
			t.Errorf("answer over %s, want HTTP/1.1", resp.Proto)
		}
	}
	if n := h1.dialed.Load(); n != 1 {
		t.Errorf("dialed %d TLS connections for 2 sequential calls, want 1", n)
	}
	cutMidStream(t, c, "stream", gone)
}

// TestH1ConnectionClose: an answer with "Connection: close" is not pooled.
func TestH1ConnectionClose(t *testing.T) {
	srv := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "{}")
	})
	c, h1 := h1Client(t, srv.URL, Options{})
	for range 2 {
		resp, err := invoke(context.Background(), c, "{}")
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if n := len(h1.idle); n != 0 {
			t.Fatalf("%d connections pooled after Connection: close", n)
		}
	}
	if n := h1.dialed.Load(); n != 2 {
		t.Errorf("dialed %d times, want 2 (one per call)", n)
	}
}

// TestH1UnaskedBytes: a connection on which the upstream sent more than
// the answer is not pooled, so no later call reads those bytes as its own
// answer.
func TestH1UnaskedBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"+
						"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged")
				}
			}()
		}
	}()
	c, h1 := h1Client(t, "http://"+ln.Addr().String(), Options{})
	for range 2 {
		resp, err := invoke(context.Background(), c, "{}")
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, resp); got != "{}" {
			t.Fatalf("answer %q, want {}", got)
		}
		if n := len(h1.idle); n != 0 {
			t.Fatalf("%d connections pooled with unasked bytes pending", n)
		}
	}
}

// TestH1HeaderTimeout: an upstream that never answers fails the call with
// a timeout after ResponseHeaderTimeout.
func TestH1HeaderTimeout(t *testing.T) {
	srv := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	c, _ := h1Client(t, srv.URL, Options{ResponseHeaderTimeout: 100 * time.Millisecond})
	start := time.Now()
	resp, err := invoke(context.Background(), c, "{}")
	if err == nil {
		readAll(t, resp)
		t.Fatal("silent upstream answered")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error %v, want a timeout", err)
	}
	if ClassifyError(err) != Retryable {
		t.Errorf("a header timeout is %v, want retryable", ClassifyError(err))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timed out after %v", d)
	}
}

// TestH1IdleAge: a pooled connection idle for longer than IdleConnTimeout
// is closed instead of used.
func TestH1IdleAge(t *testing.T) {
	srv := newH1Server(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "{}") })
	c, h1 := h1Client(t, srv.URL, Options{})
	now := time.Unix(1000, 0)
	h1.now = func() time.Time { return now }
	for range 2 {
		resp, err := invoke(context.Background(), c, "{}")
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		now = now.Add(h1.idleFor + time.Second)
	}
	if n := h1.dialed.Load(); n != 2 {
		t.Errorf("dialed %d times, want 2 (the first connection aged out)", n)
	}
}

// TestH1Concurrent: concurrent calls each get their own connection and
// their own answer; the pool keeps them for later.
func TestH1Concurrent(t *testing.T) {
	srv := newH1Server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		time.Sleep(5 * time.Millisecond)
		_, _ = w.Write(b)
	})
	c, h1 := h1Client(t, srv.URL, Options{})
	const n = 16
	var wg sync.WaitGroup
	for round := range 3 {
		for i := range n {
			wg.Go(func() {
				body := strings.Repeat("x", round*n+i+1)
				resp, err := invoke(context.Background(), c, body)
				if err != nil {
					t.Error(err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil || string(b) != body {
					t.Errorf("answer of %d bytes for a body of %d (%v)", len(b), len(body), err)
				}
			})
		}
		wg.Wait()
	}
	if d := h1.dialed.Load(); d > n {
		t.Errorf("dialed %d connections for 3 rounds of %d calls, want at most %d", d, n, n)
	}
}

// TestH1Proxy: an upstream reached through a proxy is left to the SDK's
// transport, which knows how to use one.
func TestH1Proxy(t *testing.T) {
	base, _ := url.Parse("https://bedrock-runtime.us-east-1.amazonaws.com")
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: "proxy.internal:3128"})}
	if h := newH1Transport(tr, base); h != nil {
		t.Error("an h1Transport for a proxied upstream")
	}
	tr.Proxy = nil
	h := newH1Transport(tr, base)
	if h == nil {
		t.Fatal("no h1Transport without a proxy")
	}
	if h.addr != "bedrock-runtime.us-east-1.amazonaws.com:443" || h.tls == nil || h.tls.ServerName != "bedrock-runtime.us-east-1.amazonaws.com" {
		t.Errorf("addr %q, tls %v", h.addr, h.tls)
	}
}

// FuzzH1Response: whatever bytes an upstream answers with, the transport
// returns an answer or an error, never panics or hangs, and pools the
// connection only when the answer was read whole.
func FuzzH1Response(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 429 Too Many Requests\r\nX-Amzn-ErrorType: ThrottlingException\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}"))
	f.Add([]byte("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		h := &h1Transport{addr: "upstream:80", maxIdle: 1, now: time.Now}
		h.dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			client, server := net.Pipe()
			go func() {
				defer server.Close()
				if _, err := http.ReadRequest(bufio.NewReader(server)); err != nil {
					return
				}
				_, _ = server.Write(answer)
			}()
			return client, nil
		}
		req, _ := http.NewRequest(http.MethodPost, "http://upstream/model/m/invoke", strings.NewReader("{}"))
		resp, err := h.RoundTrip(req)
		if err != nil {
			if resp != nil {
				t.Fatal("an answer and an error")
			}
			return
		}
		_, rerr := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
		if len(h.idle) > 0 && rerr != nil {
			t.Fatalf("connection pooled after a failed read: %v", rerr)
		}
		h.CloseIdleConnections()
	})
}

// TestH1BodyReady: an answer's body says it is ready exactly when its first
// Read can return without waiting for the upstream: with a fixed length,
// when a byte of the body came with the head; chunked, when the whole first
// chunk did. The upstream holds the rest
// back until the check is done, so a wrong "ready" would block the Read
// below until the test's deadline.
func TestH1BodyReady(t *testing.T) {
	const chunkedHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	const fixedHead = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
	for _, c := range []struct {
		name, first, rest string
		ready             bool
	}{
		{"fixed, head alone", fixedHead, "hello", false},
		{"fixed, with a byte", fixedHead + "h", "ello", true},
		{"fixed, whole", fixedHead + "hello", "", true},
		{"empty", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "", true},
		{"chunked, head alone", chunkedHead, "5\r\nhello\r\n0\r\n\r\n", false},
		{"chunked, part of the size line", chunkedHead + "5", "\r\nhello\r\n0\r\n\r\n", false},
		{"chunked, size line alone", chunkedHead + "5\r\n", "hello\r\n0\r\n\r\n", false},
		{"chunked, part of the first chunk", chunkedHead + "5\r\nhell", "o\r\n0\r\n\r\n", false},
		{"chunked, the first chunk", chunkedHead + "5\r\nhello", "\r\n0\r\n\r\n", true},
		{"chunked, with an extension", chunkedHead + "5;x=y\r\nhello", "\r\n0\r\n\r\n", true},
		{"chunked, whole", chunkedHead + "5\r\nhello\r\n0\r\n\r\n", "", true},
		{"chunked, empty, without its blank line", chunkedHead + "0\r\n", "\r\n", false},
		{"chunked, empty", chunkedHead + "0\r\n\r\n", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			release := make(chan struct{})
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				br := bufio.NewReader(conn)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(conn, c.first)
				<-release
				_, _ = io.WriteString(conn, c.rest)
			}()
			cl, _ := h1Client(t, "http://"+ln.Addr().String(), Options{})
			resp, err := invoke(context.Background(), cl, "{}")
			if err != nil {
				close(release)
				t.Fatal(err)
			}
			defer resp.Body.Close()
			rb, ok := resp.Body.(interface{ Ready() bool })
			if !ok {
				close(release)
				t.Fatalf("body %T has no Ready", resp.Body)
			}
			// The upstream wrote the head and what comes with it in one
			// write, so reading the head buffered all of it.
			got := rb.Ready()
			if got != c.ready {
				close(release)
				t.Fatalf("Ready() = %v, want %v", got, c.ready)
			}
			if got {
				// Ready: the first Read must not need the held-back bytes.
				done := make(chan struct{})
				go func() {
					defer close(done)
					_, _ = resp.Body.Read(make([]byte, 64))
				}()
				select {
				case <-done:
				case <-time.After(2 * time.Second):
					t.Error("said ready, but the first Read waited for the upstream")
				}
			}
			close(release)
			if b, err := io.ReadAll(resp.Body); err != nil {
				t.Fatalf("rest of the body: %q, %v", b, err)
			}
		})
	}
}
