// Package admission decides which request goes to an upstream next: it
// queues requests that do not fit the mirror ledger (internal/quota) instead
// of answering 429, shares each bucket between developer keys in proportion
// to their weights, protects a fraction of every daily bucket for each key,
// enforces per-key daily budgets and concurrency caps and a global in-flight
// cap, and computes Retry-After from the ledger when a deadline cannot be
// met; a request that a daily limit keeps out past its deadline is refused
// as soon as that is certain, not at the deadline. It also holds the
// max_tokens policy (policy.go). In shadow mode, Controller.Shadow grants
// every request at once and says what Admit would have done (shadow.go).
//
// Each upstream has its own Controller, but a key's daily budget and
// concurrency cap are the key's across all of them: the controllers of one
// server share a Budgets (budgets.go), and a request ending in one pumps
// the others whose waiting requests those limits held back.
//
// The core (Controller.Enqueue, Pump, NextWake and the Ticket methods) takes
// time as a parameter and never blocks, sleeps or reads the clock, so the
// simulator drives it on a virtual clock. Controller.Admit is the thin
// blocking wrapper the gateway uses: it reads the wall clock, waits on a
// per-ticket channel, and keeps one timer per controller that exists only
// while someone waits or a refund of an Admit ticket is held back.
//
// Fair order: per-key FIFO; across keys, start-time fair queueing on
// tokens divided by weight, with no credit for idle time (an idle key's
// share is lent to the others: work-conserving). A request in flight
// counts at its expected cost (its reservation scaled by its key's recent
// cost-to-reservation ratio) and at its real cost once it ends; the virtual
// time keys come back to never carries unmeasured reservations (fair.go).
// Ticket.SettleAfter ends a request in fair order at once while the
// ledger's refund waits out the gateway's settle delay (refund.go).
//
// When the fair-next request does not fit a bucket, requests of other keys
// that draw from that bucket wait behind it (no bypass, so a large request
// is never starved by small ones) as long as it can still fit before its
// deadline; requests that draw only from other buckets go on, and keys
// held back by their own caps (concurrency, budget, protected shares)
// block no one.
//
// It must not know HTTP or Bedrock wire formats beyond bedrock.Request (the
// gateway maps *TooLarge to ValidationException and *Refusal to a 429), and
// it must not keep quota arithmetic of its own: the ledger is the only
// source of bucket state.
package admission
