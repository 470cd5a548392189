package quota

import (
	"fmt"
	"math"
	"math/bits"
	"time"
)

// Kind is what a bucket counts.
type Kind uint8

const (
	TokensPerMinute   Kind = iota // tpm
	TokensPerDay                  // tpd
	RequestsPerMinute             // rpm
	// InputTokensPerMinute is Mantle's input bucket (input-tpm): it holds
	// a request's Cost.Input from admission to settlement.
	InputTokensPerMinute
	// OutputTokensPerMinute is Mantle's output bucket (output-tpm): it
	// counts Cost.Output as it is consumed, and admits a request only
	// while what it counts is at most its limit.
	OutputTokensPerMinute

	numKinds = 5
)

// String returns the configuration spelling: "tpm", "tpd", "rpm",
// "input-tpm" or "output-tpm".
func (k Kind) String() string {
	switch k {
	case TokensPerMinute:
		return "tpm"
	case TokensPerDay:
		return "tpd"
	case RequestsPerMinute:
		return "rpm"
	case InputTokensPerMinute:
		return "input-tpm"
	case OutputTokensPerMinute:
		return "output-tpm"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Phrase names the kind for people, as in "tokens-per-minute bucket".
func (k Kind) Phrase() string {
	switch k {
	case TokensPerMinute:
		return "tokens-per-minute"
	case TokensPerDay:
		return "tokens-per-day"
	case RequestsPerMinute:
		return "requests-per-minute"
	case InputTokensPerMinute:
		return "input-tokens-per-minute"
	case OutputTokensPerMinute:
		return "output-tokens-per-minute"
	}
	return k.String()
}

// Daily reports whether the bucket's window is a day.
func (k Kind) Daily() bool { return k == TokensPerDay }

// ParseKind reads the configuration spelling of a kind.
func ParseKind(s string) (Kind, error) {
	switch s {
	case "tpm":
		return TokensPerMinute, nil
	case "tpd":
		return TokensPerDay, nil
	case "rpm":
		return RequestsPerMinute, nil
	case "input-tpm":
		return InputTokensPerMinute, nil
	case "output-tpm":
		return OutputTokensPerMinute, nil
	}
	return 0, fmt.Errorf("quota kind %q is not tpm, tpd, rpm, input-tpm or output-tpm", s)
}

// part is the Cost field a token bucket of kind k counts, as an index of
// Cost.parts; requests-per-minute buckets count none.
func (k Kind) part() int {
	switch k {
	case InputTokensPerMinute:
		return partInput
	case OutputTokensPerMinute:
		return partOutput
	case RequestsPerMinute:
		return partNone
	}
	return partTokens
}

const (
	partTokens = iota
	partInput
	partOutput
	numParts

	partNone = -1
)

// Cost is one request's charge as each kind of bucket counts it. The
// runtime endpoint's token buckets (tpm, tpd) count one combined figure,
// Tokens: input, cache writes and output × burndown. Mantle's buckets
// count input and output apart (BEDROCK.md section 6): input-tpm buckets
// count Input, output-tpm buckets Output. Requests-per-minute buckets
// count the request whatever it costs. A reservation holds, consumes and
// refunds each part on its own, in the buckets that count it: so a Mantle
// request reserves Cost{Input: input + max_tokens} (nothing of its
// output), adjusts with Cost{Output: generated so far}, and settles at
// Cost{Input: input, Output: generated}.
type Cost struct {
	Tokens, Input, Output int64
}

// Tokens is the cost of a runtime request: n in every token bucket that
// counts the combined charge.
func Tokens(n int64) Cost { return Cost{Tokens: n} }

// Of returns what a bucket of kind k counts of c: one request in a
// requests-per-minute bucket.
func (c Cost) Of(k Kind) int64 {
	if k == RequestsPerMinute {
		return 1
	}
	return c.parts()[k.part()]
}

// Total is the sum of the parts: what the request costs its key, in
// tokens (the gateway never mixes runtime and Mantle parts in one cost).
// It saturates at the largest int64, as the cost formulas do.
func (c Cost) Total() int64 {
	t := c.Tokens
	for _, p := range [...]int64{c.Input, c.Output} {
		if p > 0 && t > math.MaxInt64-p {
			return math.MaxInt64
		}
		t += p
	}
	return t
}

// Max returns the larger of c and d in each part.
func (c Cost) Max(d Cost) Cost {
	return Cost{max(c.Tokens, d.Tokens), max(c.Input, d.Input), max(c.Output, d.Output)}
}

// Covers reports whether c is at least d in every part.
func (c Cost) Covers(d Cost) bool {
	return c.Tokens >= d.Tokens && c.Input >= d.Input && c.Output >= d.Output
}

// Add returns the sum of c and d, part by part.
func (c Cost) Add(d Cost) Cost {
	return Cost{c.Tokens + d.Tokens, c.Input + d.Input, c.Output + d.Output}
}

// Sub returns c less d, part by part.
func (c Cost) Sub(d Cost) Cost {
	return Cost{c.Tokens - d.Tokens, c.Input - d.Input, c.Output - d.Output}
}

// nonNegative returns c with negative parts raised to 0.
func (c Cost) nonNegative() Cost { return c.Max(Cost{}) }

func (c Cost) parts() [numParts]int64 { return [numParts]int64{c.Tokens, c.Input, c.Output} }

// MinuteMode says how per-minute buckets (TPM, RPM, input and output TPM)
// regain capacity.
type MinuteMode uint8

const (
	// Refill drains consumption continuously at the effective limit per
	// 60 s (default): a token bucket whose reservations stay held.
	Refill MinuteMode = iota
	// Clock is a counter of consumption reset at every clock minute.
	Clock
)

// DayMode says how per-day buckets regain capacity.
type DayMode uint8

const (
	// Fixed is a counter of consumption reset every day at
	// Windows.DayResetHour UTC (default).
	Fixed DayMode = iota
	// Rolling counts what was consumed in the last 24 hours, by the
	// minute: what is consumed during a UTC minute is given back when the
	// same minute begins the next day (so after 23 h 59 m to 24 h).
	Rolling
)

// ParseWindows reads the configuration spellings ("refill"/"clock",
// "fixed"/"rolling"; empty means the default).
func ParseWindows(minute, day string, resetHour int) (Windows, error) {
	var w Windows
	switch minute {
	case "", "refill":
	case "clock":
		w.Minute = Clock
	default:
		return w, fmt.Errorf("minute window %q is not refill or clock", minute)
	}
	switch day {
	case "", "fixed":
	case "rolling":
		w.Day = Rolling
	default:
		return w, fmt.Errorf("day window %q is not fixed or rolling", day)
	}
	if resetHour < 0 || resetHour > 23 {
		return w, fmt.Errorf("day reset hour %d is not 0-23", resetHour)
	}
	w.DayResetHour = resetHour
	return w, nil
}

// Windows holds the window rules of one ledger. The zero value is the
// default: refilling minutes, days reset at 00:00 UTC.
type Windows struct {
	Minute MinuteMode
	Day    DayMode
	// DayResetHour is the UTC hour (0-23) at which Fixed day buckets reset
	// and at which every day's label (Ledger.Day) changes.
	DayResetHour int
	// HoldEstimate is how long a reservation is expected to be held before
	// any has settled; the ledger then learns it (Ledger.HoldEstimate).
	// It only shapes the waits of requests that live holds keep out
	// (LimitError.Holds). 0 means DefaultHoldEstimate.
	HoldEstimate time.Duration
}

// DefaultHoldEstimate is Windows.HoldEstimate when unset: about one
// Claude Code call of a few thousand output tokens.
const DefaultHoldEstimate = 20 * time.Second

// BucketSpec configures one bucket.
type BucketSpec struct {
	Name string
	Kind Kind
	// Limit is tokens (TPM, TPD, input and output TPM) or requests (RPM)
	// per window. A limit of 0 admits nothing (Bedrock's "applied value 0"
	// on new accounts).
	Limit int64
}

// MaxBuckets is the most buckets a Ledger holds: a Set is a 64-bit mask.
const MaxBuckets = 64

// Set is a bitmask of bucket indexes (the order of the specs given to
// NewLedger): the buckets one request draws from.
type Set uint64

// Bit returns the Set holding only bucket i.
func Bit(i int) Set { return 1 << uint(i) }

// Has reports whether bucket i is in s.
func (s Set) Has(i int) bool { return s&(1<<uint(i)) != 0 }

// Len returns the number of buckets in s.
func (s Set) Len() int { return bits.OnesCount64(uint64(s)) }

// Each calls f with every bucket index in s, lowest first.
func (s Set) Each(f func(i int)) {
	for m := uint64(s); m != 0; m &= m - 1 {
		f(bits.TrailingZeros64(m))
	}
}
