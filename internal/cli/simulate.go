package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/headroomhq/headroom/internal/simulate"
)

const simulateUsage = `Usage: headroom simulate --scenario NAME|FILE [flags]

Replays a team's day of Claude Code work against a Bedrock quota on a
virtual clock, once per strategy on the same workload, and reports tasks
completed and failed, the 429s developers saw, task times, fairness and how
much of the binding quota was used.

Built-in scenarios: %s
Strategies: %s

Flags:
`

func runSimulate(ctx context.Context, e env) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	scenario := fs.String("scenario", "", "a built-in scenario's name or a scenario YAML file (required)")
	strategies := fs.String("strategies", "", "comma-separated strategies to compare (default: the scenario's)")
	seed := fs.Uint64("seed", 0, "seed for every random draw (default: the scenario's)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	report := fs.String("report", "", "write an HTML report (index.html, charts, result.json) into `DIR`")
	charts := fs.String("charts", "", "write the charts as SVG and PNG into `DIR`")
	show := fs.Bool("show", false, "print the scenario's YAML (a built-in's source, to copy and edit) and exit")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, simulateUsage, strings.Join(simulate.BuiltinNames(), ", "), strings.Join(simulate.StrategyNames(), ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(e.args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *scenario == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if *show {
		return showScenario(e, *scenario)
	}
	sc, err := simulate.FindScenario(*scenario)
	if err != nil {
		fmt.Fprintf(e.stderr, "headroom simulate: %v\n", err)
		return 2
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if seedSet {
		sc.Seed = *seed
	}
	opts := simulate.Options{}
	if *strategies != "" {
		if opts.Strategies, err = simulate.ParseStrategies(*strategies); err != nil {
			fmt.Fprintf(e.stderr, "headroom simulate: %v\n", err)
			return 2
		}
	}
	bar := newProgressBar(e.stderr, "simulating "+sc.Name)
	opts.Progress = bar.update
	res, err := simulate.Run(ctx, sc, opts)
	bar.done()
	if err != nil {
		fmt.Fprintf(e.stderr, "headroom simulate: %v\n", err)
		return 1
	}
	if *charts != "" || *report != "" {
		cs, err := res.Charts()
		if err != nil {
			fmt.Fprintf(e.stderr, "headroom simulate: %v\n", err)
			return 1
		}
		if *charts != "" {
			if err := simulate.WriteCharts(*charts, cs); err != nil {
				fmt.Fprintf(e.stderr, "headroom simulate: charts: %v\n", err)
				return 1
			}
		}
		if *report != "" {
			if err := simulate.WriteReport(*report, res, cs); err != nil {
				fmt.Fprintf(e.stderr, "headroom simulate: report: %v\n", err)
				return 1
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(e.stderr, "headroom simulate: %v\n", err)
			return 1
		}
	} else if err := res.WriteText(e.stdout); err != nil {
		fmt.Fprintf(e.stderr, "headroom simulate: %v\n", err)
		return 1
	}
	if *report != "" {
		fmt.Fprintf(e.stderr, "report written to %s/index.html\n", strings.TrimRight(*report, "/"))
	}
	return 0
}

// showScenario prints a built-in's YAML, or a file's.
func showScenario(e env, name string) int {
	data, err := simulate.BuiltinSource(name)
	if err != nil {
		if data, err = os.ReadFile(name); err != nil {
			fmt.Fprintf(e.stderr, "headroom simulate: scenario %q is neither a built-in (%s) nor a readable file\n",
				name, strings.Join(simulate.BuiltinNames(), ", "))
			return 2
		}
	}
	if _, err := e.stdout.Write(data); err != nil {
		return 1
	}
	return 0
}

// progressBar draws a bar on stderr while a simulation runs, only when
// stderr is a terminal.
type progressBar struct {
	w     io.Writer
	label string
	last  int
	on    bool
}

func newProgressBar(w io.Writer, label string) *progressBar {
	return &progressBar{w: w, label: label, last: -1, on: isTerminal(w)}
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

const barWidth = 30

func (b *progressBar) update(done float64) {
	if !b.on {
		return
	}
	pctDone := int(done * 100)
	if pctDone == b.last {
		return
	}
	b.last = pctDone
	n := min(barWidth, int(done*barWidth))
	fmt.Fprintf(b.w, "\r%s [%s%s] %3d%%", b.label, strings.Repeat("#", n), strings.Repeat(".", barWidth-n), pctDone)
}

func (b *progressBar) done() {
	if b.on && b.last >= 0 {
		fmt.Fprintf(b.w, "\r%s\r", strings.Repeat(" ", len(b.label)+barWidth+8))
	}
}
