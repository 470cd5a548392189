package cli

import (
	"context"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/headroomhq/headroom/internal/gateway"
	"github.com/headroomhq/headroom/internal/quota"
)

// usageSaveEvery is how often the day's usage is compared with what was
// last saved and written when it changed: a kill -9 loses at most this much
// of it. A save is one small SQLite transaction (a few rows per bucket and
// key), so even a busy gateway writes at most ten a second.
const usageSaveEvery = 100 * time.Millisecond

// maxDayUsage is the most tokens one entry of a day's usage can plausibly
// hold: a trillion, orders of magnitude above any account's daily quota.
// The gateway bounds every charge by what its request could have used, so
// a value outside [0, maxDayUsage] is a bug or a tampered store; it is
// never saved, and never restored.
const maxDayUsage = 1_000_000_000_000

func plausibleUsage(v int64) bool { return v >= 0 && v <= maxDayUsage }

// usageSaver persists the day's usage of every upstream's daily buckets and
// keys, under "UPSTREAM/BUCKET" and "UPSTREAM/key:NAME[/BUCKET]". The usage
// saved includes reservations in flight, so a crash never gives them back.
// With no store (replicas sharing a ledger in Redis, which holds the day)
// it saves and restores nothing.
type usageSaver struct {
	store     quota.Store
	upstreams []*gateway.Upstream
	log       *slog.Logger

	lastDay string
	last    map[string]int64
}

// collect gathers the day's usage of every upstream.
func (s *usageSaver) collect(now time.Time) (string, map[string]int64) {
	out := map[string]int64{}
	var day string
	for _, u := range s.upstreams {
		du := u.Ledger().DayUsage(now)
		day = du.Day
		ku := u.Admission.KeyUsage(now)
		for _, m := range []map[string]int64{du.Used, ku.Used} {
			for k, v := range m {
				if !plausibleUsage(v) {
					s.log.Error("not saving an impossible day's usage", "entry", u.Name+"/"+k, "value", v)
					continue
				}
				out[u.Name+"/"+k] = v
			}
		}
	}
	return day, out
}

// save writes the usage if it changed since the last save.
func (s *usageSaver) save(ctx context.Context, now time.Time) error {
	if s.store == nil {
		return nil
	}
	day, used := s.collect(now)
	if day == "" || day == s.lastDay && maps.Equal(used, s.last) {
		return nil
	}
	if err := s.store.SaveUsage(ctx, day, used); err != nil {
		return err
	}
	s.lastDay, s.last = day, used
	return nil
}

// run saves every interval until ctx ends.
func (s *usageSaver) run(ctx context.Context, every time.Duration) {
	if s.store == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := s.save(ctx, time.Now())
			switch {
			case err != nil && !failing && ctx.Err() == nil:
				s.log.Error("saving the day's usage failed; retrying", "error", err.Error())
				failing = true
			case err == nil && failing:
				s.log.Info("saving the day's usage works again")
				failing = false
			}
		}
	}
}

// restore raises every ledger and key to the usage stored for today.
func (s *usageSaver) restore(ctx context.Context, now time.Time) error {
	if s.store == nil || len(s.upstreams) == 0 {
		return nil
	}
	day := s.upstreams[0].Ledger().Day(now)
	stored, err := s.store.LoadUsage(ctx, day)
	if err != nil {
		return err
	}
	for _, u := range s.upstreams {
		du := quota.DayUsage{Day: day, Used: map[string]int64{}}
		for k, v := range stored {
			rest, ok := strings.CutPrefix(k, u.Name+"/")
			switch {
			case !ok:
			case !plausibleUsage(v):
				s.log.Warn("ignoring an impossible saved day's usage", "entry", k, "value", v)
			default:
				du.Used[rest] = v
			}
		}
		u.Ledger().RestoreDay(now, du)
		u.Admission.RestoreKeys(now, du)
	}
	if len(stored) > 0 {
		s.log.Info("restored the day's usage", "day", day, "entries", len(stored))
	}
	s.lastDay, s.last = day, stored
	return nil
}
