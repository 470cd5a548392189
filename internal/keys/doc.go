// Package keys is Headroom's developer keys: the secrets developers put in
// AWS_BEARER_TOKEN_BEDROCK, their per-key limits, and the Registry the
// gateway authenticates requests with.
//
// Only a SHA-256 hash of a secret is ever stored; a secret is shown once,
// when it is created, and must never be logged: Key prints without its hash.
// Keys are persisted through the Store interface declared here and
// implemented in internal/store/...; this package does no I/O of its own and
// imports nothing of Headroom's.
package keys
