// Package admission decides which request goes to an upstream next: it
// queues requests that do not fit the mirror ledger (internal/quota) instead
// of answering 429, shares each bucket between developer keys in proportion
// to their weights, protects a fraction of every daily bucket for each key,
// enforces per-key daily budgets and concurrency caps and a global in-flight
// cap, and computes Retry-After from the ledger when a deadline cannot be
// met. It also holds the max_tokens policy (policy.go).
//
// The core (Controller.Enqueue, Pump, NextWake and the Ticket methods) takes
// time as a parameter and never blocks, sleeps or reads the clock, so the
// simulator drives it on a virtual clock. Controller.Admit is the thin
// blocking wrapper the gateway uses: it reads the wall clock, waits on a
// per-ticket channel, and keeps one timer per controller that exists only
// while someone waits.
//
// Fair order: per-key FIFO; across keys, start-time fair queueing on
// reserved tokens divided by weight, corrected at settlement to the tokens
// really charged, with no credit for idle time (an idle key's share is lent
// to the others: work-conserving). When the fair-next request does not fit
// a bucket, requests of other keys that draw from that bucket wait behind
// it (no bypass, so a large request is never starved by small ones) as long
// as it can still fit before its deadline; requests that draw only from
// other buckets go on, and keys held back by their own caps (concurrency,
// budget, protected shares) block no one.
//
// It must not know HTTP or Bedrock wire formats beyond bedrock.Request (the
// gateway maps *TooLarge to ValidationException and *Refusal to a 429), and
// it must not keep quota arithmetic of its own: the ledger is the only
// source of bucket state.
package admission
