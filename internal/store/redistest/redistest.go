// Package redistest runs a real redis-server for tests: on a free loopback
// port, without persistence, in a temporary directory, stopped when the test
// ends. Tests of the Redis store and of replicas sharing one Redis use it
// instead of a fake, so that they exercise the server's own scripting,
// clock and failure modes. A test can stop, kill and restart the server to
// check what Headroom does while Redis is down and after it comes back empty.
//
// Without a redis-server binary the test is skipped, unless
// HEADROOM_REQUIRE_REDIS=1 (set by CI, which installs Debian's redis-server)
// makes it fail. It is imported by tests only.
package redistest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RequireEnv, set to 1, turns a missing redis-server into a test failure.
const RequireEnv = "HEADROOM_REQUIRE_REDIS"

// BinaryEnv names a redis-server binary to use instead of the one on PATH.
const BinaryEnv = "HEADROOM_REDIS_SERVER"

// startTimeout bounds how long a start waits for the server to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process. Its address stays the same across
// Stop/Kill and Restart, so clients configured with URL reconnect to the
// restarted (empty) server. Its methods are safe for concurrent use.
type Server struct {
	// URL is the redis:// URL clients pass to Headroom (--redis).
	URL string
	// Addr is host:port.
	Addr string

	bin, dir string
	port     int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Binary returns the redis-server to run, skipping (or, with
// HEADROOM_REQUIRE_REDIS=1, failing) t when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(BinaryEnv); p != "" {
		return p
	}
	for _, p := range []string{"redis-server", "/usr/bin/redis-server", "/usr/sbin/redis-server"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("no redis-server, and %s=1: install it (apt-get install redis-server) or set %s", RequireEnv, BinaryEnv)
	}
	t.Skipf("no redis-server on this machine (apt-get install redis-server, or set %s); skipping the Redis test", BinaryEnv)
	return ""
}

// Start starts a redis-server for t and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	s := &Server{bin: bin, dir: t.TempDir()}
	var err error
	// The free port is found by binding :0 and closing; another process may
	// take it before redis-server binds it, so a failed start tries again.
	for range 5 {
		s.port, err = freePort()
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		s.URL = "redis://" + s.Addr
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Kill)
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs the server on s.port and waits until it answers PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("redis-server on %s is already running", s.Addr)
	}
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "", // no snapshots: a restart comes back empty
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", "", // to stdout, kept for the error message
		"--loglevel", "warning",
	)
	w := &lockedWriter{w: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()

	deadline := time.Now().Add(startTimeout)
	for {
		err := ping(s.Addr)
		if err == nil {
			break
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on %s exited at start: %s", s.Addr, w.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server on %s did not answer PING within %v: %v; log: %s", s.Addr, startTimeout, err, w.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.cmd, s.done = cmd, done
	return nil
}

// ping sends one inline PING on a fresh connection. It does not use a
// go-redis client: the client's pool backs off for a second after failed
// dials, which would slow every start down.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return err
	}
	if string(buf) != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", buf)
	}
	return nil
}

// Stop shuts the server down as an operator would (SIGTERM) and waits for it
// to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill kills the server with SIGKILL and waits for it to exit. Killing a
// stopped server does nothing.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(startTimeout):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

// Restart starts a stopped (or killed) server again on the same address. It
// comes back empty: nothing is persisted. It fails t if the server does not
// come up.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("redistest: restart: %v", err)
	}
}

// Running reports whether the server process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Client returns a go-redis client for the server, closed when t ends, for
// tests that inspect or prepare what is stored.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// lockedWriter lets the process's output be read while it is written.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
