package simulate

import "testing"

// TestHeadroomAtLeastAsGoodAsTheCap: through Headroom with the same hard
// 4,096 cap the team completes at least as many tasks as with Claude Code
// capped at 4,096 output tokens calling Bedrock directly (the best direct
// strategy), with no task failed but by the cap and at most 1% of the
// cap's 429s; and Headroom never receives a 429 from Bedrock, since its
// ledger mirrors Bedrock's accounting (holds stay whole until settled).
// Before the ledger held reservations as Bedrock does, it admitted calls
// Bedrock then throttled, and Headroom did worse than the cap (team-5: 110
// tasks against 114, with 126 429s; heavy-user: 72 against 84).
func TestHeadroomAtLeastAsGoodAsTheCap(t *testing.T) {
	strats, err := ParseStrategies("direct-4096,headroom-4096")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"team-5", "heavy-user"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := runBuiltin(t, name, Options{Strategies: strats})
			capped, headroom := strategy(t, r, "direct-4096"), strategy(t, r, "headroom-4096")
			t.Logf("completed: headroom-4096 %d, direct-4096 %d (demand %d); 429s: headroom-4096 %d client-visible, %d from Bedrock; direct-4096 %d",
				headroom.TasksCompleted, capped.TasksCompleted, r.Demand.TasksDemanded, headroom.Client429s, headroom.Upstream429s, capped.Client429s)
			if headroom.TasksCompleted < capped.TasksCompleted {
				t.Errorf("headroom-4096 completed %d tasks, direct-4096 %d: want at least as many", headroom.TasksCompleted, capped.TasksCompleted)
			}
			// The hard cap fails long edits as direct-4096 does; nothing
			// else may fail a task.
			if other := headroom.TasksFailed - headroom.TasksFailedByCap; headroom.Upstream429s != 0 || other != 0 {
				t.Errorf("headroom-4096: %d 429s from Bedrock, %d tasks failed not by the cap; want none", headroom.Upstream429s, other)
			}
			if headroom.Client429s > capped.Client429s/100 {
				t.Errorf("headroom-4096: %d client-visible 429s, direct-4096 %d: want at most 1%% as many", headroom.Client429s, capped.Client429s)
			}
		})
	}
}

// TestLearnedPolicyNeverFailsATaskThroughTheCap is issue 10's check of the
// learned policy (Headroom's default, admission.OutputPolicy with serve's
// defaults) in team-5, team-50 and heavy-user: no task fails because
// max_tokens cut an answer (a cut tool call's repeat, recognised by its
// tool_use id, gets a larger cap; so does Claude Code's recovery turn), and
// the team completes at least as many tasks as through the hard 4,096 cap,
// which fails every task with a write larger than 4,096 tokens.
//
// It also checks issue 10's bound on the mean reservation: within 1.5x
// of the hard cap's. Serve's defaults (p95, room fraction 0) meet it; p99,
// or keeping more when the bucket has room (room_fraction 0.1), did not
// (1.9-2.8x, and 429s back: BENCHMARKS.md).
func TestLearnedPolicyNeverFailsATaskThroughTheCap(t *testing.T) {
	strats, err := ParseStrategies("headroom-4096,headroom")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"team-5", "team-50", "heavy-user"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc, err := Builtin(name)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Run(t.Context(), sc, Options{Strategies: strats, Parallel: 1})
			if err != nil {
				t.Fatal(err)
			}
			hard, learned := strategy(t, r, "headroom-4096"), strategy(t, r, "headroom")
			ratio := learned.MeanReservation / hard.MeanReservation
			t.Logf("learned: %d/%d completed, %d failed by the cap, %d escalations, %.0f reserved per call (%.2fx); hard cap: %d completed, %d failed by the cap, %.0f reserved",
				learned.TasksCompleted, learned.TasksDemanded, learned.TasksFailedByCap, learned.Escalations, learned.MeanReservation, ratio,
				hard.TasksCompleted, hard.TasksFailedByCap, hard.MeanReservation)
			if learned.TasksFailedByCap != 0 {
				t.Errorf("learned policy: %d tasks failed by the cap, want none", learned.TasksFailedByCap)
			}
			if learned.TasksCompleted < hard.TasksCompleted {
				t.Errorf("learned policy completed %d tasks, the hard cap %d: want at least as many", learned.TasksCompleted, hard.TasksCompleted)
			}
			if hard.TasksFailedByCap == 0 || learned.Escalations == 0 {
				t.Errorf("the hard cap failed %d tasks and the learned policy escalated %d calls: the workload has no long edit to test", hard.TasksFailedByCap, learned.Escalations)
			}
			if ratio > 1.5 {
				t.Errorf("learned policy reserves %.2fx the hard cap per call, want at most 1.5x", ratio)
			}
		})
	}
}
