package quota

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

// step is one operation replayed against a ledger at t0+at.
type step struct {
	at     time.Duration
	op     string // reserve, adjust, settle, cancel, throttle, fits
	res    int    // which reservation (by order of reserve steps) for adjust/settle/cancel
	set    Set    // for reserve/fits/throttle; 0 means every bucket
	tokens int64
	// cost replaces Tokens(tokens) when set (Mantle's parts).
	cost *Cost

	// For reserve and fits: the refusal expected (nil: success).
	want *LimitError
	// Available per bucket after the step (nil: not checked).
	avail []int64
	// For settle/cancel: whether the call should end the reservation.
	ended *bool
}

func yes() *bool { v := true; return &v }
func no() *bool  { v := false; return &v }

func replay(t *testing.T, l *Ledger, steps []step) {
	t.Helper()
	var rs []Reservation
	for n, s := range steps {
		now := t0.Add(s.at)
		cost := Tokens(s.tokens)
		if s.cost != nil {
			cost = *s.cost
		}
		set := s.set
		if set == 0 {
			set = l.All()
		}
		var err error
		var ended bool
		switch s.op {
		case "reserve":
			var r Reservation
			r, err = l.Reserve(now, set, cost)
			rs = append(rs, r)
		case "fits":
			err = l.Fits(now, set, cost)
		case "adjust":
			rs[s.res].Adjust(now, cost)
		case "settle":
			ended = rs[s.res].Settle(now, cost)
		case "cancel":
			ended = rs[s.res].Cancel(now)
		case "throttle":
			l.Throttled(now, set)
		default:
			t.Fatalf("step %d: unknown op %q", n, s.op)
		}
		if s.op == "reserve" || s.op == "fits" {
			var got *LimitError
			if err != nil && !errors.As(err, &got) {
				t.Fatalf("step %d %s: error %v is not a *LimitError", n, s.op, err)
			}
			if diff := cmp.Diff(s.want, got); diff != "" {
				t.Errorf("step %d %s %+v at +%v: refusal (-want +got):\n%s", n, s.op, cost, s.at, diff)
			}
		}
		if s.ended != nil && ended != *s.ended {
			t.Errorf("step %d %s: ended = %v, want %v", n, s.op, ended, *s.ended)
		}
		if s.avail != nil {
			var got []int64
			for i := range l.Len() {
				got = append(got, l.Available(now, i))
			}
			if diff := cmp.Diff(s.avail, got); diff != "" {
				t.Errorf("step %d %s at +%v: available (-want +got):\n%s", n, s.op, s.at, diff)
			}
		}
	}
}

