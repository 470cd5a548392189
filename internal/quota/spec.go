package quota

import (
	"fmt"
	"math/bits"
	"time"
)

// Kind is what a bucket counts.
type Kind uint8

const (
	TokensPerMinute   Kind = iota // tpm
	TokensPerDay                  // tpd
	RequestsPerMinute             // rpm

	numKinds = 3
)

// String returns the configuration spelling: "tpm", "tpd" or "rpm".
func (k Kind) String() string {
	switch k {
	case TokensPerMinute:
		return "tpm"
	case TokensPerDay:
		return "tpd"
	case RequestsPerMinute:
		return "rpm"
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
	}
	return 0, fmt.Errorf("quota kind %q is not tpm, tpd or rpm", s)
}

// MinuteMode says how per-minute buckets (TPM and RPM) regain capacity.
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
	// Limit is tokens (TPM, TPD) or requests (RPM) per window. A limit of 0
	// admits nothing (Bedrock's "applied value 0" on new accounts).
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
