package admission

import (
	"slices"
	"sync"
)

// Budgets is the usage of every key's own limits, its daily token budget
// (Key.DailyTokens) and its concurrency cap (Key.MaxConcurrency), shared by
// the controllers of every upstream of one server: those limits are the
// key's wherever its requests go, while fair shares and daily protection
// stay per upstream (each upstream is its own quota). Make one with
// NewBudgets and pass it to every controller in Options.Budgets; they must
// count days alike (the same day reset hour), as the budget counts per
// quota.Ledger.Day. It is safe for concurrent use.
//
// Lock order: a controller's mutex, then the Budgets', never the reverse.
// When a request ends in one controller, the others whose waiting request
// its key's limits held back are learned under this lock and pumped after
// the ending controller released its own (Controller.unlock), so no
// controller ever holds two controllers' locks and no wakeup is lost.
type Budgets struct {
	mu sync.Mutex
	// private: one controller's own (Options.Budgets nil), only ever used
	// under that controller's mutex, so it takes no lock of its own and no
	// one else needs waking.
	private bool
	day     string // the day total counts in (quota.Ledger.Day)
	keys    map[string]*keyUse
}

// keyUse is one key's usage of its own limits. Guarded by Budgets.mu.
type keyUse struct {
	name     string
	refs     int   // controllers that know the key
	total    int64 // tokens charged today, held included (the budget)
	held     int64 // part of total held by requests in flight
	inflight int   // requests in flight in every controller
	// waiters are the controllers whose waiting request these limits held
	// back: a request of the key ending elsewhere pumps them.
	waiters []*Controller
}

// NewBudgets returns the key budgets for the controllers of one server.
func NewBudgets() *Budgets { return &Budgets{keys: map[string]*keyUse{}} }

func newPrivateBudgets() *Budgets { return &Budgets{private: true, keys: map[string]*keyUse{}} }

func (b *Budgets) lock() {
	if !b.private {
		b.mu.Lock()
	}
}

func (b *Budgets) unlock() {
	if !b.private {
		b.mu.Unlock()
	}
}

// join returns the usage of the key name for a controller that starts
// knowing it.
func (b *Budgets) join(name string) *keyUse {
	b.lock()
	defer b.unlock()
	u := b.keys[name]
	if u == nil {
		u = &keyUse{name: name}
		b.keys[name] = u
	}
	u.refs++
	return u
}

// leave is join's reverse: a key no controller knows any more is forgotten,
// as a single controller forgets it (usage included).
func (b *Budgets) leave(u *keyUse) {
	b.lock()
	defer b.unlock()
	if u.refs--; u.refs == 0 {
		delete(b.keys, u.name)
	}
}

// roll starts day if it is later than the day counted: every key's today
// usage starts from zero (requests in flight keep counting in flight). It
// appends to wake the controllers to pump (self excepted).
func (b *Budgets) roll(wake []*Controller, day string, self *Controller) []*Controller {
	b.lock()
	defer b.unlock()
	if day <= b.day {
		return wake // today, or a controller that has not seen the new day yet
	}
	b.day = day
	for _, u := range b.keys {
		u.total, u.held = 0, 0
		wake = u.takeWaiters(wake, self)
	}
	return wake
}

// usage returns the key's tokens charged today, the part held in flight,
// and its requests in flight, across every controller.
func (b *Budgets) usage(u *keyUse) (total, held int64, inflight int) {
	b.lock()
	total, held, inflight = u.total, u.held, u.inflight
	b.unlock()
	return total, held, inflight
}

// allows reports whether k's concurrency cap and daily budget let in a
// request of tokens now; when not, self waits for the key's next request
// to end anywhere.
func (b *Budgets) allows(u *keyUse, k *Key, tokens int64, self *Controller) bool {
	return k.MaxConcurrency <= 0 && k.DailyTokens <= 0 || b.check(u, k, tokens, self)
}

func (b *Budgets) check(u *keyUse, k *Key, tokens int64, self *Controller) bool {
	b.lock()
	ok := u.allows(k, tokens, self, b.private)
	b.unlock()
	return ok
}

// take is allows that, when it allows, counts the request in flight and
// its tokens in day's usage, at once (no other controller can take the
// same room in between).
func (b *Budgets) take(u *keyUse, k *Key, tokens int64, day string, self *Controller) bool {
	b.lock()
	ok := u.allows(k, tokens, self, b.private)
	if ok {
		u.count(tokens, day, b.day)
	}
	b.unlock()
	return ok
}

// claim is take without the check: shadow mode forwards a request whatever
// the key's limits say, and its usage counts all the same.
func (b *Budgets) claim(u *keyUse, tokens int64, day string) {
	b.lock()
	u.count(tokens, day, b.day)
	b.unlock()
}

// count puts a request in flight, its tokens in day's usage when day is
// the one counted (today). Callers hold the Budgets' lock.
func (u *keyUse) count(tokens int64, day, today string) {
	u.inflight++
	if day == today {
		u.total += tokens
		u.held += tokens
	}
}

func (u *keyUse) allows(k *Key, tokens int64, self *Controller, private bool) bool {
	if m := k.MaxConcurrency; m > 0 && u.inflight >= m || k.DailyTokens > 0 && u.total+tokens > k.DailyTokens {
		if !private && !slices.Contains(u.waiters, self) {
			u.waiters = append(u.waiters, self)
		}
		return false
	}
	return true
}

// add charges d more tokens to a request in flight, counted in day.
func (b *Budgets) add(u *keyUse, day string, d int64) {
	b.lock()
	if day == b.day {
		u.total += d
		u.held += d
	}
	b.unlock()
}

// end takes a request out of flight: d is its last change to day's usage
// and dayIn the part of its charge counted in day, which stops being held.
// It appends to wake the controllers to pump (self excepted).
func (b *Budgets) end(wake []*Controller, u *keyUse, day string, d, dayIn int64, self *Controller) []*Controller {
	b.lock()
	if day == b.day {
		u.total += d
		u.held += d - dayIn
	}
	u.inflight--
	wake = u.takeWaiters(wake, self)
	b.unlock()
	return wake
}

// restore raises the key's settled usage of day to v (a restart's saved
// usage, or the replicas' pooled settlements): every controller restores
// the same total, which counts once. What this process's requests in
// flight hold stays on top of it, since their settlements will take it
// back (at a restart nothing is held).
func (b *Budgets) restore(u *keyUse, day string, v int64) {
	b.lock()
	defer b.unlock()
	if day == b.day {
		u.total = max(u.total, v+u.held)
	}
}

// takeWaiters moves the waiters but self to wake. Self stays: its caller
// pumps it, and it must not miss a later end.
func (u *keyUse) takeWaiters(wake []*Controller, self *Controller) []*Controller {
	if len(u.waiters) == 0 {
		return wake
	}
	keep := u.waiters[:0]
	for _, c := range u.waiters {
		switch {
		case c == self:
			keep = append(keep, c)
		case !slices.Contains(wake, c):
			wake = append(wake, c)
		}
	}
	clear(u.waiters[len(keep):])
	u.waiters = keep
	return wake
}