func TestLedgerReplay(t *testing.T) {
	tpm := BucketSpec{Name: "tpm", Kind: TokensPerMinute, Limit: 600} // drains 10 tokens/s
	tpd := BucketSpec{Name: "tpd", Kind: TokensPerDay, Limit: 1000}
	rpm := BucketSpec{Name: "rpm", Kind: RequestsPerMinute, Limit: 2}
	const hold = DefaultHoldEstimate // 20 s until a settlement teaches the ledger
	// refused builds the *LimitError of bucket 0 of a one-bucket ledger.
	refused := func(s BucketSpec, need, avail int64, retry time.Duration, holds bool) *LimitError {
		return &LimitError{Bucket: s.Name, Kind: s.Kind, Need: need, Available: avail, Limit: s.Limit, Effective: s.Limit, RetryAfter: retry, Holds: holds}
	}
	tests := []struct {
		name  string
		specs []BucketSpec
		w     Windows
		steps []step
	}{
		{
			name:  "a hold is not refilled; consumption drains at the limit per minute",
			specs: []BucketSpec{tpm},
			steps: []step{
				{op: "reserve", tokens: 600, avail: []int64{0}},
				// A minute later the old ledger had refilled 600; Bedrock has not.
				{at: time.Minute, op: "fits", tokens: 1, want: refused(tpm, 1, 0, hold, true), avail: []int64{0}},
				// Settled in full: the hold becomes consumption, which drains.
				// The ledger learns the hold: 20 s + (60 s - 20 s)/8 = 25 s.
				{at: time.Minute, op: "settle", res: 0, tokens: 600, avail: []int64{0}},
				{at: time.Minute + 99*time.Millisecond, op: "fits", tokens: 1, want: refused(tpm, 1, 0, time.Millisecond, false)},
				{at: time.Minute + time.Second, op: "fits", tokens: 10, avail: []int64{10}},
				{at: time.Minute + time.Second, op: "reserve", tokens: 20, want: refused(tpm, 20, 10, time.Second, false)},
				{at: time.Minute + 2*time.Second, op: "reserve", tokens: 20, avail: []int64{0}},
				{at: time.Minute + 2*time.Second + 50*time.Millisecond, op: "fits", tokens: 1, want: refused(tpm, 1, 0, 50*time.Millisecond, false)},
				// Everything consumed has drained; the 20 still held binds.
				{at: 10 * time.Minute, op: "fits", tokens: 600, want: refused(tpm, 600, 580, 25*time.Second, true), avail: []int64{580}},
				{at: 10 * time.Minute, op: "cancel", res: 2, avail: []int64{600}},
			},
		},
		{
			name:  "settle gives the rest of the hold back at once; the charge drains",
			specs: []BucketSpec{tpm},
			steps: []step{
				{op: "reserve", tokens: 600},
				{op: "settle", res: 0, tokens: 100, ended: yes(), avail: []int64{500}},
				{at: 5 * time.Second, op: "fits", tokens: 1, avail: []int64{550}},
				{at: 20 * time.Second, op: "fits", tokens: 1, avail: []int64{600}},
			},
		},
		{
			name:  "adjust moves the usage so far from the hold into the window",
			specs: []BucketSpec{tpm},
			steps: []step{
				{op: "reserve", tokens: 100, avail: []int64{500}},
				{op: "adjust", res: 0, tokens: 30, avail: []int64{500}},                       // used 30, held 70
				{at: 3 * time.Second, op: "adjust", res: 0, tokens: 20, avail: []int64{530}},  // 30 drained; usage never shrinks
				{at: 3 * time.Second, op: "adjust", res: 0, tokens: 300, avail: []int64{330}}, // 270 more: 70 from the hold, 200 extra
				{at: 3 * time.Second, op: "settle", res: 0, tokens: 310, avail: []int64{320}},
				{at: 3 * time.Second, op: "settle", res: 0, tokens: 900, ended: no(), avail: []int64{320}},
			},
		},
		{
			name:  "negative after over-settlement, retry computed from below zero",
			specs: []BucketSpec{tpm},
			steps: []step{
				{op: "reserve", tokens: 600},
				{op: "settle", res: 0, tokens: 700, avail: []int64{-100}},
				{op: "reserve", tokens: 10, want: refused(tpm, 10, -100, 11*time.Second, false)},
				{op: "reserve", tokens: 0, want: refused(tpm, 0, -100, 10*time.Second, false)}, // as on Bedrock: 0 <= -100 is false
				{at: 11 * time.Second, op: "reserve", tokens: 10, avail: []int64{0}},
			},
		},
		{
			name:  "exactly-once end",
			specs: []BucketSpec{tpm},
			steps: []step{
				{op: "reserve", tokens: 100},
				{op: "settle", res: 0, tokens: 100, ended: yes(), avail: []int64{500}},
				{op: "settle", res: 0, tokens: 0, ended: no(), avail: []int64{500}},
				{op: "cancel", res: 0, ended: no(), avail: []int64{500}},
				{op: "adjust", res: 0, tokens: 300, avail: []int64{500}},
				{op: "reserve", tokens: 100, avail: []int64{400}}, // reuses the slot
				{op: "cancel", res: 0, ended: no(), avail: []int64{400}},
				{op: "cancel", res: 1, ended: yes(), avail: []int64{500}},
			},
		},
		{
			name:  "cancel gives the hold back, not what adjust consumed",
			specs: []BucketSpec{tpm},
			steps: []step{
				{op: "reserve", tokens: 300, avail: []int64{300}},
				{op: "adjust", res: 0, tokens: 100, avail: []int64{300}},
				{op: "cancel", res: 0, ended: yes(), avail: []int64{500}},
			},
		},
		{
			name:  "clock minute: holds outlive the minute, consumption does not",
			specs: []BucketSpec{{Name: "tpm", Kind: TokensPerMinute, Limit: 100}},
			w:     Windows{Minute: Clock},
			steps: []step{
				{at: 30 * time.Second, op: "reserve", tokens: 100, avail: []int64{0}},
				{at: 59 * time.Second, op: "reserve", tokens: 1, want: refused(BucketSpec{Name: "tpm", Kind: TokensPerMinute, Limit: 100}, 1, 0, hold, true)},
				{at: 60 * time.Second, op: "reserve", tokens: 40, want: refused(BucketSpec{Name: "tpm", Kind: TokensPerMinute, Limit: 100}, 40, 0, hold, true)},
				{at: 70 * time.Second, op: "settle", res: 0, tokens: 10, avail: []int64{90}}, // counted in the minute it settles in
				{at: 70 * time.Second, op: "reserve", tokens: 40, avail: []int64{50}},
				{at: 80 * time.Second, op: "adjust", res: 3, tokens: 60, avail: []int64{30}},
				{at: 119 * time.Second, op: "reserve", tokens: 31, want: refused(BucketSpec{Name: "tpm", Kind: TokensPerMinute, Limit: 100}, 31, 30, time.Second, false)},
				{at: 120 * time.Second, op: "settle", res: 3, tokens: 60, avail: []int64{100}},
			},
		},
		{
			name:  "clock minute: an extra charge lands in the current minute",
			specs: []BucketSpec{{Name: "tpm", Kind: TokensPerMinute, Limit: 100}},
			w:     Windows{Minute: Clock},
			steps: []step{
				{at: 50 * time.Second, op: "reserve", tokens: 30, avail: []int64{70}},
				{at: 70 * time.Second, op: "adjust", res: 0, tokens: 50, avail: []int64{50}},
				{at: 75 * time.Second, op: "settle", res: 0, tokens: 40, avail: []int64{50}},
				{at: 75 * time.Second, op: "settle", res: 0, tokens: 1000, avail: []int64{50}},
				{at: 120 * time.Second, op: "fits", tokens: 100, avail: []int64{100}},
			},
		},
		{
			name:  "fixed daily reset at 03:00 UTC",
			specs: []BucketSpec{tpd},
			w:     Windows{Day: Fixed, DayResetHour: 3},
			steps: []step{
				{op: "reserve", tokens: 1000, avail: []int64{0}},
				{op: "reserve", tokens: 1, want: refused(tpd, 1, 0, hold, true)},
				// Held an hour: the estimate moves to 20 s + (3,600 s - 20 s)/8.
				{at: time.Hour, op: "settle", res: 0, tokens: 1000, avail: []int64{0}},
				{at: time.Hour, op: "reserve", tokens: 1, want: refused(tpd, 1, 0, 16*time.Hour, false)},
				{at: 17*time.Hour - time.Nanosecond, op: "fits", tokens: 1, want: refused(tpd, 1, 0, time.Nanosecond, false)},
				{at: 17 * time.Hour, op: "reserve", tokens: 1000, avail: []int64{0}},
				{at: 17 * time.Hour, op: "fits", tokens: 1, want: refused(tpd, 1, 0, 467500*time.Millisecond, true)},
				{at: 18 * time.Hour, op: "cancel", res: 3, avail: []int64{1000}},
			},
		},
		{
			name:  "rolling day forgets each minute's consumption 24 hours later",
			specs: []BucketSpec{{Name: "tpd", Kind: TokensPerDay, Limit: 86400}},
			w:     Windows{Day: Rolling},
			steps: []step{
				{op: "reserve", tokens: 1000},
				{at: 30 * time.Second, op: "settle", res: 0, tokens: 1000}, // minute 10:00
				{at: 90 * time.Second, op: "reserve", tokens: 500},
				{at: 90 * time.Second, op: "settle", res: 1, tokens: 500, avail: []int64{84900}}, // minute 10:01
				{at: 2 * time.Minute, op: "reserve", tokens: 84900, avail: []int64{0}},
				// 1 token fits once 10:00's 1,000 are forgotten, at 10:00 tomorrow.
				{at: 2 * time.Minute, op: "fits", tokens: 1, want: &LimitError{Bucket: "tpd", Kind: TokensPerDay, Need: 1, Limit: 86400, Effective: 86400, RetryAfter: 24*time.Hour - 2*time.Minute}},
				{at: 2 * time.Minute, op: "cancel", res: 2, avail: []int64{84900}},
				// Not a 24-hour token bucket: nothing comes back before then.
				{at: 12 * time.Hour, op: "fits", tokens: 1, avail: []int64{84900}},
				{at: 24*time.Hour - time.Nanosecond, op: "reserve", tokens: 86400, want: &LimitError{Bucket: "tpd", Kind: TokensPerDay, Need: 86400, Available: 84900, Limit: 86400, Effective: 86400, RetryAfter: time.Minute + time.Nanosecond}},
				{at: 24 * time.Hour, op: "fits", tokens: 1, avail: []int64{85900}},
				{at: 24*time.Hour + time.Minute, op: "fits", tokens: 1, avail: []int64{86400}},
			},
		},
		{
			name:  "all or nothing across buckets; the longest wait binds; holds flagged",
			specs: []BucketSpec{tpm, tpd, rpm},
			steps: []step{
				{op: "reserve", tokens: 500, avail: []int64{100, 500, 1}},
				{op: "reserve", tokens: 400, want: refused(tpm, 400, 100, hold, true), avail: []int64{100, 500, 1}},
				{op: "reserve", tokens: 50, avail: []int64{50, 450, 0}},
				{op: "reserve", tokens: 10, want: &LimitError{Bucket: "rpm", Index: 2, Kind: RequestsPerMinute, Need: 1, Available: 0, Limit: 2, Effective: 2, RetryAfter: 30 * time.Second}, avail: []int64{50, 450, 0}},
				{at: time.Minute, op: "settle", res: 0, tokens: 500, avail: []int64{50, 450, 2}},
				// The minute bucket waits on the 50 still held (its 500 drain
				// in 50 s), the day bucket on its reset: both must pass.
				{at: time.Minute, op: "fits", tokens: 600, want: &LimitError{Bucket: "tpd", Index: 1, Kind: TokensPerDay, Need: 600, Available: 450, Limit: 1000, Effective: 1000, RetryAfter: 14*time.Hour - time.Minute, Holds: true}},
				{at: time.Minute, op: "cancel", res: 2, avail: []int64{100, 500, 2}},
			},
		},
		{
			name:  "only the buckets in the set are charged",
			specs: []BucketSpec{tpm, tpd},
			steps: []step{
				{op: "reserve", set: Bit(1), tokens: 300, avail: []int64{600, 700}},
				{op: "reserve", set: Bit(0), tokens: 600, avail: []int64{0, 700}},
			},
		},
		{
			name:  "never: the cost exceeds the limit",
			specs: []BucketSpec{tpm, {Name: "zero", Kind: TokensPerDay, Limit: 0}},
			steps: []step{
				{op: "reserve", set: Bit(0), tokens: 601, want: &LimitError{Bucket: "tpm", Kind: TokensPerMinute, Need: 601, Available: 600, Limit: 600, Effective: 600, Never: true}},
				{op: "reserve", tokens: 1, want: &LimitError{Bucket: "zero", Index: 1, Kind: TokensPerDay, Need: 1, Limit: 0, Never: true}},
				{op: "reserve", set: Bit(0), tokens: 600, avail: []int64{0, 0}},
				{op: "reserve", set: Bit(0), tokens: 1, want: refused(tpm, 1, 0, hold, true)},
			},
		},
		{
			name:  "rpm: counted at reserve, cancel gives it back, settle does not",
			specs: []BucketSpec{rpm},
			steps: []step{
				{op: "reserve", tokens: 1000, avail: []int64{1}},
				{op: "reserve", tokens: 1000, avail: []int64{0}},
				{op: "settle", res: 0, tokens: 5, avail: []int64{0}},
				{op: "cancel", res: 1, avail: []int64{1}},
				{at: 30 * time.Second, op: "fits", tokens: 1, avail: []int64{2}},
			},
		},
		{
			name:  "rpm clock: a cancel gives the request back only within its minute",
			specs: []BucketSpec{rpm},
			w:     Windows{Minute: Clock},
			steps: []step{
				{at: 50 * time.Second, op: "reserve", avail: []int64{1}},
				{at: 50 * time.Second, op: "reserve", avail: []int64{0}},
				{at: 55 * time.Second, op: "cancel", res: 0, avail: []int64{1}},
				{at: 65 * time.Second, op: "reserve", avail: []int64{1}},
				{at: 70 * time.Second, op: "cancel", res: 1, avail: []int64{1}}, // counted in the last minute
				{at: 70 * time.Second, op: "cancel", res: 2, avail: []int64{2}},
			},
		},
		{
			name:  "aimd: cut by 0.7, once per burst, floor, additive recovery",
			specs: []BucketSpec{{Name: "tpm", Kind: TokensPerMinute, Limit: 1000}},
			steps: []step{
				{op: "throttle", avail: []int64{700}},
				{at: 500 * time.Millisecond, op: "throttle", avail: []int64{700}}, // same burst
				// eff reaches 750 at 60.5 s, a minute after the last throttle.
				{at: 1 * time.Second, op: "fits", tokens: 701, want: &LimitError{Bucket: "tpm", Kind: TokensPerMinute, Need: 701, Available: 700, Limit: 1000, Effective: 700, RetryAfter: 59*time.Second + 500*time.Millisecond}},
				{at: 60 * time.Second, op: "fits", tokens: 1, avail: []int64{700}},
				{at: 60*time.Second + 500*time.Millisecond, op: "fits", tokens: 750, avail: []int64{750}},
				// Consumption drains at the effective limit: 750 per minute.
				{at: 61 * time.Second, op: "reserve", tokens: 750},
				{at: 61 * time.Second, op: "settle", res: 0, tokens: 750, avail: []int64{0}},
				{at: 62 * time.Second, op: "fits", tokens: 13, want: &LimitError{Bucket: "tpm", Kind: TokensPerMinute, Need: 13, Available: 12, Limit: 1000, Effective: 750, RetryAfter: 40 * time.Millisecond}},
				{at: 10 * time.Minute, op: "fits", tokens: 1, avail: []int64{1000}},
				{at: 10*time.Minute + 2*time.Second, op: "throttle"},
				{at: 10*time.Minute + 4*time.Second, op: "throttle"},
				{at: 10*time.Minute + 6*time.Second, op: "throttle"},
				{at: 10*time.Minute + 8*time.Second, op: "throttle"},
				{at: 10*time.Minute + 10*time.Second, op: "throttle"},
				{at: 10*time.Minute + 12*time.Second, op: "throttle"},
				{at: 10*time.Minute + 14*time.Second, op: "throttle"},
				{at: 10*time.Minute + 16*time.Second, op: "throttle", avail: []int64{100}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			replay(t, NewLedger(tt.specs, tt.w, t0), tt.steps)
		})
	}
}
