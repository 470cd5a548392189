// Package redisstore keeps Headroom's shared state in Redis, so that several
// `headroom serve` replicas see the same developer keys (hashed, as in
// SQLite) and the same day's usage. It uses go-redis v9; every change that
// reads before it writes is one server-side Lua script or one MULTI block,
// so that replicas and the `headroom keys` CLI cannot interleave.
//
// All of Headroom's keys in Redis start with a prefix (Options.Prefix,
// "headroom:" by default), so one Redis can serve other programs or several
// Headroom deployments. Scripts touch only the keys they declare, as Redis
// Cluster requires.
//
// The package implements the Store interfaces that keys and quota declare
// (and the shared ledger's, in files of its own); it imports nothing of
// Headroom's besides those packages, and holds no policy of its own.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/headroomhq/headroom/internal/keys"
)

// DefaultPrefix starts the name of every key Headroom writes.
const DefaultPrefix = "headroom:"

// connectTimeout bounds the first PING: a Redis that does not answer within
// it is reported as unreachable rather than hanging `serve` at start.
const connectTimeout = 5 * time.Second

// Options tune Open. The zero value is valid.
type Options struct {
	// Prefix starts every key; empty means DefaultPrefix.
	Prefix string
}

// Store is the Redis store. It is safe for concurrent use, also by several
// processes sharing one Redis.
type Store struct {
	rdb    *redis.Client
	prefix string

	mu     sync.Mutex
	gen    string     // the keys' generation at the last List
	listed []keys.Key // what the last List returned, to restore after Redis loses it
}

// URLError is a --redis URL (or redis.url) that is not one.
type URLError struct {
	URL string // redacted: no password
	Err error
}

func (e *URLError) Error() string {
	return fmt.Sprintf("redis URL %q: %v (want redis://[user:password@]host:port[/db], rediss:// for TLS, or unix:///path)", e.URL, e.Err)
}

func (e *URLError) Unwrap() error { return e.Err }

// UnreachableError is a Redis that did not answer at Open.
type UnreachableError struct {
	Addr string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("redis at %s did not answer: %v", e.Addr, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Open connects to the Redis at rawURL (redis://, rediss:// or unix://, as
// go-redis parses them) and checks that it answers, so that a wrong address
// fails at start with a clear error instead of at the first request.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	ro, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, &URLError{URL: Redact(rawURL), Err: err}
	}
	rdb := redis.NewClient(ro)
	pctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %v", connectTimeout)
		}
		return nil, &UnreachableError{Addr: ro.Addr, Err: err}
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{rdb: rdb, prefix: prefix}, nil
}

// Close closes the connections. Everything written is already in Redis.
func (s *Store) Close() error { return s.rdb.Close() }

// Client returns the underlying client, for the shared ledger's code that
// runs its own scripts on the same connections. It stays owned by s.
func (s *Store) Client() *redis.Client { return s.rdb }

// Prefix returns the prefix every key of s starts with.
func (s *Store) Prefix() string { return s.prefix }

// Redact returns rawURL without its password, for messages and logs.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
