package cli

import "runtime/debug"

// serveGCPercent is the garbage collector's target for `headroom serve`
// when GOGC is not set: the heap may grow to five times what is live
// before a collection, instead of Go's default of twice.
//
// Why: the gateway's live heap is small (a few MB idle, tens of MB with
// 1,000 open streams) and almost everything it allocates per request is
// net/http's short-lived garbage, so at GOGC=100 the collector and its
// allocation assists were ~12% of the gateway's CPU at saturation. With
// 400, BenchmarkGatewayInvokeSmall takes 63-66 µs instead of 73-84 µs per
// request (same run, alternated), at the price of ~20 MB more RSS after a
// saturation run; 1,000 open streams stay under 100 MB (BENCHMARKS.md).
// GOGC and GOMEMLIMIT, when set, win as usual.
const serveGCPercent = 400

// tuneServeGC applies serveGCPercent unless GOGC is set (getenv is
// os.Getenv outside tests) and returns what puts the previous setting back,
// for the tests that run serve in-process.
func tuneServeGC(getenv func(string) string) (restore func()) {
	if getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(serveGCPercent)
	return func() { debug.SetGCPercent(old) }
}
