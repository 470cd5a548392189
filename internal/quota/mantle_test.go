package quota

import (
	"math"
	"testing"
	"time"
)

func costOf(tokens, input, output int64) *Cost {
	return &Cost{Tokens: tokens, Input: input, Output: output}
}

// TestMantleBuckets replays Mantle's ledger (BEDROCK.md section 6): the
// input bucket holds input + max_tokens from admission to settlement and
// then counts the input alone; the output bucket holds nothing, counts
// output as it is generated, and admits nothing while what it counts is
// over its limit, until its refill drains the debt (an exact wait).
func TestMantleBuckets(t *testing.T) {
	l := NewLedger([]BucketSpec{
		{Name: "in", Kind: InputTokensPerMinute, Limit: 1000},
		{Name: "out", Kind: OutputTokensPerMinute, Limit: 500},
		{Name: "tpm", Kind: TokensPerMinute, Limit: 700}, // a runtime bucket beside them counts Tokens only
	}, Windows{}, t0)
	mantle := Bit(0) | Bit(1)
	replay(t, l, []step{
		// Admission: input + max_tokens held in the input bucket, nothing in the output bucket.
		{op: "reserve", set: mantle, cost: costOf(0, 800, 0), avail: []int64{200, 500, 700}},
		// The input bucket binds, on the hold: only its end makes room.
		{op: "fits", set: mantle, cost: costOf(0, 300, 0),
			want: &LimitError{Bucket: "in", Index: 0, Kind: InputTokensPerMinute, Need: 300, Available: 200,
				Limit: 1000, Effective: 1000, RetryAfter: DefaultHoldEstimate, Holds: true}},
		// Output counted as it streams, none of it out of the input hold.
		{at: time.Second, op: "adjust", res: 0, cost: costOf(0, 0, 400), avail: []int64{200, 100, 700}},
		// Within its limit, the output bucket admits a request of no output hold.
		{at: time.Second, op: "fits", set: mantle, cost: costOf(0, 200, 0)},
		{at: time.Second, op: "adjust", res: 0, cost: costOf(0, 0, 900), avail: []int64{200, -400, 700}},
		// In debt, it admits nothing until the refill (500 a minute) drains 400: 48 s.
		{at: time.Second, op: "fits", set: mantle, cost: costOf(0, 100, 0),
			want: &LimitError{Bucket: "out", Index: 1, Kind: OutputTokensPerMinute, Need: 0, Available: -400,
				Limit: 500, Effective: 500, RetryAfter: 48 * time.Second}},
		{at: 49*time.Second - 1, op: "fits", set: Bit(1),
			want: &LimitError{Bucket: "out", Index: 1, Kind: OutputTokensPerMinute, Need: 0, Available: -1,
				Limit: 500, Effective: 500, RetryAfter: 1}},
		{at: 49 * time.Second, op: "fits", set: Bit(1)},
		// Settlement: the input bucket keeps input + cache writes (150)
		// and gives the rest of its hold back; the output is final at 1,000.
		{at: 49 * time.Second, op: "settle", res: 0, cost: costOf(0, 150, 1000), ended: yes(), avail: []int64{850, -100, 700}},
		// 60 s later both windows drained 1,000 and 500.
		{at: 109 * time.Second, op: "reserve", set: mantle, cost: costOf(0, 1000, 0), avail: []int64{0, 400, 700}},
		{at: 109 * time.Second, op: "cancel", res: 1, ended: yes(), avail: []int64{1000, 400, 700}},
		// A runtime cost draws nothing from Mantle's buckets, and a Mantle one nothing from the runtime's.
		{at: 109 * time.Second, op: "reserve", cost: costOf(700, 1000, 0), avail: []int64{0, 400, 0}},
		{at: 109 * time.Second, op: "settle", res: 2, cost: costOf(100, 10, 20), ended: yes(), avail: []int64{990, 380, 600}},
		// A cost over the input limit never fits; the output part of a cost is never too large at admission.
		{at: 109 * time.Second, op: "fits", set: mantle, cost: costOf(0, 1001, 0),
			want: &LimitError{Bucket: "in", Index: 0, Kind: InputTokensPerMinute, Need: 1001, Available: 990,
				Limit: 1000, Effective: 1000, Never: true}},
	})
}

// TestMantleRequestWaitsForOutputDebt: the wait of a request kept out by
// output debt is exact, and the refill (not a settlement) lets it in.
func TestMantleRequestWaitsForOutputDebt(t *testing.T) {
	l := NewLedger([]BucketSpec{
		{Name: "in", Kind: InputTokensPerMinute, Limit: 100000},
		{Name: "out", Kind: OutputTokensPerMinute, Limit: 6000},
	}, Windows{}, t0)
	r, err := l.Reserve(t0, l.All(), Cost{Input: 20000})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Cancel(t0)
	r.Adjust(t0, Cost{Output: 9000}) // 3,000 over: half a minute of refill
	w, never := l.Wait(t0, l.All(), Cost{Input: 20000})
	if never || w != 30*time.Second {
		t.Fatalf("Wait = %v, never %v; want 30s", w, never)
	}
	if err := l.Fits(t0.Add(w-time.Nanosecond), l.All(), Cost{Input: 20000}); err == nil {
		t.Fatal("fits before the debt drained")
	}
	if _, err := l.Reserve(t0.Add(w), l.All(), Cost{Input: 20000}); err != nil {
		t.Fatalf("after the debt drained: %v", err)
	}
}

func TestCostArithmetic(t *testing.T) {
	a, b := Cost{Tokens: 5, Input: 1, Output: 9}, Cost{Tokens: 3, Input: 4, Output: 9}
	if got, want := a.Max(b), (Cost{5, 4, 9}); got != want {
		t.Errorf("Max = %+v, want %+v", got, want)
	}
	if a.Covers(b) || !a.Max(b).Covers(b) || !a.Covers(a) {
		t.Error("Covers is not part by part")
	}
	if got, want := a.Add(b).Sub(b), a; got != want {
		t.Errorf("Add then Sub = %+v, want %+v", got, want)
	}
	if got := a.Total(); got != 15 {
		t.Errorf("Total = %d, want 15", got)
	}
	for k, want := range map[Kind]int64{TokensPerMinute: 5, TokensPerDay: 5, RequestsPerMinute: 1, InputTokensPerMinute: 1, OutputTokensPerMinute: 9} {
		if got := a.Of(k); got != want {
			t.Errorf("Of(%v) = %d, want %d", k, got, want)
		}
		if p, err := ParseKind(k.String()); err != nil || p != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), p, err)
		}
	}
}

func TestCostTotalSaturates(t *testing.T) {
	if got := (Cost{Input: math.MaxInt64, Output: 5}).Total(); got != math.MaxInt64 {
		t.Errorf("Total = %d, want MaxInt64", got)
	}
}
