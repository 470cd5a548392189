package simulate

import (
	"fmt"
	"math"

	"github.com/dustin/go-humanize"
	"github.com/headroomhq/headroom/internal/config"
)

// Result is one simulation run: the scenario, the seed's worked figures,
// and each strategy's outcome on the same workload.
type Result struct {
	Scenario    string `json:"scenario"`
	Description string `json:"description"`
	// Verdict is one sentence that says what the run shows.
	Verdict    string          `json:"verdict"`
	Seed       uint64          `json:"seed"`
	Hours      float64         `json:"hours"`
	StartHour  float64         `json:"start_hour_utc"`
	Developers int             `json:"developers"`
	Profile    string          `json:"accounting_profile"`
	Buckets    []config.Bucket `json:"buckets"`
	// Binding is the bucket the team's demand presses hardest: the
	// highest utilisation with no quota enforced.
	Binding string `json:"binding_quota"`
	// Figures are the per-request reservations behind the story.
	Figures Figures `json:"figures"`
	// Demand is the same workload with no quota at all.
	Demand     StrategyResult   `json:"demand"`
	Strategies []StrategyResult `json:"strategies"`

	trace []traceLine
}

// StrategyResult is what the team got done under one strategy.
type StrategyResult struct {
	Name        string `json:"name"`
	Description string `json:"description"`

	// TasksDemanded is the team's demand, the same for every strategy:
	// the tasks the developers set out to do, measured as those that end
	// within the day with no quota at all. No strategy starts more.
	TasksDemanded  int `json:"tasks_demanded"`
	TasksStarted   int `json:"tasks_started"`
	TasksCompleted int `json:"tasks_completed"`
	TasksFailed    int `json:"tasks_failed"`
	// TasksFailedByCap are failed tasks whose answer max_tokens cut and
	// Claude Code could not complete: text still cut after its recovery
	// turns, or a tool call cut on every repeat.
	TasksFailedByCap     int `json:"tasks_failed_by_cap"`
	TasksFailedByCapText int `json:"tasks_failed_by_cap_text"`
	TasksFailedByCapTool int `json:"tasks_failed_by_cap_tool_call"`
	// TasksUnfinished are demanded tasks neither completed nor failed:
	// still running at the end of the day, or never started.
	TasksUnfinished int `json:"tasks_unfinished"`
	// Client429s are the 429s Claude Code received, retried or not.
	Client429s int `json:"client_429s"`
	// Gateway429s are those Headroom sent itself; Upstream429s are the
	// 429s Bedrock sent Headroom (which retries them while it can).
	Gateway429s  int `json:"gateway_429s"`
	Upstream429s int `json:"upstream_429s"`
	// FirstThrottled is the number of the first request (counting every
	// request of the day in order) answered with a 429; 0 for none.
	FirstThrottled int `json:"first_throttled_request"`
	// GaveUp are calls Claude Code abandoned on x-should-retry: false,
	// GaveUpRetryAfter those abandoned on a Retry-After above 60 s.
	GaveUp           int `json:"gave_up_should_retry_false"`
	GaveUpRetryAfter int `json:"gave_up_retry_after_over_60s"`

	Requests int `json:"requests_sent"`
	Calls    int `json:"calls_answered"`
	// CutAnswers are answers max_tokens cut (stop_reason max_tokens) and
	// CutOutputTokens the output tokens generated in them, thinking
	// included: billed, and for a cut tool call wasted entirely.
	CutAnswers      int   `json:"calls_cut"`
	CutOutputTokens int64 `json:"cut_output_tokens"`
	// RecoveryTurns are Claude Code's follow-ups of cut text; ToolRetries
	// the model's repeats of a cut tool call.
	RecoveryTurns int `json:"recovery_turns"`
	ToolRetries   int `json:"tool_call_repeats"`
	// Escalations are calls whose cap the gateway's policy grew because
	// it had cut the conversation's previous call.
	Escalations      int `json:"escalations"`
	BackgroundFailed int `json:"background_calls_failed"`

	TaskSecondsP50 float64 `json:"task_seconds_p50"`
	TaskSecondsP95 float64 `json:"task_seconds_p95"`
	// QueueSecondsP95 is the 95th percentile of the time an answered
	// attempt waited at the front door (Headroom's queue).
	QueueSecondsP95 float64 `json:"queue_seconds_p95"`
	// MeanReservation is the average admission charge Bedrock reserved
	// per answered call.
	MeanReservation float64 `json:"mean_reservation"`
	// PeakReserved is the most the team held reserved in the drain bucket
	// at once.
	PeakReserved int64 `json:"peak_reserved"`
	// Fairness is Jain's index over each developer's completed tasks as a
	// fraction of their demand (1 = everyone got the same fraction); null
	// when nobody completed anything.
	Fairness *float64 `json:"fairness_jain"`
	// Utilisation is settled use of the binding quota over its capacity
	// for the day.
	Utilisation float64           `json:"binding_utilisation"`
	Buckets     []BucketUse       `json:"buckets"`
	PerDev      []DeveloperResult `json:"developers"`

	drain drainSeries
}

