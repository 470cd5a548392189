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

// usageSaver persists the day's usage of every upstream's daily buckets and
// keys, under "UPSTREAM/BUCKET" and "UPSTREAM/key:NAME[/BUCKET]". The usage
// saved includes reservations in flight, so a crash never gives them back.
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
		for k, v := range du.Used {
			out[u.Name+"/"+k] = v
		}
		ku := u.Admission.KeyUsage(now)
		for k, v := range ku.Used {
			out[u.Name+"/"+k] = v
		}
	}
	return day, out
}

// save writes the usage if it changed since the last save.
func (s *usageSaver) save(ctx context.Context, now time.Time) error {
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
	if len(s.upstreams) == 0 {
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
			if rest, ok := strings.CutPrefix(k, u.Name+"/"); ok {
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
