package simulate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
)

// frontDoor is what Claude Code talks to under a strategy: Bedrock itself
// (one shared account, or one per developer) or Headroom in front of it.
// Each method runs at w.now and answers by scheduling events on w.
type frontDoor interface {
	// send takes an attempt of a call: it ends in w.answer or w.refuse,
	// now or later.
	send(w *world, c *call)
	// done settles an answered attempt whose response is complete.
	done(w *world, c *call)
	// wake runs an evWake the door scheduled, with the call it names if any.
	wake(w *world, c *call)
}

// world is one strategy's run of the scenario.
type world struct {
	sc      *Scenario
	st      Strategy
	profile bedrock.Profile
	base    time.Time // wall-clock time of the start of the day
	end     int64     // the end of the day, in nanoseconds since base
	now     int64
	ag      agenda
	devs    []*developer
	door    frontDoor
	stats   runStats
	// drain is the bucket whose consumption the drain chart shows.
	drain       int
	sampleEvery int64
	progress    func(done float64)
	nextReport  int64
	err         error // set by abort: the run stops and reports it
	nextID      uint64
	ctx         context.Context
}

// abort stops the run with err (an emulator or gateway error that is not a
// throttle: a bug or a bad scenario, never an outcome to count).
func (w *world) abort(err error) {
	if w.err == nil {
		w.err = err
	}
}

// wall converts simulated nanoseconds to wall-clock time.
func (w *world) wall(at int64) time.Time { return w.base.Add(time.Duration(at)) }

// at schedules an event d nanoseconds from now.
func (w *world) at(d int64, e event) {
	e.at = w.now + max(d, 0)
	w.ag.push(e)
}

// newWorld builds the team and the front door for one strategy.
func newWorld(sc *Scenario, st Strategy, seed uint64, door func(*world) (frontDoor, error)) (*world, error) {
	profile, burndown, err := sc.Accounting.ProfileAndBurndown()
	if err != nil {
		return nil, err
	}
	w := &world{sc: sc, st: st, profile: profile,
		base: dayStart(sc.StartHourUTC),
		end:  int64(sc.Hours * float64(time.Hour)),
	}
	w.sampleEvery = max(w.end/1440, int64(time.Minute))
	w.drain = drainBucket(sc.Buckets)
	models := map[string]*modelInfo{}
	resolve := func(id string, speed Speed) (*modelInfo, error) {
		if m, ok := models[id]; ok {
			return m, nil
		}
		m, err := bedrock.ParseModel(id)
		if err != nil {
			return nil, err
		}
		mi := &modelInfo{model: m, burndown: burndown.Rate(m), maxOut: bedrock.DefaultMaxOutput(m), speed: speed}
		for i, b := range sc.Buckets {
			if b.Scope.Matches(sc.Region, m) {
				mi.buckets = append(mi.buckets, i)
			}
		}
		models[id] = mi
		return mi, nil
	}
	add := func(name string, wl *Workload, weight float64) error {
		i := len(w.devs)
		mm, err := resolve(wl.MainModel, wl.Latency.Main)
		if err != nil {
			return err
		}
		sm, err := resolve(wl.SmallModel, wl.Latency.Small)
		if err != nil {
			return err
		}
		w.devs = append(w.devs, &developer{idx: i, name: name, weight: weight, w: wl, demand: -1,
			main: mm, small: sm, plan: newPlanner(wl, seed, i),
			jitter:  rand.New(rand.NewPCG(seed^0x5851f42d4c957f2d, uint64(i))),
			settled: make([]float64, len(sc.Buckets))})
		return nil
	}
	for i := range sc.Team {
		if err := add(devName("dev", i+1, sc.Team), &sc.Workload, 1); err != nil {
			return nil, err
		}
	}
	for gi := range sc.Developers {
		g := &sc.Developers[gi]
		for i := range g.Count {
			if err := add(devName(g.Name, i+1, g.Count), &g.Effective, g.Weight); err != nil {
				return nil, err
			}
		}
	}
	w.stats.init(len(w.devs), len(sc.Buckets))
	if w.door, err = door(w); err != nil {
		return nil, err
	}
	return w, nil
}

// limitTo gives each developer the demand measured in the no-quota run:
// the tasks they started there and saw end (completed or failed) within
// the day. Every strategy then faces the same tasks, and none can complete
// more than were demanded, however much faster it makes them.
func (w *world) limitTo(demand *world) {
	for i, d := range w.devs {
		dd := demand.devs[i]
		d.demand = dd.completed + dd.failed
	}
}

// demanded is the team's demand: tasks to do in the day.
func (w *world) demanded() int {
	n := 0
	for _, d := range w.devs {
		n += d.demand
	}
	return n
}

// dayStart is the simulated day: a fixed date, so that runs are
// reproducible, at the scenario's start hour.
func dayStart(hourUTC float64) time.Time {
	return time.Date(2026, time.March, 2, 0, 0, 0, 0, time.UTC).Add(time.Duration(hourUTC * float64(time.Hour)))
}

// drainBucket picks the bucket the drain chart follows: the first daily
// bucket, or else the first.
func drainBucket(bs []config.Bucket) int {
	for i, b := range bs {
		if b.Kind == config.KindTPD {
			return i
		}
	}
	return 0
}

func devName(prefix string, i, n int) string {
	if n == 1 {
		return prefix
	}
	return fmt.Sprintf("%s-%0*d", prefix, len(strconv.Itoa(n)), i)
}

// run plays the day.
func (w *world) run() {
	for _, d := range w.devs {
		w.at(int64(d.plan.startOffset()), event{kind: evTaskStart, dev: d})
	}
	w.at(0, event{kind: evSample})
	for n := 0; w.ag.len() > 0 && w.err == nil; n++ {
		if n%4096 == 0 && w.ctx != nil && w.ctx.Err() != nil {
			w.abort(w.ctx.Err())
			break
		}
		e := w.ag.pop()
		if e.at > w.end {
			break
		}
		w.now = e.at
		switch e.kind {
		case evTaskStart:
			w.startTask(e.dev)
		case evSend:
			e.call.queuedAt = w.now
			w.stats.sent++
			e.call.ordinal = w.stats.sent
			w.door.send(w, e.call)
		case evDone:
			w.door.done(w, e.call)
			w.finished(e.call)
		case evThrottled:
			w.throttled(e.call)
		case evStep:
			w.nextStep(e.task)
		case evWake:
			w.door.wake(w, e.call)
		case evSample:
			w.sample()
			w.at(w.sampleEvery, event{kind: evSample})
		}
		if w.progress != nil && w.now >= w.nextReport {
			w.progress(float64(w.now) / float64(w.end))
			w.nextReport = w.now + w.end/100
		}
	}
	w.now = w.end
	w.sample()
	for _, d := range w.devs {
		if d.task != nil {
			w.stats.unfinished++
		}
	}
}

// sample records the drain bucket's consumption per developer.
func (w *world) sample() {
	s := &w.stats
	s.sampleAt = append(s.sampleAt, float64(w.now)/float64(time.Hour))
	for i, d := range w.devs {
		s.drainByDev[i] = append(s.drainByDev[i], d.settled[w.drain])
	}
	// The most settled and reserved at once since the last sample, so
	// that short spikes of reservations show.
	now := s.drainSettled + float64(s.held)
	s.committedAt = append(s.committedAt, max(now, s.committedPeak))
	s.committedPeak = now
	s.heldAt = append(s.heldAt, float64(s.held))
}
