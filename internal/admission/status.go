package admission

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
)

// Status is the controller at one instant, for /v1/status and the doctor.
type Status struct {
	Day         string `json:"day"`
	Queued      int    `json:"queued"`
	InFlight    int    `json:"in_flight"`
	MaxInFlight int    `json:"max_in_flight,omitempty"`
	// Settling counts ended requests whose ledger refund is held back
	// (Ticket.SettleAfter): the ledger still holds their reservations.
	Settling int            `json:"settling,omitempty"`
	Keys     []KeyStatus    `json:"keys"`
	Buckets  []BucketStatus `json:"buckets"`
	// Shared is how the ledger shared with other replicas runs (nil: none).
	Shared *SharedState `json:"shared_ledger,omitempty"`
}

// BucketStatus is one ledger bucket and, for a daily bucket under daily
// protection, the protected share of a key of weight 1 (a key's share is
// its weight times this), so that keys need not repeat every bucket.
type BucketStatus struct {
	quota.BucketState
	ProtectedPerWeight int64 `json:"protected_per_weight,omitempty"`
	// Queued counts the waiting requests that need this bucket.
	Queued int `json:"queued"`
}

// KeyStatus is one key's usage today. UsedToday and HeldNow are the key's
// budget use in every upstream sharing the controller's Budgets; the rest
// is this upstream's.
type KeyStatus struct {
	Name        string  `json:"name"`
	Weight      float64 `json:"weight"`
	DailyBudget int64   `json:"daily_budget,omitempty"`
	// UsedToday is tokens charged today, in-flight holds included.
	UsedToday int64 `json:"used_today"`
	// HeldNow is the part of UsedToday held by requests in flight.
	HeldNow  int64 `json:"held_now"`
	Requests int64 `json:"requests_today"`
	InFlight int   `json:"in_flight"`
	Queued   int   `json:"queued"`
	// Protected lists the daily buckets the key has used today, with its
	// protected share of each; in a bucket it has not used, its share is
	// its weight times the bucket's ProtectedPerWeight.
	Protected []KeyShare `json:"protected,omitempty"`
}

// KeyShare is a key's protected share of one daily bucket and its use of it.
type KeyShare struct {
	Bucket string `json:"bucket"`
	Share  int64  `json:"share"`
	Used   int64  `json:"used"`
}

// Status returns the controller's state at now, keys sorted by name.
func (c *Controller) Status(now time.Time) Status {
	c.mu.Lock()
	defer c.unlock(now)
	c.rollDay(now)
	st := Status{Day: c.day, Queued: c.queued, InFlight: c.inflight, MaxInFlight: c.opts.MaxInFlight, Settling: len(c.refunds),
		Keys: []KeyStatus{}}
	for _, b := range c.l.Snapshot(now) {
		st.Buckets = append(st.Buckets, BucketStatus{BucketState: b})
	}
	for _, ks := range c.waiting {
		for _, t := range ks.queue {
			for m := t.req.Set; m != 0; m &= m - 1 {
				st.Buckets[lowBit(m)].Queued++
			}
		}
	}
	if c.opts.ProtectedFraction > 0 && c.totalWeight > 0 {
		for m := c.daily; m != 0; m &= m - 1 {
			b := &st.Buckets[lowBit(m)]
			b.ProtectedPerWeight = int64(c.opts.ProtectedFraction * float64(b.Effective) / c.totalWeight)
		}
	}
	for _, ks := range c.keys {
		used, held, _ := c.b.usage(ks.use)
		k := KeyStatus{Name: ks.key.Name, Weight: ks.key.weight(), DailyBudget: ks.key.DailyTokens,
			UsedToday: used, HeldNow: held, Requests: ks.granted,
			InFlight: ks.inflight, Queued: len(ks.queue)}
		if c.opts.ProtectedFraction > 0 {
			for m := c.daily; m != 0; m &= m - 1 {
				i := lowBit(m)
				if ks.today[i] == 0 {
					continue
				}
				b := st.Buckets[i]
				k.Protected = append(k.Protected, KeyShare{Bucket: b.Name, Share: c.protectedShare(ks, b.Effective), Used: ks.today[i]})
			}
		}
		st.Keys = append(st.Keys, k)
	}
	slices.SortFunc(st.Keys, func(a, b KeyStatus) int { return cmp.Compare(a.Name, b.Name) })
	if s, ok := c.opts.Shared.(sharedStater); ok {
		ss := s.State()
		st.Shared = &ss
	}
	return st
}

// Budgets returns the key budgets the controller counts against (shared
// with other controllers when Options.Budgets was), so that a status of
// several upstreams counts each key's budget use once.
func (c *Controller) Budgets() *Budgets { return c.b }

// Key usage is persisted through quota.Store under these names: "key:NAME"
// for the key's tokens today (its budget) and "key:NAME/BUCKET" for its use
// of each daily bucket (its protected share). A gateway with several
// upstreams prefixes them with "UPSTREAM/"; with shared Budgets, every
// upstream saves the same "key:NAME" (the key's total in all of them) and
// restoring it raises the shared total to it, so it counts once.
const keyPrefix = "key:"

// KeyUsage returns every key's usage in the day containing now, in-flight
// holds included (a crash must not give them back).
func (c *Controller) KeyUsage(now time.Time) quota.DayUsage {
	c.mu.Lock()
	defer c.unlock(now)
	c.rollDay(now)
	u := quota.DayUsage{Day: c.day, Used: map[string]int64{}}
	for name, ks := range c.keys {
		total, _, _ := c.b.usage(ks.use)
		if total == 0 {
			continue
		}
		u.Used[keyPrefix+name] = total
		for m := c.daily; m != 0; m &= m - 1 {
			i := lowBit(m)
			if ks.today[i] != 0 {
				u.Used[keyPrefix+name+"/"+c.l.Spec(i).Name] = ks.today[i]
			}
		}
	}
	return u
}

// RestoreKeys raises each key's usage to what u says, when u is for the day
// containing now (it never lowers usage, so restoring twice is harmless).
// Keys not yet known are created with weight 1 until SetKeys or a request
// tells their settings. Entries without the "key:" prefix are ignored, so
// the whole stored day can be passed. It reports whether u was for today.
func (c *Controller) RestoreKeys(now time.Time, u quota.DayUsage) bool {
	c.mu.Lock()
	defer c.unlock(now)
	c.rollDay(now)
	if u.Day != c.day {
		return false
	}
	for name, v := range u.Used {
		rest, ok := strings.CutPrefix(name, keyPrefix)
		if !ok {
			continue
		}
		key, bucket, hasBucket := strings.Cut(rest, "/")
		ks := c.keys[key]
		if ks == nil {
			ks = c.keyFor(Key{Name: key})
		}
		if !hasBucket {
			c.b.restore(ks.use, c.day, v) // once, however many upstreams saved it
			continue
		}
		if i, ok := c.l.Index(bucket); ok && c.daily.Has(i) {
			ks.today[i] = max(ks.today[i], v)
		}
	}
	return true
}
