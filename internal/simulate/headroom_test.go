package simulate

import "testing"

// TestHeadroomAtLeastAsGoodAsTheCap: through Headroom the team completes at
// least as many tasks as with Claude Code capped at 4,096 output tokens
// calling Bedrock directly (the best direct strategy), and no client ever
// sees a 429; nor does Headroom receive one from Bedrock, since its ledger
// mirrors Bedrock's accounting (holds stay whole until settled). Before the
// ledger held reservations as Bedrock does, it admitted calls Bedrock then
// throttled, and Headroom did worse than the cap (team-5: 110 tasks against
// 114, with 126 429s; heavy-user: 72 against 84).
func TestHeadroomAtLeastAsGoodAsTheCap(t *testing.T) {
	strats, err := ParseStrategies("direct-4096,headroom")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"team-5", "heavy-user"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := runBuiltin(t, name, Options{Strategies: strats})
			capped, headroom := strategy(t, r, "direct-4096"), strategy(t, r, "headroom")
			t.Logf("completed: headroom %d, direct-4096 %d (demand %d); 429s: headroom %d client-visible, %d from Bedrock; direct-4096 %d",
				headroom.TasksCompleted, capped.TasksCompleted, r.Demand.TasksCompleted, headroom.Client429s, headroom.Upstream429s, capped.Client429s)
			if headroom.TasksCompleted < capped.TasksCompleted {
				t.Errorf("headroom completed %d tasks, direct-4096 %d: want at least as many", headroom.TasksCompleted, capped.TasksCompleted)
			}
			if headroom.Client429s != 0 || headroom.Upstream429s != 0 || headroom.TasksFailed != 0 {
				t.Errorf("headroom: %d client-visible 429s, %d from Bedrock, %d failed tasks; want none", headroom.Client429s, headroom.Upstream429s, headroom.TasksFailed)
			}
		})
	}
}