// BucketUse is one quota's settled use over the simulated day.
type BucketUse struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Accounts is how many copies of the quota the strategy has.
	Accounts int `json:"accounts"`
	// Capacity is what the quota allows over the day, all accounts together.
	Capacity    float64 `json:"capacity"`
	Used        float64 `json:"used"`
	Utilisation float64 `json:"utilisation"`
}

// DeveloperResult is one developer's day.
type DeveloperResult struct {
	Name      string `json:"name"`
	Started   int    `json:"started"`
	Completed int    `json:"completed"`
	Failed    int    `json:"failed"`
	// Demand is the tasks the developer set out to do (the same in every
	// strategy).
	Demand int `json:"demand"`
	// Client429s are the 429s this developer's Claude Code received.
	Client429s int     `json:"client_429s"`
	Tokens     float64 `json:"drain_tokens"`
}

// drainSeries is the drain chart's data: per developer, what they had
// consumed of the drain bucket at each sample time.
type drainSeries struct {
	bucket   string
	kind     string
	limit    int64 // of one account
	accounts int
	hours    []float64
	byDev    [][]float64
	names    []string
	// committed is settled plus reserved in flight, at its highest
	// between samples; held is what calls in flight hold reserved at
	// each sample.
	committed []float64
	held      []float64
}

// summarize turns the runs into a Result.
func summarize(sc *Scenario, runs []*world, demand *world) (*Result, error) {
	res := &Result{
		Scenario: sc.Name, Description: sc.Description, Seed: sc.Seed, Hours: sc.Hours, StartHour: sc.StartHourUTC,
		Developers: sc.Size(), Profile: demand.profile.Name, Buckets: sc.Buckets,
	}
	binding := bindingBucket(sc, demand)
	res.Figures = seedFigures(sc, demand, binding)
	res.Binding = sc.Buckets[binding].Name
	res.Demand = strategyResult(sc, demand, nil, binding)
	for _, w := range runs {
		res.Strategies = append(res.Strategies, strategyResult(sc, w, demand, binding))
	}
	m := demand.devs[0].main
	trace, err := reservationTrace(sc, m, []int{m.maxOut, min(sc.Workload.MaxTokens, m.maxOut), sc.Headroom.MaxTokensCap})
	if err != nil {
		return nil, err
	}
	labels := []string{"max_tokens unset", "Claude Code default", "the hard cap"}
	for i := range trace {
		trace[i].label = fmt.Sprintf("%s (%s)", labels[i], humanize.Comma(int64(trace[i].maxTokens)))
	}
	res.trace = trace
	res.Verdict = res.verdict()
	return res, nil
}

