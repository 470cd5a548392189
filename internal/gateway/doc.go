// Package gateway is Headroom's front door: an http.Handler that speaks
// Bedrock Runtime (the five model operations, GET /inference-profiles passed
// through), authenticates developer keys, applies the max_tokens policy,
// admits each request through the fair queue over the mirrored ledger, sends
// it upstream, passes the answer through (streams frame by frame, flushed at
// once), and settles the ledger with the real usage. In shadow mode
// (Options.Shadow, shadow.go) the same path forwards every request
// untouched and records what it would have done.
//
// Invariants it keeps: every admitted request ends in exactly one settle or
// cancel on every path (errors, timeouts, panics, a client gone mid-stream,
// which is charged for what was generated); a retry happens only before the
// first byte reached the client; every response carries x-amzn-RequestId;
// every error the gateway itself produces is Bedrock-shaped and rendered by
// one writer; developer secrets are never logged.
//
// It must not read configuration files or the environment, open stores, or
// start listeners: the cli package builds its parts and hands them in. It
// holds no quota arithmetic of its own: charges come from bedrock's
// profiles, decisions from internal/admission.
package gateway
