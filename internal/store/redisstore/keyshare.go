package redisstore

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"
)

// KeysToday returns every key's tokens today across replicas (the daily
// budgets' counts) for day.
func (l *Ledger) KeysToday(ctx context.Context, day string) (map[string]int64, error) {
	m, err := l.rdb.HGetAll(ctx, l.opts.Prefix+"{ledger}:keyday:"+day).Result()
	if err != nil {
		return nil, fmt.Errorf("redis ledger keys today: %w", err)
	}
	out := make(map[string]int64, len(m))
	for k, v := range m {
		n, _ := strconv.ParseInt(v, 10, 64)
		out[k] = n
	}
	return out, nil
}

// KeyShares keeps each key's daily budget conservative on a replica whose
// shared ledgers run alone (localshare.go): one per process, shared by
// every upstream's Shared, since a key's budget counts across upstreams.
// While Redis answers it reads every key's tokens today across replicas
// (at most once per Every); alone, a key may be charged at most 1/N of
// what its budget had left at the last read, less what this replica
// charged it since. What was charged alone is forgotten at the first read
// after every upstream published it.
type KeyShares struct {
	// Every bounds how often the keys' day is read (0: 1 s).
	Every time.Duration

	mu     sync.Mutex
	day    string
	readAt time.Time
	today  map[string]int64 // at the last read
	since  map[string]int64 // charged by this replica since
	alone  int              // upstreams running alone now
}

// charge counts n charged to key by this replica (at admission).
func (k *KeyShares) charge(key string, n int64) {
	if k == nil || key == "" {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.since == nil {
		k.since = map[string]int64{}
	}
	k.since[key] += n
}

// allows reports whether key, with budget, may be charged n more on this
// replica running on 1/share of everything.
func (k *KeyShares) allows(key, day string, budget, n int64, share int) bool {
	if k == nil || key == "" || budget <= 0 {
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	today := k.today[key]
	if day != k.day {
		today = 0 // a day not read: only this replica's charges are known
	}
	return k.since[key]+n <= (budget-today)/int64(max(share, 1))
}

// setAlone counts an upstream going alone (+1) or back (-1).
func (k *KeyShares) setAlone(d int) {
	if k == nil {
		return
	}
	k.mu.Lock()
	k.alone += d
	k.mu.Unlock()
}

// refresh reads the keys' day through l when due.
func (k *KeyShares) refresh(ctx context.Context, l *Ledger, day string) {
	if k == nil || day == "" {
		return
	}
	every := k.Every
	if every <= 0 {
		every = time.Second
	}
	k.mu.Lock()
	due := k.alone == 0 && (day != k.day || time.Since(k.readAt) >= every)
	var before map[string]int64
	if due {
		k.readAt = time.Now() // one reader at a time
		before = maps.Clone(k.since)
	}
	k.mu.Unlock()
	if !due {
		return
	}
	today, err := l.KeysToday(ctx, day)
	if err != nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.alone != 0 {
		return
	}
	// What was charged while the read ran may not be in it: kept.
	for key, n := range before {
		if k.since[key] -= n; k.since[key] <= 0 {
			delete(k.since, key)
		}
	}
	k.day, k.today = day, today
}
