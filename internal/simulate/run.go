package simulate

import (
	"context"
	"fmt"
	"runtime"
	"sync"
)

// Options tune a Run.
type Options struct {
	// Strategies to compare; empty means the scenario's list.
	Strategies []Strategy
	// Progress, when set, is called as simulated time passes with the
	// fraction (0 to 1) of all the runs' simulated time done. It is called
	// from one goroutine at a time.
	Progress func(done float64)
	// Parallel is the most strategies simulated at once; 0 means
	// GOMAXPROCS. The result does not depend on it.
	Parallel int
}

// Run simulates the scenario's day once without any quota, which fixes
// the team's demand (the tasks each developer sets out to do), then once
// per strategy on that same demand. Its result depends only on the scenario (seed
// included) and the strategies.
func Run(ctx context.Context, sc Scenario, opts Options) (*Result, error) {
	strats := opts.Strategies
	if len(strats) == 0 {
		var err error
		if strats, err = ParseStrategies(joinNames(sc.Strategies)); err != nil {
			return nil, err
		}
	}
	demand, err := newWorld(&sc, Strategy{Name: "no-quota", Description: "the same workload with no quota at all",
		ClientMaxTokens: clientDefault}, sc.Seed, newUnlimitedDoor)
	if err != nil {
		return nil, fmt.Errorf("demand: %w", err)
	}
	runs := make([]*world, len(strats))
	for i, st := range strats {
		w, err := newWorld(&sc, st, sc.Seed, doorFor(st))
		if err != nil {
			return nil, fmt.Errorf("strategy %s: %w", st.Name, err)
		}
		runs[i] = w
	}

	// The demand run first: it fixes how many tasks each developer sets
	// out to do, for every strategy.
	prog := newProgressMux(opts.Progress, len(runs)+1)
	demand.progress, demand.ctx = prog.reporter(len(runs)), ctx
	demand.run()
	if demand.err != nil {
		return nil, fmt.Errorf("demand: %w", demand.err)
	}
	for i := range demand.devs {
		demand.devs[i].demand = demand.devs[i].completed + demand.devs[i].failed
	}
	// The drain chart follows the quota the demand presses hardest.
	binding := bindingBucket(&sc, demand)
	par := opts.Parallel
	if par <= 0 {
		par = runtime.GOMAXPROCS(0)
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, w := range runs {
		w.limitTo(demand)
		w.drain = binding
		w.progress = prog.reporter(i)
		w.ctx = ctx
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			w.run()
		}()
	}
	wg.Wait()
	prog.finish()
	for _, w := range runs {
		if w.err != nil {
			return nil, fmt.Errorf("strategy %s: %w", w.st.Name, w.err)
		}
	}
	return summarize(&sc, runs, demand)
}

func joinNames(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ","
		}
		s += n
	}
	return s
}

// doorFor builds a strategy's front door.
func doorFor(st Strategy) func(*world) (frontDoor, error) {
	switch st.Topology {
	case PerDeveloper:
		return newDirectDoor(true)
	case Gateway:
		return newGatewayDoor
	}
	return newDirectDoor(false)
}

// progressMux turns the runs' progress into one fraction for the caller.
type progressMux struct {
	mu   sync.Mutex
	f    func(float64)
	done []float64
}

func newProgressMux(f func(float64), n int) *progressMux {
	return &progressMux{f: f, done: make([]float64, n)}
}

func (p *progressMux) reporter(i int) func(float64) {
	if p.f == nil {
		return nil
	}
	return func(d float64) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.done[i] = d
		var sum float64
		for _, x := range p.done {
			sum += x
		}
		p.f(sum / float64(len(p.done)))
	}
}

func (p *progressMux) finish() {
	if p.f != nil {
		p.f(1)
	}
}

// unlimitedDoor answers every call at once with no quota: the team's
// demand, against which each strategy's completions are measured.
type unlimitedDoor struct{}

func newUnlimitedDoor(*world) (frontDoor, error) { return unlimitedDoor{}, nil }

func (unlimitedDoor) send(w *world, c *call) {
	c.generateAt(c.clientAsk(w.st))
	w.answer(c, w.profile.Admission(c.demand(), c.m.burndown))
}
func (unlimitedDoor) done(*world, *call) {}
func (unlimitedDoor) wake(*world, *call) {}
