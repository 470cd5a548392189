package quota

import (
	"fmt"
	"time"
)

// LimitError is a refusal by one bucket. Check for it with errors.As.
type LimitError struct {
	Bucket string // the bucket's name
	Index  int    // the bucket's index in the ledger
	Kind   Kind
	// Need is what the request costs in this bucket (tokens, or 1 request);
	// Available is what the bucket has now.
	Need, Available int64
	// Limit and Effective are the bucket's configured and effective limits.
	Limit, Effective int64
	// RetryAfter is when the bucket will have room for Need, by its window
	// rules, if nothing else is reserved, adjusted or settled meanwhile.
	// It is exact unless Holds is set.
	RetryAfter time.Duration
	// Never is set when Need exceeds the bucket's limit: no wait helps.
	Never bool
	// Share is n when the bucket admits against 1/n of itself (Ledger.Share):
	// Limit is then the part's, and Never passes when it is whole again.
	// (A need over the whole bucket's limit has Share 0 and that Limit.)
	Share int
	// Holds is set when the window alone can never make room: live
	// reservations hold too much of the limit and must end first, which no
	// clock can tell. RetryAfter is then an estimate: the longer of what
	// the window needs to make room were the holds gone, and the ledger's
	// HoldEstimate. (A queue should wake on Settle and Cancel too.)
	Holds bool
}

// refusal moves e to the heap only on the refusal path, so that the
// successful path does not allocate.
func refusal(e LimitError) error {
	p := new(LimitError)
	*p = e
	return p
}

func (e *LimitError) Error() string {
	if e.Never {
		return fmt.Sprintf("quota: %s bucket %q: cost %d exceeds its limit %d", e.Kind.Phrase(), e.Bucket, e.Need, e.Limit)
	}
	if e.Holds {
		return fmt.Sprintf("quota: %s bucket %q: needs %d, has %d; room when requests in flight end, about %v", e.Kind.Phrase(), e.Bucket, e.Need, e.Available, e.RetryAfter)
	}
	return fmt.Sprintf("quota: %s bucket %q: needs %d, has %d; room in %v", e.Kind.Phrase(), e.Bucket, e.Need, e.Available, e.RetryAfter)
}
