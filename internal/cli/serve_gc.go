package cli

import "runtime/debug"

// serveGCPercent is the garbage collector's target for `headroom serve`
// when GOGC is not set: the heap may grow to five times what is live
// before a collection, instead of Go's default of twice.
//
// Why: the gateway's live heap is small (a few MB idle, tens of MB with
// 1,000 open streams) and almost everything it allocates per request is
// net/http's short-lived garbage, so at saturation the collector and its
// allocation assists were ~12% of the gateway's CPU. At 400 they are about
// a quarter of that; scripts/bench-gateway.sh measured +10-15% saturation
// throughput, with RSS still well inside the limits (BENCHMARKS.md).
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
