package simulate

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
)

// WriteText writes the result as tables for people: the seed's figures,
// one row per strategy, and each developer's completed tasks.
func (r *Result) WriteText(out io.Writer) error {
	ew := &errWriter{w: out}
	fmt.Fprintf(ew, "Scenario %s: %d developers, %s h, seed %d, accounting profile %s\n", r.Scenario, r.Developers, fmtFloat(r.Hours), r.Seed, r.Profile)
	if r.Description != "" {
		fmt.Fprintf(ew, "%s\n", r.Description)
	}
	if r.Verdict != "" {
		fmt.Fprintf(ew, "\n%s\n\n", r.Verdict)
	}
	var quotas []string
	for _, b := range r.Buckets {
		quotas = append(quotas, fmt.Sprintf("%s (%s %s)", b.Name, b.Kind, humanize.Comma(b.Limit)))
	}
	fmt.Fprintf(ew, "Quotas: %s; binding: %s\n\n", strings.Join(quotas, ", "), r.Binding)

	f := r.Figures
	fmt.Fprintf(ew, "Reservation per request at admission (%s profile, burndown %d, %s input tokens):\n", f.Profile, f.Burndown, humanize.Comma(int64(f.Input)))
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	width := 0
	for _, row := range f.Rows {
		width = max(width, len(row.Setting))
	}
	fmt.Fprintf(tw, "%-*s\tmax_tokens\tmax_tokens x %d\treserved\tof %s\tfit at once\t\n", width, "setting", f.Burndown, f.Quota)
	for _, row := range f.Rows {
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%s\t%s\t%d\t\n", width, row.Setting, humanize.Comma(int64(row.MaxTokens)), humanize.Comma(row.OutputReserve),
			humanize.Comma(row.Reserved), pct(row.QuotaShare), row.CallsThatFit)
	}
	tw.Flush()
	fmt.Fprintf(ew, "4,096 instead of %s: %sx more calls from the same quota.\n", humanize.Comma(int64(f.Default)), fmtFloat(f.MoreCalls))
	fmt.Fprintf(ew, "Workload: %d tasks with no quota, %s calls and %s quota tokens per task; the day's demand is %s tokens of %s.\n\n",
		f.Workload.Tasks, fmtFloat(f.Workload.CallsPerTask), humanize.Comma(int64(f.Workload.TokensPerTask)), humanize.Comma(int64(f.Workload.DemandTokens)), f.Quota)

	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	rows := append([]StrategyResult{r.Demand}, r.Strategies...)
	width = 0
	for _, s := range rows {
		width = max(width, len(s.Name))
	}
	fmt.Fprintf(tw, "%-*s\tcompleted\tfailed\tby the cap\tunfinished\t429s seen\tfirst 429\tp50 task\tp95 task\tp95 queue\treserved/call\tcut answers\tcut tokens\tfairness\tbinding used\t\n", width, "strategy")
	for _, s := range rows {
		first := "-"
		if s.FirstThrottled > 0 {
			first = "#" + strconv.Itoa(s.FirstThrottled)
		}
		fmt.Fprintf(tw, "%-*s\t%d/%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t\n", width, s.Name,
			s.TasksCompleted, s.TasksDemanded, s.TasksFailed, s.TasksFailedByCap, s.TasksUnfinished, s.Client429s, first,
			dur(s.TaskSecondsP50), dur(s.TaskSecondsP95), dur(s.QueueSecondsP95),
			humanize.Comma(int64(s.MeanReservation)), s.CutAnswers, humanize.Comma(s.CutOutputTokens), fairness(s.Fairness), pct(s.Utilisation))
	}
	tw.Flush()
	fmt.Fprintln(ew, "(no-quota is the same workload with no quota: it fixes the team's demand, the tasks every strategy faces. \"by the cap\": tasks failed because max_tokens cut an answer Claude Code could not complete; \"cut tokens\": output tokens generated in cut answers. Fairness is Jain's index of each developer's completed tasks over their demand.)")
	fmt.Fprintln(ew)
	r.writeDevelopers(ew)
	return ew.err
}

// writeDevelopers writes completed tasks per developer: a column per
// strategy for small teams, a spread for large ones.
func (r *Result) writeDevelopers(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if r.Developers <= 12 {
		const head = "completed/demand"
		width := len(head)
		for _, d := range r.Demand.PerDev {
			width = max(width, len(d.Name))
		}
		fmt.Fprintf(tw, "%-*s\t", width, head)
		for _, s := range r.Strategies {
			fmt.Fprintf(tw, "%s\t", s.Name)
		}
		fmt.Fprintln(tw)
		for i, d := range r.Demand.PerDev {
			fmt.Fprintf(tw, "%-*s\t", width, d.Name)
			for _, s := range r.Strategies {
				fmt.Fprintf(tw, "%d/%d\t", s.PerDev[i].Completed, d.Demand)
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
		return
	}
	const head = "completed per developer"
	width := len(head)
	for _, s := range r.Strategies {
		width = max(width, len(s.Name))
	}
	fmt.Fprintf(tw, "%-*s\tmin\tp50\tmax\tnone completed\t\n", width, head)
	for _, s := range r.Strategies {
		var xs []float64
		none := 0
		for _, d := range s.PerDev {
			xs = append(xs, float64(d.Completed))
			if d.Completed == 0 {
				none++
			}
		}
		slices.Sort(xs)
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%d\t\n", width, s.Name, int(xs[0]), int(quantile(xs, 0.5)), int(xs[len(xs)-1]), none)
	}
	tw.Flush()
}

// fairness formats a Jain index, "-" when undefined.
func fairness(f *float64) string {
	if f == nil {
		return "-"
	}
	return strconv.FormatFloat(*f, 'f', 3, 64)
}

func pct(x float64) string { return strconv.FormatFloat(x*100, 'f', 1, 64) + "%" }

func fmtFloat(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// dur formats seconds as 42s, 12m05s or 1h02m; "-" for none.
func dur(secs float64) string {
	if secs <= 0 {
		return "-"
	}
	s := int64(secs + 0.5)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
}

// errWriter keeps the first write error so that a report is written with
// plain Fprintf calls and checked once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
