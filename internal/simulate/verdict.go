package simulate

import (
	"fmt"
	"strings"

	"github.com/dustin/go-humanize"
)

// verdict is one sentence that says what the run shows, for the top of the
// report: what Headroom got done next to CLAUDE_CODE_MAX_OUTPUT_TOKENS=4096
// and Claude Code's defaults, with the failures by the cap and the 429s
// that tell them apart. It names only strategies the run compared.
func (r *Result) verdict() string {
	find := func(name string) *StrategyResult {
		for i := range r.Strategies {
			if r.Strategies[i].Name == name {
				return &r.Strategies[i]
			}
		}
		return nil
	}
	outcome := func(s *StrategyResult) string {
		var parts []string
		if s.TasksFailedByCap > 0 {
			parts = append(parts, fmt.Sprintf("%s failed by the cap", humanize.Comma(int64(s.TasksFailedByCap))))
		} else {
			parts = append(parts, "none failed by the cap")
		}
		if other := s.TasksFailed - s.TasksFailedByCap; other > 0 {
			parts = append(parts, fmt.Sprintf("%s failed on 429s", humanize.Comma(int64(other))))
		}
		switch s.Client429s {
		case 0:
			parts = append(parts, "no 429")
		case 1:
			parts = append(parts, "1 429")
		default:
			parts = append(parts, humanize.Comma(int64(s.Client429s))+" 429s")
		}
		return fmt.Sprintf("%s (%s)", humanize.Comma(int64(s.TasksCompleted)), strings.Join(parts, ", "))
	}
	n := humanize.Comma(int64(r.Demand.TasksDemanded))
	var clauses []string
	lead := ""
	if h := find("headroom"); h != nil {
		lead = fmt.Sprintf("Of %s tasks demanded in %s, Headroom's default policy completed %s", n, r.Scenario, outcome(h))
	} else if len(r.Strategies) > 0 {
		s := &r.Strategies[0]
		lead = fmt.Sprintf("Of %s tasks demanded in %s, %s completed %s", n, r.Scenario, s.Name, outcome(s))
	}
	if c := find("direct-4096"); c != nil {
		clauses = append(clauses, "CLAUDE_CODE_MAX_OUTPUT_TOKENS=4096 "+outcome(c))
	}
	if d := find("direct-defaults"); d != nil {
		clauses = append(clauses, "Claude Code's defaults "+outcome(d))
	}
	if a := find("account-per-dev"); a != nil {
		clauses = append(clauses, "an account per developer "+outcome(a))
	}
	if len(clauses) == 0 {
		return lead + "."
	}
	return lead + "; " + strings.Join(clauses, "; ") + "."
}
