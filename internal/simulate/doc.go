// Package simulate replays a team's day of Claude Code work against a Bedrock
// quota on a virtual clock, once per strategy on the same workload, and
// measures what each strategy lets the team get done: tasks completed and
// failed, client-visible 429s, task times, fairness between developers and
// how much of the binding quota was used.
//
// Claude Code is played as measured (BEDROCK.md section 6): cut text gets
// three recovery turns, then its task fails; a cut tool call is repeated
// whole, then its task fails; a Retry-After above 60 s is given up on. The
// no-quota run fixes each developer's demand, which every strategy then
// faces, so that no strategy completes more tasks than were asked.
//
// It is a discrete-event simulation: an event heap and a virtual clock,
// nothing sleeps, and a seed fixes every random draw, so a run is
// reproducible to the byte. Bedrock is played by the emulator's accounting
// (package emulator) and the Headroom strategy runs the gateway's real
// ledger and admission code (packages quota and admission) with the
// simulated time passed in as `now`.
//
// The package must not keep quota buckets of its own: every admission,
// throttle and settlement comes from the emulator or the gateway code it
// drives, so that the simulation measures that code and not a copy of it.
// It starts no goroutines that outlive Run, reads no environment and
// writes only where the caller asks (charts and the report).
package simulate
