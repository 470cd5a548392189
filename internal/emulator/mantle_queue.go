package emulator

import (
	"context"
	"errors"
	"time"
)

// admitMantle admits c against Mantle's ledger. In queue mode
// (mantle.queue.max_wait > 0) a request that does not fit waits, up to
// max_wait, retrying whenever a Mantle request of its region ends or the
// window has refilled enough for it; then it is refused with the last
// *ThrottleError. A request whose charge exceeds its bucket's limit is
// refused at once. The wait ends early with ctx's error.
func (s *Server) admitMantle(ctx context.Context, c Call) (*MantleReservation, error) {
	maxWait := s.applied.Mantle.Queue.MaxWait.Duration
	var deadline <-chan time.Time
	for {
		// Take the channel first, so that a request ending between the
		// attempt and the wait is not missed.
		ended := s.account.mantleEnded(c.Region)
		res, err := s.account.AdmitMantle(s.now(), c)
		var te *ThrottleError
		if err == nil || maxWait <= 0 || !errors.As(err, &te) || te.Charge > te.Limit {
			return res, err
		}
		if deadline == nil {
			t := time.NewTimer(maxWait)
			defer t.Stop()
			deadline = t.C
			s.account.mantleQueued(c.Region, 1)
			defer s.account.mantleQueued(c.Region, -1)
		}
		var refilled <-chan time.Time
		var refill *time.Timer
		if te.Refill > 0 {
			refill = time.NewTimer(te.Refill)
			refilled = refill.C
		}
		select {
		case <-ended:
		case <-refilled:
		case <-deadline:
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if refill != nil {
			refill.Stop()
		}
	}
}
