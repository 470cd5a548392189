package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/store/redisstore"
	"github.com/headroomhq/headroom/internal/store/sqlitestore"
)

// stateStore is where `serve` and `keys` keep developer keys and the day's
// usage: SQLite in the data directory (*sqlitestore.Store, for one replica)
// or a Redis that replicas share (*redisstore.Store).
type stateStore interface {
	keys.Store
	quota.Store
	Close() error
}

// storeLocation says where the state is, for messages and the start-up log:
// a data directory, or a Redis (its URL redacted) and where that URL came
// from.
type storeLocation struct {
	dir      string // with SQLite
	redisURL string // with Redis, no password
}

func (l storeLocation) String() string {
	if l.redisURL != "" {
		return "keys and usage in Redis at " + l.redisURL
	}
	return "data in " + l.dir
}

// chooseStore decides where the state is from the flags and the file
// (cfg, nil without one): flags override the file, so --redis or
// --data-dir first, then the file's redis.url, then its data_dir, then the
// per-user default directory. It returns a Redis URL or a directory.
func chooseStore(redisFlag, dirFlag string, cfg *config.Serve) (redisURL, dir string, err error) {
	var fileRedis, fileDir string
	if cfg != nil {
		fileRedis, fileDir = cfg.Redis.URL, cfg.DataDir // cfg.Validate checked the URL as redis.url
	}
	switch {
	case redisFlag != "" && dirFlag != "":
		return "", "", errors.New("--redis and --data-dir exclude each other: with Redis, keys and usage are in Redis")
	case redisFlag != "":
		return redisFlag, "", config.Redis{URL: redisFlag}.Validate("--redis")
	case dirFlag == "" && fileRedis != "":
		return fileRedis, "", nil
	}
	dir, err = resolveDataDir(dirFlag, fileDir)
	return "", dir, err
}

// openState opens Redis when redisURL is set, else SQLite in dir. With
// lockDir (serve), the data directory is locked first, so that a second
// server on the same directory refuses to start instead of keeping a second
// ledger that admits as much again as the account allows; the `keys`
// commands do not lock, they may run beside a server.
//
// A non-nil logger receives go-redis's own messages (see redisLog).
func openState(ctx context.Context, redisURL, dir string, lockDir bool, logger *slog.Logger) (stateStore, storeLocation, error) {
	if redisURL != "" {
		if logger != nil {
			redis.SetLogger(&redisLog{log: logger, now: time.Now})
		}
		loc := storeLocation{redisURL: redisstore.Redact(redisURL)}
		st, err := redisstore.Open(ctx, redisURL, redisstore.Options{})
		if err != nil {
			return nil, loc, err
		}
		return st, loc, nil
	}
	loc := storeLocation{dir: dir}
	if !lockDir {
		st, err := sqlitestore.Open(ctx, dir)
		if err != nil {
			return nil, loc, err
		}
		return st, loc, nil
	}
	lock, err := sqlitestore.LockDir(dir)
	var le *sqlitestore.LockedError
	if errors.As(err, &le) {
		return nil, loc, fmt.Errorf("%w, most likely another `headroom serve`: two servers on one SQLite "+
			"data directory would each admit what the account allows. To run several replicas, share a "+
			"Redis instead: `headroom serve --redis redis://HOST:6379` (or redis: {url: ...} in the "+
			"configuration) on every replica; for a second, separate gateway, give it its own --data-dir", le)
	}
	if err != nil {
		return nil, loc, err
	}
	st, err := sqlitestore.Open(ctx, dir)
	if err != nil {
		lock.Release()
		return nil, loc, err
	}
	return &lockedStore{Store: st, lock: lock}, loc, nil
}

// redisLog sends go-redis's own messages (a failed dial, a pool that gives
// up) to the serve log, as JSON like every other line, instead of plain
// text on stderr; while Redis is down they come with every command, so at
// most one a second is logged, with the count of those dropped. go-redis
// has one logger per process (redis.SetLogger): `serve` sets it once.
type redisLog struct {
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	last    time.Time
	dropped int
}

func (r *redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.mu.Lock()
	now := r.now()
	if now.Sub(r.last) < time.Second {
		r.dropped++
		r.mu.Unlock()
		return
	}
	dropped := r.dropped
	r.last, r.dropped = now, 0
	r.mu.Unlock()
	r.log.Warn("redis client", "message", fmt.Sprintf(format, v...), "similar_dropped", dropped)
}

// lockedStore is the SQLite store of a server, which holds its directory's
// lock until it closes.
type lockedStore struct {
	*sqlitestore.Store
	lock *sqlitestore.DirLock
}

func (s *lockedStore) Close() error {
	err := s.Store.Close()
	s.lock.Release()
	return err
}
