package redisstore

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedis starts a real redis-server without persistence on a free
// loopback port for the test, or skips when none is installed (CI installs
// it: .ci/run).
func startRedis(t testing.TB) (*redis.Client, *redisProc) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server); the shared ledger tests need a real one")
	}
	p := &redisProc{bin: bin, dir: t.TempDir()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	p.start(t)
	t.Cleanup(p.stop)
	rdb := redis.NewClient(&redis.Options{Addr: p.addr()})
	t.Cleanup(func() { rdb.Close() })
	return rdb, p
}

// redisProc is a redis-server the test can stop and start again (empty:
// no persistence) on the same port.
type redisProc struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
}

func (p *redisProc) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

func (p *redisProc) start(t testing.TB) {
	t.Helper()
	p.cmd = exec.Command(p.bin, "--port", strconv.Itoa(p.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", p.dir)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: p.addr(), MaxRetries: -1})
	defer rdb.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if rdb.Ping(context.Background()).Err() == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not answer within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *redisProc) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		p.cmd = nil
	}
}
