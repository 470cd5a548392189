// Package quota is the gateway's mirror of an account's Bedrock quotas: a
// Ledger of buckets (tokens per minute, tokens per day, requests per minute)
// and the one accounting primitive on them, the Reservation. A request
// reserves its admission charge from every bucket it draws from, all or
// nothing; while it streams, the cost of the output seen so far is counted
// as consumed; at the end it is settled with the real cost (consumed, even
// beyond the reservation; the rest of the hold is given back) or cancelled
// (the hold and the request are given back). Exactly one Settle or Cancel
// ends a reservation; later calls are no-ops, so `defer res.Cancel(now)`
// right after a successful Reserve is always safe.
//
// The accounting is Bedrock's as the emulator (internal/emulator) plays
// it, so that the gateway never forwards a call the upstream throttles: a
// bucket counts what was consumed in its window (used) and what live
// reservations hold (reserved), and a request fits when its charge is at
// most the limit less both. A hold stays whole, outside the window, until
// the request is adjusted or settled: only consumption is given back by
// the window. Window rules mirror BEDROCK.md section 2, which leaves them
// undocumented by AWS and therefore makes them settings: a minute bucket
// either drains consumption continuously (Refill, the default) or forgets
// it at every clock minute (Clock); a day bucket either forgets it daily at
// a fixed UTC hour (Fixed, the default) or 24 hours after the minute it was
// consumed in (Rolling). internal/simulate's differential test drives this
// ledger and the emulator with the same operations and checks that they
// admit and refuse the same requests.
//
// Time is always a parameter: nothing here reads the wall clock, sleeps or
// starts goroutines, so the simulator can run a day in a second on the same
// code. A ledger only ever moves forward in time: a `now` earlier than one
// already seen is treated as the latest time seen.
//
// The package must not know about HTTP, keys, fairness or scopes (the gateway
// computes which buckets a request draws from; internal/admission decides who
// goes first) and must import nothing else of Headroom's. The emulator keeps
// its own bucket code on purpose, so that a bug here cannot hide by being
// mirrored on both sides.
package quota
