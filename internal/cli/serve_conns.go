package cli

import (
	"log/slog"
	"net"
	"sync"
)

// connLimit is a net.Listener that keeps at most max connections open:
// at the cap Accept waits for one to close, so new connections wait in the
// kernel's listen backlog instead of each taking a descriptor (520 idle
// connections under a 512-descriptor limit made accept fail with "too many
// open files" and valid requests time out). It logs once when the cap is
// reached and once when there is room again. Written here rather than
// taken from golang.org/x/net/netutil.LimitListener, which has the same
// wait but no way to tell the operator that it is waiting.
type connLimit struct {
	net.Listener
	max  int
	log  *slog.Logger
	slot chan struct{} // one per open connection
	done chan struct{} // closed by Close
	once sync.Once

	mu   sync.Mutex
	full bool // the cap was reached and not yet left
}

func newConnLimit(ln net.Listener, max int, log *slog.Logger) *connLimit {
	return &connLimit{Listener: ln, max: max, log: log, slot: make(chan struct{}, max), done: make(chan struct{})}
}

// Accept waits for a free slot, then for a connection.
func (l *connLimit) Accept() (net.Conn, error) {
	select {
	case l.slot <- struct{}{}:
	default:
		l.mu.Lock()
		if !l.full {
			l.full = true
			l.log.Warn("connection limit reached: new connections wait until one closes (limits.max_connections)",
				"max_connections", l.max)
		}
		l.mu.Unlock()
		select {
		case l.slot <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slot
		return nil, err
	}
	return &limitedConn{Conn: c, l: l}, nil
}

// Close stops accepting; connections open stay open.
func (l *connLimit) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// release frees a connection's slot, saying so when the cap is left
// (below 90% of it, so that a gateway at the cap does not log every close).
func (l *connLimit) release() {
	<-l.slot
	if n := len(l.slot); n < l.max*9/10 {
		l.mu.Lock()
		if l.full {
			l.full = false
			l.log.Info("connections below the limit again", "open", n, "max_connections", l.max)
		}
		l.mu.Unlock()
	}
}

// limitedConn gives its slot back once, on its first Close.
type limitedConn struct {
	net.Conn
	l    *connLimit
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.l.release)
	return err
}
