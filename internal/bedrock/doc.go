// Package bedrock holds what Headroom knows about Amazon Bedrock as code:
// model identifiers, the output burndown table, the accounting profiles that
// say what a request reserves at admission and what it costs at settlement,
// request and response wire types, and the exception names with their HTTP
// statuses. Every fact cites ../shared/BEDROCK.md.
//
// It is shared by the emulator and the gateway, so it holds formulas and
// facts only: no quota state, no clocks, no I/O beyond rendering an error.
// It imports nothing else of Headroom's.
package bedrock
