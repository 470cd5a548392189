package gateway

import (
	"errors"
	"io"
	"math/bits"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/upstream"
)

// Request bodies in memory. A client declares its body's length before it
// sends a byte of it, so the gateway must not trust the declaration with
// memory: a buffer is sized by what has arrived, and the bytes every
// request holds together are bounded (Options.MaxBodyMemory).
//
//   - A body declared at most fastBody bytes is read into one buffer of
//     its declared length (plus rewriteRoom): the one copy the request
//     path makes, for every honest request of ordinary size (Claude Code's
//     first call is 86 KB).
//   - A larger or undeclared one starts at fastBody and doubles as bytes
//     arrive, up to the declared length or the limit: a client that
//     declares 20 MB and sends one byte holds 256 KB, not 20 MB.
//   - Every buffer is taken from a byte semaphore first, and given back when
//     the request ends; when the semaphore is full the request is refused
//     at once (429, Retry-After 1 s) instead of growing the heap.
//   - The one-buffer bodies' buffers are recycled (bodyPools), by size class
//     (powers of two from 4 KB, plus rewriteRoom), and the semaphore counts
//     the class's size: an 86 KB body takes a 128 KB buffer that served an
//     earlier request, instead of a new, zeroed allocation that the
//     collector must then find (BenchmarkGatewayMessagesStream86KB).
const fastBody = 256 << 10

// Body buffer size classes: class k holds 1<<(minBodyShift+k) bytes of
// body, up to fastBody, plus rewriteRoom.
const (
	minBodyShift = 12
	bodyClasses  = 18 - minBodyShift + 1 // fastBody is 1<<18
)

// bodyPools recycle request-body buffers (*[]byte of a class's capacity);
// a buffer goes back when its request has ended (bodyGuard.release).
var bodyPools [bodyClasses]sync.Pool

// bodyClass is the smallest class that holds n bytes (0 < n <= fastBody).
func bodyClass(n int64) int {
	return max(0, bits.Len64(uint64(n-1))-minBodyShift)
}

// classSize is the capacity of class k's buffers.
func classSize(k int) int64 { return int64(1)<<(minBodyShift+k) + rewriteRoom }

// DefaultMaxBodyMemory is the default bound on request-body bytes held at
// once: room for a thousand 256 KB bodies, or a dozen of the largest.
const DefaultMaxBodyMemory = 256 << 20

// errBodyMemory is a body refused because the gateway holds its bound of
// body bytes already.
var errBodyMemory = errors.New("request body memory bound reached")

// bodyGuard wraps a request's body for the life of its handler: it holds
// the body's share of the memory bound, and knows whether the body was read
// to its end (an early refusal leaves it unread).
type bodyGuard struct {
	io.ReadCloser
	mem  *semaphore.Weighted
	held int64
	eof  bool
	// buf is the pooled buffer the body was read into, of class class;
	// kept: an upstream transport may still read it after the request
	// ends (lend), so it is left to the collector instead of the pool.
	buf   *[]byte
	class int
	kept  bool
}

func (b *bodyGuard) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// take holds n more bytes of the bound, or reports that it cannot.
func (b *bodyGuard) take(n int64) bool {
	if b.mem == nil {
		return true
	}
	if !b.mem.TryAcquire(n) {
		return false
	}
	b.held += n
	return true
}

// release gives back what the body held, and its buffer to the pool unless
// it was lent to a transport that may still read it; the request has
// ended.
func (b *bodyGuard) release() {
	if b.held > 0 {
		b.mem.Release(b.held)
		b.held = 0
	}
	if b.buf != nil {
		if !b.kept {
			bodyPools[b.class].Put(b.buf)
		}
		b.buf = nil
	}
}

// lend records that cl sends the body upstream. Through net/http's
// transport (a proxy in between) the body may still be being written after
// Do returns, so its buffer must not serve another request.
func (b *bodyGuard) lend(cl *upstream.Client) {
	if !cl.DoneWithBody() {
		b.kept = true
	}
}

// guardBody installs c's body guard on r.
func (g *Gateway) guardBody(r *http.Request, c *call) {
	c.body = bodyGuard{ReadCloser: r.Body, mem: g.bodyMem}
	r.Body = &c.body
}

// readAll reads r's body as the comment at the top of this file says.
func (g *Gateway) readAll(r *http.Request) ([]byte, error) {
	bg, _ := r.Body.(*bodyGuard)
	if bg == nil {
		bg = &bodyGuard{ReadCloser: r.Body} // not through ServeHTTP: unbounded
	}
	n := r.ContentLength
	if n > 0 && n <= fastBody {
		k := bodyClass(n)
		if !bg.take(classSize(k)) {
			return nil, errBodyMemory
		}
		bp, _ := bodyPools[k].Get().(*[]byte)
		if bp == nil {
			b := make([]byte, classSize(k))
			bp = &b
		}
		bg.buf, bg.class = bp, k
		body := (*bp)[:n]
		_, err := io.ReadFull(bg, body)
		bg.eof = bg.eof || err == nil // all of it: nothing is left to drain
		return body, err
	}
	limit := g.maxBody + 1 // one byte over tells a body over the limit
	if n > 0 {
		limit = n
	}
	size := min(int64(fastBody), limit)
	if !bg.take(size + rewriteRoom) {
		return nil, errBodyMemory
	}
	body := make([]byte, 0, size+rewriteRoom)
	for {
		m, err := bg.Read(body[len(body) : cap(body)-rewriteRoom])
		body = body[:len(body)+m]
		switch {
		case err == io.EOF && n > 0 && int64(len(body)) < n:
			return nil, io.ErrUnexpectedEOF
		case err == io.EOF || n > 0 && int64(len(body)) == n:
			if int64(len(body)) > g.maxBody {
				return nil, errTooLarge
			}
			bg.eof = true
			return body, nil
		case err != nil:
			return nil, err
		case int64(len(body)) > g.maxBody:
			return nil, errTooLarge
		}
		if len(body) == cap(body)-rewriteRoom {
			grown := min(2*int64(len(body)), limit)
			if !bg.take(grown - int64(len(body))) {
				return nil, errBodyMemory
			}
			nb := make([]byte, len(body), grown+rewriteRoom)
			copy(nb, body)
			body = nb
		}
	}
}

// bodyMemoryError is the client's error for a body refused by the bound.
func (g *Gateway) bodyMemoryError() error {
	g.log.Warn("request body refused: the gateway holds its bound of request-body memory", "max_body_memory", g.maxBodyMem)
	e := bedrock.Errorf(bedrock.ThrottlingException,
		"Headroom is holding as many request bodies in memory as it may (%d MB); retry in 1s", g.maxBodyMem>>20).WithRetryAfter(time.Second)
	e.SetHeader(HeaderThrottle, "gateway")
	return e
}

// unreadBody bounds what an early refusal costs. net/http reads what is
// left of a body the handler did not read (up to 256 KB, so that the
// connection can carry the next request) before it answers, with no
// deadline of its own: a client that declared a body and sends it slowly,
// or never, would hold the connection for ever. The read deadline set here
// bounds that to drainGrace: an honest client whose body is already on the
// wire (a 403 for a mistyped key, an oversize body) still reads its answer
// and keeps its connection; a stalled one is answered when the grace ends
// and its connection closed. A body over 256 KB is not read at all
// (net/http closes the connection after the answer).
func unreadBody(w http.ResponseWriter, r *http.Request, read bool) {
	if read || r.ContentLength == 0 {
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(drainGrace))
}

// drainGrace is how long net/http may read an unread body's rest.
const drainGrace = time.Second
