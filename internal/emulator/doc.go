// Package emulator is an offline Amazon Bedrock Runtime: `headroom emulate`.
// It serves the five runtime operations (InvokeModel, its response stream,
// Converse, ConverseStream, CountTokens), ListInferenceProfiles, and the
// Anthropic Messages API as both bedrock-runtime and bedrock-mantle serve it
// (messages.go: Anthropic server-sent events and errors) over the real wire
// formats, answers with deterministic text, and enforces quotas
// the way ../shared/BEDROCK.md says Bedrock does: reserve at admission from
// every matching bucket, adjust while output streams, settle at the end, and
// throttle with Bedrock's exact 429s. Several regions, each with its own
// buckets, are served from one process; scenarios and fault injection
// reproduce the situations of the user story. A scripted tool call
// (generation.tool_use, toolscript.go) lets a real agent run its tool loop.
//
// Each region keeps two ledgers: the bedrock-runtime buckets (account.go)
// and bedrock-mantle's input and output tokens per minute (mantle.go, whose
// comment is the specification the gateway's mirror follows).
//
// Account holds the quota state and can be driven without HTTP, with time as
// a parameter, by a discrete-event simulator. Server is an http.Handler, so
// tests and `serve --demo` run one in-process.
//
// The emulator plays real Bedrock against the gateway, so it must not share
// the gateway's ledger (internal/quota, internal/admission): its bucket code
// is its own, kept small enough to read as the specification. It shares only
// the facts and formulas of package bedrock. It must not read environment
// variables, use global state, or call anything on the network.
package emulator
