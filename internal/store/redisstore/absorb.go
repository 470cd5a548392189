package redisstore

import (
	"context"
	"strconv"
)

// Absorb publishes what a replica used on its own while Redis did not
// answer (README, "Replicas on Redis", when_down: local_share): a.Used is
// what it consumed in each bucket (a minute bucket's last minute of it),
// a.Keys what it charged each key, a.Holds its requests still in flight.
// gen is the generation the replica last heard before it went on alone:
// if Redis lost the ledger since (a restart without persistence), nothing
// is absorbed and the reply's outcome is Gone, for the replica to
// re-publish all its share (Restore) instead. token names this share of
// the replica's: a second Absorb with it (a retry after a lost reply)
// changes nothing, so what was used is counted exactly once.
func (l *Ledger) Absorb(ctx context.Context, token, gen string, a RestoreArgs) (Reply, error) {
	return l.run(ctx, "absorb", a.Day, l.publishArgs([]any{token, gen}, a)...)
}

// publishArgs appends a to args in the script's publish format.
func (l *Ledger) publishArgs(args []any, a RestoreArgs) []any {
	args = append(args, len(a.Used))
	for i, n := range a.Used {
		args = append(args, i, n)
	}
	args = append(args, len(a.Keys))
	for k, n := range a.Keys {
		args = append(args, k, n)
	}
	for _, h := range a.Holds {
		w := h.Weight
		if w <= 0 {
			w = 1
		}
		args = append(args, h.ID, setArg(h.Set&l.all()), h.Held.Tokens, h.Held.Input, h.Held.Output,
			h.Key, h.Tokens, strconv.FormatFloat(w, 'g', -1, 64))
	}
	return args
}
