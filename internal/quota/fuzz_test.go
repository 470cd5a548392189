package quota

import (
	"errors"
	"testing"
	"time"
)

// FuzzLedgerOps replays an arbitrary byte string as ledger operations and
// checks the running totals, the snapshot arithmetic and RetryAfter (once
// the holds end, when they bind) after every step. CI runs the seeds; run longer with
// go test -fuzz FuzzLedgerOps ./internal/quota.
func FuzzLedgerOps(f *testing.F) {
	f.Add([]byte{0, 10, 1, 200, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{3, 255, 0, 255, 0, 255, 1, 0, 2, 1, 5, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) < 1 {
			return
		}
		w := Windows{Minute: MinuteMode(ops[0] & 1), Day: DayMode(ops[0] >> 1 & 1), DayResetHour: int(ops[0]>>2) % 24}
		specs := []BucketSpec{
			{Name: "tpm", Kind: TokensPerMinute, Limit: 1000},
			{Name: "tpd", Kind: TokensPerDay, Limit: 20000},
			{Name: "rpm", Kind: RequestsPerMinute, Limit: 3},
			{Name: "input", Kind: InputTokensPerMinute, Limit: 1200},
			{Name: "output", Kind: OutputTokensPerMinute, Limit: 400},
		}
		now := t0
		l := NewLedger(specs, w, now)
		var live []Reservation
		for i := 1; i+1 < len(ops); i += 2 {
			op, arg := ops[i], int64(ops[i+1])
			now = now.Add(time.Duration(arg) * 97 * time.Millisecond)
			if op&0x80 != 0 {
				now = now.Add(time.Duration(arg) * time.Hour / 10)
			}
			set := Set(op>>3&15) | 1
			if set.Has(3) { // Mantle's buckets go together
				set |= Bit(4)
			}
			switch op & 7 {
			case 0, 1, 2:
				r, err := l.Reserve(now, set, Cost{Tokens: arg * 5, Input: arg * 4})
				if err == nil {
					live = append(live, r)
					break
				}
				var le *LimitError
				if !errors.As(err, &le) {
					t.Fatal(err)
				}
				if le.Never {
					break
				}
				if le.Holds { // only live reservations ending make room
					for _, r := range live {
						r.Cancel(now)
					}
					live = live[:0]
				}
				if l.Fits(now.Add(le.RetryAfter), set, Cost{Tokens: arg * 5, Input: arg * 4}) != nil {
					t.Fatalf("does not fit after RetryAfter %v", le.RetryAfter)
				}
				now = now.Add(le.RetryAfter)
			case 3:
				if len(live) > 0 {
					live[int(arg)%len(live)].Adjust(now, Cost{Tokens: arg * 7, Output: arg * 3})
				}
			case 4, 5:
				if len(live) > 0 {
					j := int(arg) % len(live)
					if op&7 == 4 {
						live[j].Settle(now, Cost{Tokens: arg * 9, Input: arg * 2, Output: arg * 6})
					} else {
						live[j].Cancel(now)
					}
					live = append(live[:j], live[j+1:]...)
				}
			case 6:
				l.Throttled(now, set)
			}
			checkInvariants(t, l, now)
		}
	})
}
