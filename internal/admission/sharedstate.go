package admission

import (
	"errors"
	"fmt"
	"time"

	"github.com/headroomhq/headroom/internal/quota"
)

// Modes of a shared ledger (SharedState.Mode).
const (
	SharedUp         = "shared"      // Redis answers: the replicas share one ledger
	SharedRefusing   = "refusing"    // Redis does not answer; new requests get 503 (when_down: refuse)
	SharedLocalShare = "local_share" // Redis does not answer; this replica admits against 1/Share of every bucket
)

// SharedState is how an upstream's shared ledger runs now, as /v1/status
// and the metrics show it.
type SharedState struct {
	Mode string `json:"mode"`
	// Share is N while the replica admits against 1/N of every bucket.
	Share int `json:"share,omitempty"`
	// Replicas is how many replicas held a live lease at the last answer.
	Replicas int `json:"replicas"`
	// Since is when Redis stopped answering (zero while it answers).
	Since time.Time `json:"since,omitzero"`
}

// sharedStater is a Shared that can say how it runs (redisstore.Shared).
type sharedStater interface{ State() SharedState }

// errShareTooSmall is why a request larger than this replica's local
// share of a bucket is refused while the shared ledger is unreachable.
var errShareTooSmall = errors.New("the request is larger than this replica's share of a bucket while the shared ledger is unreachable")

// shareTooSmall is the answer to a request that can never fit this
// replica's local share of a bucket (quota.Ledger.Share) but may fit the
// whole bucket once the shared ledger answers again: 503, not a
// ValidationException.
func shareTooSmall(le *quota.LimitError) error {
	return &Unavailable{Err: fmt.Errorf("%w: bucket %q, %d of a share of %d (1/%d)", errShareTooSmall, le.Bucket, le.Need, le.Limit, le.Share),
		RetryAfter: 5 * time.Second, Share: le.Share}
}
