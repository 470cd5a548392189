// Package quota is the gateway's mirror of an account's Bedrock quotas: a
// Ledger of buckets (tokens per minute, tokens per day, requests per minute)
// and the one accounting primitive on them, the Reservation. A request
// reserves its admission charge from every bucket it draws from, all or
// nothing; while it streams the charge is adjusted toward the output seen so
// far; at the end it is settled with the real cost (the difference is given
// back, or charged extra) or cancelled (everything is given back). Exactly
// one Settle or Cancel ends a reservation; later calls are no-ops, so
// `defer res.Cancel(now)` right after a successful Reserve is always safe.
//
// Window rules mirror BEDROCK.md section 2, which leaves them undocumented
// by AWS and therefore makes them settings: a minute bucket either refills
// continuously (Refill, the default) or resets at every clock minute
// (Clock); a day bucket either resets daily at a fixed UTC hour (Fixed, the
// default) or refills continuously over 24 hours (Rolling).
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
