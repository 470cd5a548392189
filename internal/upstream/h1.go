package upstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// h1Transport sends HTTP/1.1 requests to one upstream host over a pool of
// keep-alive connections, each request on its caller's goroutine.
//
// Why not http.Transport: per request, it hands the request to a writing
// goroutine and the answer back from a reading goroutine, and its reading
// goroutine reads ahead on every idle connection. Measured with a bare
// proxy on one core (BENCHMARKS.md), those hand-offs cost about 35 µs of a
// request's 80; calling the connection directly halves it. Only the pool
// is written here: requests are written by http.Request.Write and answers
// parsed by http.ReadResponse, the serialiser and parser http.Transport
// itself uses, and TLS, dialing, roots (AWS_CA_BUNDLE) and timeouts come
// from the SDK's transport. That transport still carries what this one
// does not: requests that go through a proxy (HTTPS_PROXY and friends),
// and control-plane calls.
//
// Upstreams are offered only HTTP/1.1 by TLS: what the AWS SDKs for
// JavaScript and Python and Claude Code use against Bedrock.
//
// With no read pending on idle connections, the pool trusts its upstream
// to speak HTTP/1.1: bytes sent unasked after an answer are caught when
// they arrive with it (the connection is then not pooled), not when they
// come later; a connection the upstream closed is found out on its next
// use (see RoundTrip).
type h1Transport struct {
	addr       string      // host:port
	tls        *tls.Config // nil for http
	dial       func(ctx context.Context, network, addr string) (net.Conn, error)
	handshake  time.Duration // TLS handshake timeout; zero means none
	header     time.Duration // wait for an answer's headers; zero means none
	idleFor    time.Duration // an idle connection older than this is closed
	maxIdle    int
	now        func() time.Time // the clock of idle ages (deadlines use the real one)
	dialed     atomic.Int64     // connections opened (the tests read it)
	mu         sync.Mutex
	idle       []*h1Conn // most recently used last
	closedPool bool
}

// maxIdleFor bounds how long a connection may sit in the pool. Servers close
// idle keep-alive connections after a while, and with no read pending on
// them (see h1Transport) the pool only learns it on the next call, which
// then pays a second write; a connection re-dialled after 30 s idle costs a
// handshake instead, once.
const maxIdleFor = 30 * time.Second

