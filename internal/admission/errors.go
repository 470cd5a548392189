package admission

import (
	"fmt"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/headroomhq/headroom/internal/quota"
)

// TooLarge is a request that can never be admitted: its cost exceeds a
// bucket's limit or the key's daily budget. The gateway answers it with a
// ValidationException carrying Error().
type TooLarge struct {
	// Bucket is the bucket that is too small, or "" for the key's budget.
	Bucket string
	Kind   quota.Kind
	Budget bool // the key's daily budget, not a bucket
	// Capacity is the bucket's limit (or the budget), Cost the request's charge.
	Capacity, Cost int64
	// Hint says what to change.
	Hint string
}

func (e *TooLarge) Error() string {
	what := fmt.Sprintf("the %s bucket %q has a limit of %s", e.Kind.Phrase(), e.Bucket, humanize.Comma(e.Capacity))
	if e.Budget {
		what = "the key's daily budget is " + humanize.Comma(e.Capacity) + " tokens"
	}
	return fmt.Sprintf("Headroom: this request reserves %s tokens, but %s, so it can never be admitted; %s",
		humanize.Comma(e.Cost), what, e.Hint)
}

// Refusal is a request that could not be admitted before its deadline. The
// gateway answers it with 429 ThrottlingException, Retry-After (seconds,
// rounded up), x-headroom-throttle: gateway and, when Daily, x-should-retry:
// false.
type Refusal struct {
	// Bucket names the binding bucket, or "" when the binding limit is the
	// key's own (budget, concurrency) or the queue.
	Bucket string
	Kind   quota.Kind
	// RetryAfter is when the request would fit if nothing else changed.
	RetryAfter time.Duration
	// Holds is set when the room the request waits for depends on requests
	// in flight ending: RetryAfter is then the ledger's estimate
	// (quota.LimitError.Holds).
	Holds bool
	// Daily is set when a daily bucket, the key's protected daily share or
	// its daily budget is spent: the client should not retry soon.
	Daily bool
	// Budget is set when the binding limit is the key's daily budget
	// (KeyShare is then the budget).
	Budget bool
	// KeyShare and KeyUsed are the key's fair share of the bucket and what
	// it holds or has used of it (today, for a daily bucket).
	KeyShare, KeyUsed int64
	Message           string
}

func (e *Refusal) Error() string { return e.Message }

// human formats a wait for people: "12s", "3m20s", "5h4m".
func human(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int64((d+time.Second-1)/time.Second))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int64(d/time.Minute), int64(d%time.Minute/time.Second))
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int64(d/time.Hour), int64(d%time.Hour/time.Minute))
}
