package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/headroomhq/headroom/internal/quota"
)

var _ quota.Store = (*Store)(nil)

// usageTTL is how long a day's usage stays in Redis after its last save:
// the gateway only ever loads the current day, and Redis, unlike the SQLite
// file, holds everything in memory. Redis's clock runs the expiry.
const usageTTL = 8 * 24 * time.Hour

// usageKey is the hash of one day's usage: entry -> tokens.
func (s *Store) usageKey(day string) string { return s.prefix + "usage:" + day }

// SaveUsage implements quota.Store: one HSET writes every entry, in a MULTI
// with the expiry, so a crash keeps all of them or none.
func (s *Store) SaveUsage(ctx context.Context, day string, usage map[string]int64) error {
	if len(usage) == 0 {
		return nil
	}
	fields := make([]any, 0, 2*len(usage))
	for k, v := range usage {
		fields = append(fields, k, v)
	}
	key := s.usageKey(day)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, fields...)
		p.Expire(ctx, key, usageTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("save usage: %w", err)
	}
	return nil
}

// LoadUsage implements quota.Store.
func (s *Store) LoadUsage(ctx context.Context, day string) (map[string]int64, error) {
	m, err := s.rdb.HGetAll(ctx, s.usageKey(day)).Result()
	if err != nil {
		return nil, fmt.Errorf("load usage: %w", err)
	}
	out := make(map[string]int64, len(m))
	for k, v := range m {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("load usage %q: stored value %q is not a count: %w", k, v, err)
		}
		out[k] = n
	}
	return out, nil
}