// newH1Transport returns an h1Transport for base with tr's dialer, TLS
// configuration and timeouts, or nil when requests to base go through a
// proxy (tr then carries them).
func newH1Transport(tr *http.Transport, base *url.URL) *h1Transport {
	if tr.Proxy != nil {
		if p, err := tr.Proxy(&http.Request{URL: base}); err != nil || p != nil {
			return nil
		}
	}
	t := &h1Transport{
		addr:      canonicalAddr(base),
		dial:      tr.DialContext,
		handshake: tr.TLSHandshakeTimeout,
		header:    tr.ResponseHeaderTimeout,
		idleFor:   tr.IdleConnTimeout,
		maxIdle:   tr.MaxIdleConnsPerHost,
		now:       time.Now,
	}
	if t.dial == nil {
		t.dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	if t.maxIdle <= 0 {
		t.maxIdle = http.DefaultMaxIdleConnsPerHost
	}
	if t.idleFor <= 0 || t.idleFor > maxIdleFor {
		t.idleFor = maxIdleFor
	}
	if base.Scheme == "https" {
		t.tls = &tls.Config{}
		if tr.TLSClientConfig != nil {
			t.tls = tr.TLSClientConfig.Clone()
		}
		if t.tls.ServerName == "" {
			t.tls.ServerName = base.Hostname()
		}
		t.tls.NextProtos = []string{"http/1.1"}
	}
	return t
}

// canonicalAddr is u's host:port, with the scheme's default port.
func canonicalAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// h1Conn is one connection to the upstream.
type h1Conn struct {
	t    *h1Transport
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	// read counts bytes read from conn: a reused connection that fails
	// before reading a byte was closed by the server while idle.
	read    int64
	used    bool      // served a request before
	idledAt time.Time // when it went back to the pool
}

func (pc *h1Conn) Read(p []byte) (int, error) {
	n, err := pc.conn.Read(p)
	pc.read += int64(n)
	return n, err
}

// aLongTimeAgo is a deadline that makes every pending and later I/O on a
// connection fail at once.
var aLongTimeAgo = time.Unix(1, 0)

// RoundTrip sends req and returns the answer; its body must be read to EOF
// or closed. A pooled connection the server closed while it sat idle is
// replaced once, by a new connection, as http.Transport does; req's body
// must then be replayable (GetBody), as Client.Do makes it. The pooled
// connections that sat idle longer than that one are closed too: a
// server that closes idle connections after some time has closed them.
func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	pc, err := t.get(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := pc.roundTrip(ctx, req)
	if err == nil || !pc.used || pc.read > 0 || ctx.Err() != nil {
		return resp, err
	}
	t.closeIdleSince(pc.idledAt)
	if req.GetBody != nil {
		body, gerr := req.GetBody()
		if gerr != nil {
			return nil, err
		}
		req.Body = body
	} else if req.Body != nil && req.Body != http.NoBody {
		return nil, err
	}
	if pc, err = t.connect(ctx); err != nil {
		return nil, err
	}
	return pc.roundTrip(ctx, req)
}

// closeIdleSince closes the pooled connections that went idle at or before
// since.
func (t *h1Transport) closeIdleSince(since time.Time) {
	t.mu.Lock()
	n := 0
	for n < len(t.idle) && !t.idle[n].idledAt.After(since) {
		n++
	}
	stale := slices.Clone(t.idle[:n])
	t.idle = slices.Delete(t.idle, 0, n)
	t.mu.Unlock()
	for _, pc := range stale {
		_ = pc.conn.Close()
	}
}

// get returns an idle connection or dials a new one.
func (t *h1Transport) get(ctx context.Context) (*h1Conn, error) {
	now := t.now()
	t.mu.Lock()
	for n := len(t.idle); n > 0; n = len(t.idle) {
		pc := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		if now.Sub(pc.idledAt) > t.idleFor {
			t.mu.Unlock()
			_ = pc.conn.Close()
			t.mu.Lock()
			continue
		}
		t.mu.Unlock()
		return pc, nil
	}
	t.mu.Unlock()
	return t.connect(ctx)
}

func (t *h1Transport) connect(ctx context.Context) (*h1Conn, error) {
	conn, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	if t.tls != nil {
		hctx := ctx
		if t.handshake > 0 {
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, t.handshake)
			defer cancel()
		}
		tc := tls.Client(conn, t.tls)
		if err := tc.HandshakeContext(hctx); err != nil {
			_ = conn.Close()
			return nil, err
		}
		conn = tc
	}
	t.dialed.Add(1)
	pc := &h1Conn{t: t, conn: conn}
	pc.br = bufio.NewReaderSize(pc, connBufSize)
	pc.bw = bufio.NewWriterSize(conn, connBufSize)
	return pc, nil
}

// put returns a connection whose answer was read whole to the pool, and
// closes the pool's oldest connection when it has aged out.
func (t *h1Transport) put(pc *h1Conn) {
	pc.used, pc.read, pc.idledAt = true, 0, t.now()
	var stale *h1Conn
	t.mu.Lock()
	// Bytes after the answer were sent unasked: the next call on this
	// connection would take them for its own answer.
	if t.closedPool || len(t.idle) >= t.maxIdle || pc.br.Buffered() > 0 {
		t.mu.Unlock()
		_ = pc.conn.Close()
		return
	}
	if len(t.idle) > 0 && pc.idledAt.Sub(t.idle[0].idledAt) > t.idleFor {
		stale = t.idle[0]
		t.idle = append(t.idle[:0], t.idle[1:]...)
	}
	t.idle = append(t.idle, pc)
	t.mu.Unlock()
	if stale != nil {
		_ = stale.conn.Close()
	}
}

// CloseIdleConnections closes the pooled connections; later answers
// close their connection instead of pooling it.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.closedPool = nil, true
	t.mu.Unlock()
	for _, pc := range idle {
		_ = pc.conn.Close()
	}
}