// bindingBucket is the bucket with the highest demand over capacity.
func bindingBucket(sc *Scenario, demand *world) int {
	best, bestU := 0, -1.0
	for i := range sc.Buckets {
		if u := demand.stats.bucketUse[i] / bucketCapacity(sc, i, 1); u > bestU {
			best, bestU = i, u
		}
	}
	return best
}

// bucketCapacity is what bucket i allows over the simulated day across
// accounts copies: the daily limit per (started) day, the per-minute limit
// per minute.
func bucketCapacity(sc *Scenario, i, accounts int) float64 {
	b := sc.Buckets[i]
	lim := float64(b.Limit * int64(accounts))
	if b.Kind == config.KindTPD {
		return lim * math.Ceil(sc.Hours/24)
	}
	return lim * sc.Hours * 60
}

func strategyResult(sc *Scenario, w *world, demand *world, binding int) StrategyResult {
	s := &w.stats
	r := StrategyResult{
		Name: w.st.Name, Description: w.st.Description,
		TasksDemanded: w.demanded(), TasksStarted: s.started, TasksCompleted: s.completed, TasksFailed: s.failed,
		TasksFailedByCap:     s.capFailedText + s.capFailedTool,
		TasksFailedByCapText: s.capFailedText, TasksFailedByCapTool: s.capFailedTool,
		Client429s: s.client429, Gateway429s: s.gateway429, Upstream429s: s.upstream429,
		GaveUp: s.gaveUpNoRetry, GaveUpRetryAfter: s.gaveUpRetryAfter,
		FirstThrottled: s.first429,
		Requests:       s.sent, Calls: s.calls, CutAnswers: s.truncated, CutOutputTokens: s.cutOutput,
		RecoveryTurns: s.recoveryTurns, ToolRetries: s.toolRetries, Escalations: s.escalated,
		BackgroundFailed: s.backgroundFailed,
		TaskSecondsP50:   round(quantile(s.taskTimes, 0.5), 1),
		TaskSecondsP95:   round(quantile(s.taskTimes, 0.95), 1),
		QueueSecondsP95:  round(quantile(s.queueWait, 0.95), 2),
		PeakReserved:     s.peakHeld,
	}
	r.TasksUnfinished = r.TasksDemanded - r.TasksCompleted - r.TasksFailed
	if s.admitted > 0 {
		r.MeanReservation = round(s.reservedSum/float64(s.admitted), 0)
	}
	accounts := 1
	if w.st.Topology == PerDeveloper {
		accounts = len(w.devs)
	}
	for i, b := range sc.Buckets {
		capa := bucketCapacity(sc, i, accounts)
		u := BucketUse{Name: b.Name, Kind: b.Kind, Accounts: accounts, Capacity: capa, Used: s.bucketUse[i]}
		if capa > 0 {
			u.Utilisation = round(u.Used/capa, 4)
		}
		r.Buckets = append(r.Buckets, u)
	}
	r.Utilisation = r.Buckets[binding].Utilisation
	shares := make([]float64, 0, len(w.devs))
	for _, d := range w.devs {
		dr := DeveloperResult{Name: d.name, Started: d.tasks, Completed: d.completed, Failed: d.failed, Client429s: d.client429,
			Tokens: d.settled[w.drain]}
		dr.Demand = d.demand
		if demand != nil && dr.Demand > 0 {
			shares = append(shares, float64(d.completed)/float64(dr.Demand)/d.weight)
		}
		r.PerDev = append(r.PerDev, dr)
	}
	if demand == nil {
		one := 1.0
		r.Fairness = &one
	} else if j, ok := jain(shares); ok {
		j = round(j, 4)
		r.Fairness = &j
	}
	r.drain = drainSeries{bucket: sc.Buckets[w.drain].Name, kind: sc.Buckets[w.drain].Kind, limit: sc.Buckets[w.drain].Limit,
		accounts: accounts, hours: s.sampleAt, byDev: s.drainByDev, committed: s.committedAt, held: s.heldAt}
	for _, d := range w.devs {
		r.drain.names = append(r.drain.names, d.name)
	}
	return r
}

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}
