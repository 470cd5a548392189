package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/headroomhq/headroom/internal/forecast"
)

// The usage counts of the gateway's top consumers and forecasts, shared by
// replicas (forecast.Count): one hash per minute for the last hour and one
// per day, field KEY\x00UPSTREAM\x00BUCKET (both empty for the key's
// total), each replica adding what it settled since its last publish; and
// when counting began, the earliest replica's start.

const (
	trackerMinuteTTL = time.Duration(forecast.Minutes+2) * time.Minute
	trackerDayTTL    = 48 * time.Hour
)

func (s *Store) trackerKey(kind string, n int64) string {
	return s.prefix + "tracker:" + kind + ":" + strconv.FormatInt(n, 10)
}

func trackerField(c forecast.Count) string {
	return c.Key + "\x00" + c.Series.Upstream + "\x00" + c.Series.Bucket
}

// PublishCounts adds counts to the shared ones, in one MULTI, and records
// start as when counting began unless an earlier replica did.
func (s *Store) PublishCounts(ctx context.Context, start time.Time, counts []forecast.Count) error {
	since := s.prefix + "tracker:since"
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		touched := map[string]time.Duration{}
		for _, c := range counts {
			f := trackerField(c)
			if c.Minute >= 0 {
				k := s.trackerKey("min", c.Minute)
				p.HIncrBy(ctx, k, f, c.Tokens)
				touched[k] = trackerMinuteTTL
			}
			if c.Day >= 0 {
				k := s.trackerKey("day", c.Day)
				p.HIncrBy(ctx, k, f, c.Tokens)
				touched[k] = trackerDayTTL
			}
		}
		for k, ttl := range touched {
			p.Expire(ctx, k, ttl)
		}
		p.SetNX(ctx, since, start.UnixNano(), trackerDayTTL)
		p.Expire(ctx, since, trackerDayTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("publish usage counts: %w", err)
	}
	return nil
}

// FetchCounts returns the shared counts of the forecast.Minutes minutes up
// to minute (Day -1) and of day (Minute -1), and when counting began (zero
// if no replica said).
func (s *Store) FetchCounts(ctx context.Context, minute, day int64) ([]forecast.Count, time.Time, error) {
	p := s.rdb.Pipeline()
	mins := make([]*redis.MapStringStringCmd, forecast.Minutes)
	for i := range mins {
		mins[i] = p.HGetAll(ctx, s.trackerKey("min", minute-int64(i)))
	}
	days := p.HGetAll(ctx, s.trackerKey("day", day))
	since := p.Get(ctx, s.prefix+"tracker:since")
	if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
		return nil, time.Time{}, fmt.Errorf("fetch usage counts: %w", err)
	}
	var out []forecast.Count
	add := func(m map[string]string, minute, day int64) {
		for f, v := range m {
			n, err := strconv.ParseInt(v, 10, 64)
			parts := strings.Split(f, "\x00")
			if err != nil || n <= 0 || len(parts) != 3 {
				continue // not ours, or impossible: counted as nothing
			}
			out = append(out, forecast.Count{Minute: minute, Day: day, Key: parts[0],
				Series: forecast.SeriesName{Upstream: parts[1], Bucket: parts[2]}, Tokens: n})
		}
	}
	for i, c := range mins {
		add(c.Val(), minute-int64(i), -1)
	}
	add(days.Val(), -1, day)
	var start time.Time
	if ns, err := since.Int64(); err == nil && ns > 0 {
		start = time.Unix(0, ns)
	}
	return out, start, nil
}