// roundTrip writes req on pc and reads the answer's headers. On error pc
// is closed.
func (pc *h1Conn) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	// The request's end (client gone, deadline) fails the connection's
	// I/O at once, whichever phase it is in.
	stop := context.AfterFunc(ctx, func() { _ = pc.conn.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = pc.conn.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	if err := pc.write(req); err != nil {
		return fail(err)
	}
	if pc.t.header > 0 {
		_ = pc.conn.SetReadDeadline(time.Now().Add(pc.t.header))
	}
	var resp *http.Response
	for {
		var err error
		if resp, err = http.ReadResponse(pc.br, req); err != nil {
			return fail(err)
		}
		// 1xx answers (100 Continue, 103 Early Hints) precede the real one.
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	if pc.t.header > 0 {
		_ = pc.conn.SetReadDeadline(time.Time{})
		// A cancellation that came before this line set a deadline the
		// line above lifted: look again.
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
	}
	b := &h1Body{pc: pc, body: resp.Body, stop: stop, ctx: ctx, keep: !resp.Close, chunked: len(resp.TransferEncoding) > 0}
	b.eof.Store(resp.Body == http.NoBody)
	resp.Body = b
	return resp, nil
}

// A request goes out in one write system call when it fits the
// connection's buffer or, up to oneWriteMax, a pooled larger one. One
// write instead of several lets the upstream read the request at one
// wake-up: measured with sequential 86 KB Claude Code requests, about
// 40 µs less added latency than writing them through the connection's
// 16 KB buffer (BENCHMARKS.md).
const (
	connBufSize = 16 << 10
	oneWriteMax = 256 << 10
)

var bigWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, oneWriteMax) }}

// write sends req: its head and body, serialised by http.Request.Write.
func (pc *h1Conn) write(req *http.Request) error {
	bw := pc.bw
	// 2 KiB leaves room for the head, which a call's signed headers keep
	// under 1 KiB.
	if n := req.ContentLength; n > connBufSize-2<<10 && n <= oneWriteMax-2<<10 {
		bw = bigWriters.Get().(*bufio.Writer)
		bw.Reset(pc.conn)
		defer func() {
			bw.Reset(nil)
			bigWriters.Put(bw)
		}()
	}
	if err := req.Write(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// h1Body is an answer's body: read to EOF, it gives its connection back to
// the pool; closed before, it closes the connection rather than read the
// rest (an event stream may have minutes left).
type h1Body struct {
	pc      *h1Conn
	body    io.ReadCloser
	stop    func() bool
	ctx     context.Context
	keep    bool // the connection may serve another request
	chunked bool // Transfer-Encoding: chunked
	eof     atomic.Bool
	done    atomic.Bool
}

// Ready reports, before the body's first Read, whether that Read returns
// without waiting for the upstream: the answer's first bytes came with its
// head and are buffered. A streaming proxy uses it to send the head together
// with those bytes, in one write, and the head alone at once otherwise.
// net/http's chunked reader reads whole chunks before it returns, so a
// chunked body is ready when its first chunk is buffered whole (the last,
// empty chunk with the blank line after it).
func (b *h1Body) Ready() bool {
	if b.eof.Load() {
		return true
	}
	n := b.pc.br.Buffered()
	if n == 0 || !b.chunked {
		return n > 0
	}
	p, _ := b.pc.br.Peek(n)
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		return false
	}
	size, ok := chunkSize(p[:i])
	if !ok {
		return false
	}
	if size == 0 {
		size = 2 // the blank line that ends the answer
	}
	return uint64(n-i-1) >= size
}

// chunkSize reads the size of a chunk-size line (RFC 9112 section 7.1;
// the line without its '\n'): hexadecimal digits, then perhaps extensions.
func chunkSize(line []byte) (uint64, bool) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	size, err := strconv.ParseUint(string(bytes.TrimRight(line, " \t")), 16, 63)
	return size, err == nil
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.eof.Load() {
		b.finish()
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		b.eof.Store(true)
		b.finish()
	case err != nil:
		b.finish()
		if cerr := b.ctx.Err(); cerr != nil {
			return n, cerr
		}
		if errors.Is(err, net.ErrClosed) && b.done.Load() {
			return n, http.ErrBodyReadAfterClose
		}
	}
	return n, err
}

func (b *h1Body) Close() error {
	b.finish()
	return nil
}

// finish ends the body's hold on its connection, once: back to the pool
// when the answer was read whole and nothing cancelled the request,
// closed otherwise.
func (b *h1Body) finish() {
	if b.done.Swap(true) {
		return
	}
	// stop reports false when the request's end already poisoned the
	// connection's deadlines.
	if b.stop() && b.eof.Load() && b.keep {
		b.pc.t.put(b.pc)
		return
	}
	_ = b.pc.conn.Close()
}
