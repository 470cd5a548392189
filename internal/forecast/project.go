package forecast

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// Status is a forecast's verdict.
type Status string

const (
	// Spent: nothing is left now.
	Spent Status = "spent"
	// RunsOut: at the last hour's rate it runs out before the day ends.
	RunsOut Status = "runs_out"
	// NotToday: at the last hour's rate the day ends first.
	NotToday Status = "not_today"
	// Never: nothing was used in the last hour.
	Never Status = "never"
)

// Regain is what a rolling window gives back at an instant.
type Regain struct {
	At     time.Time
	Tokens int64
}

// Input is what a forecast is made from: a daily bucket's or a key
// budget's state at Now and its recent rates.
type Input struct {
	// Name says what runs out, for the text: "bucket sonnet-tpd",
	// "key alice's budget".
	Name string
	Now  time.Time
	// Left is what can still be used now (the limit less what is used and
	// held); Limit is the limit it counts against.
	Left, Limit int64
	// DayEnd is when the day ends: fixed day buckets and budgets reset
	// then, and a forecast reaches no further.
	DayEnd time.Time
	// Regains is what a rolling day window gives back before DayEnd, in
	// time order (nil for a fixed day: it gives everything back at DayEnd).
	Regains []Regain
	Rates   Rates
}

// Forecast is when a daily quota runs out at the recent rate.
type Forecast struct {
	Status Status    `json:"status"`
	Left   int64     `json:"left"`
	Limit  int64     `json:"limit"`
	DayEnd time.Time `json:"day_ends"`
	Rates  Rates     `json:"tokens_per_minute"`
	// At is when it runs out at the last hour's rate (absent when not
	// today). Earliest and Latest are the range over the last 5, 15 and 60
	// minutes' rates: Earliest at the fastest, Latest at the slowest
	// (absent when that rate does not run it out today).
	At       *time.Time `json:"at,omitempty"`
	Earliest *time.Time `json:"earliest,omitempty"`
	Latest   *time.Time `json:"latest,omitempty"`
	// Text says it for a person: "at the last hour's rate, bucket
	// sonnet-tpd runs out at 14:42 UTC (14:20-15:05 UTC at the last 5 to 60
	// minutes' rates)".
	Text string `json:"text"`
}

// Seconds returns how long from now until it runs out at the fastest
// (low) and slowest (high) recent rates: 0 when spent, +Inf when the day
// ends first or nothing is used.
func (f Forecast) Seconds(now time.Time) (low, high float64) {
	low, high = math.Inf(1), math.Inf(1)
	if f.Status == Spent {
		return 0, 0
	}
	if f.Earliest != nil {
		low = max(f.Earliest.Sub(now).Seconds(), 0)
	}
	if f.Latest != nil {
		high = max(f.Latest.Sub(now).Seconds(), 0)
	}
	return low, high
}

var rateNames = [...]string{"the last hour's", "the last 15 minutes'", "the last 5 minutes'"}

// Project makes the forecast of in.
func Project(in Input) Forecast {
	f := Forecast{Left: in.Left, Limit: in.Limit, DayEnd: in.DayEnd.UTC(), Rates: in.Rates}
	ends := "the day ends at " + clock(in.DayEnd)
	rates := in.Rates.list()
	switch {
	case in.Left <= 0:
		now := in.Now.UTC()
		f.Status, f.At, f.Earliest, f.Latest = Spent, &now, &now, &now
		f.Text = fmt.Sprintf("%s is spent; %s", in.Name, ends)
		return f
	case rates[0] <= 0:
		f.Status = Never
		f.Text = fmt.Sprintf("%s: nothing used in the last hour, so it does not run out at this rate (%s left)", in.Name, humanize.Comma(in.Left))
		return f
	}
	fast, slow := 0, 0
	for i, r := range rates {
		if r > rates[fast] {
			fast = i
		}
		if r < rates[slow] {
			slow = i
		}
	}
	f.At = runOut(in, rates[0])
	f.Earliest = runOut(in, rates[fast])
	f.Latest = runOut(in, rates[slow])
	if f.At == nil {
		f.Status = NotToday
		f.Text = fmt.Sprintf("at the last hour's rate (%s tokens/min), %s does not run out today: %s with %s left", humanize.Comma(int64(rates[0])), in.Name, ends, humanize.Comma(in.Left))
		if f.Earliest != nil {
			f.Text += fmt.Sprintf("; at %s rate it would at %s", rateNames[fast], clock(*f.Earliest))
		}
		return f
	}
	f.Status = RunsOut
	var b strings.Builder
	fmt.Fprintf(&b, "at the last hour's rate (%s tokens/min), %s runs out at %s", humanize.Comma(int64(rates[0])), in.Name, clock(*f.At))
	switch {
	case f.Latest == nil && f.Earliest.Equal(*f.At):
		fmt.Fprintf(&b, " (not today at %s rate)", rateNames[slow])
	case f.Latest == nil:
		fmt.Fprintf(&b, " (from %s at %s rate; not today at %s rate)", clock(*f.Earliest), rateNames[fast], rateNames[slow])
	case !f.Earliest.Equal(*f.Latest):
		fmt.Fprintf(&b, " (%s-%s at the last 5 to 60 minutes' rates)", hhmm(*f.Earliest), clock(*f.Latest))
	}
	f.Text = b.String()
	return f
}

// runOut is when in runs out at rate tokens a minute, or nil when the day
// ends first. Use grows linearly from now; a rolling window's regains lift
// what is left at their instants.
func runOut(in Input, rate float64) *time.Time {
	if rate <= 0 {
		return nil
	}
	perNs := rate / float64(minuteNs)
	from, left := in.Now, float64(in.Left)
	for _, g := range in.Regains {
		if !g.At.After(from) {
			left += float64(g.Tokens)
			continue
		}
		if d := left / perNs; d < float64(g.At.Sub(from)) {
			return until(from.Add(time.Duration(d)), in.DayEnd)
		}
		left -= perNs * float64(g.At.Sub(from))
		left += float64(g.Tokens)
		from = g.At
	}
	d := left / perNs
	if d >= float64(in.DayEnd.Sub(from)) {
		return nil
	}
	return until(from.Add(time.Duration(d)), in.DayEnd)
}

func until(t, end time.Time) *time.Time {
	if !t.Before(end) {
		return nil
	}
	t = t.UTC()
	return &t
}

func hhmm(t time.Time) string  { return t.UTC().Format("15:04") }
func clock(t time.Time) string { return hhmm(t) + " UTC" }
