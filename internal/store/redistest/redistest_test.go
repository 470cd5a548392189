package redistest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/headroomhq/headroom/internal/store/redistest"
)

// The server answers, loses its data on a restart (no persistence), and
// refuses connections while stopped or killed.
func TestStopKillRestart(t *testing.T) {
	s := redistest.Start(t)
	ctx := context.Background()
	// A fresh client for each step: go-redis's pool backs off for a second
	// after failed dials, which is not what this test is about.
	client := func() *redis.Client {
		opt, err := redis.ParseURL(s.URL)
		if err != nil {
			t.Fatalf("ParseURL(%q): %v", s.URL, err)
		}
		opt.MaxRetries = -1 // a refused connection is the answer, not a reason to retry
		c := redis.NewClient(opt)
		t.Cleanup(func() { c.Close() })
		return c
	}
	c := client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, down := range []struct {
		name string
		stop func()
	}{{"Stop", s.Stop}, {"Kill", s.Kill}} {
		down.stop()
		if s.Running() {
			t.Errorf("after %s: Running() = true", down.name)
		}
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := client().Ping(qctx).Err()
		cancel()
		if err == nil {
			t.Fatalf("PING after %s succeeded, want an error", down.name)
		}
		s.Restart(t)
		c = client()
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatalf("PING after %s and Restart: %v", down.name, err)
		}
		if _, err := c.Get(ctx, "k").Result(); !errors.Is(err, redis.Nil) {
			t.Errorf("GET k after %s and Restart: %v, want redis.Nil (empty server)", down.name, err)
		}
		c.Set(ctx, "k", "v", 0)
	}
}

// Two servers in one test get different ports.
func TestTwoServers(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	if a.Addr == b.Addr {
		t.Fatalf("both servers on %s", a.Addr)
	}
	ctx := context.Background()
	a.Client(t).Set(ctx, "only-a", 1, 0)
	if n, err := b.Client(t).Exists(ctx, "only-a").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS on the other server = %d, %v; want 0", n, err)
	}
}
