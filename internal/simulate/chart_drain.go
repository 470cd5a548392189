package simulate

import (
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/headroomhq/headroom/internal/config"
)

// maxDrainLayers is the most developers drawn as their own layer; the
// rest are stacked together as "others".
const maxDrainLayers = 8

// drawDrain is chart 2: one panel per strategy, the binding quota over
// the busy part of the day, each developer's share stacked. A daily quota
// is drawn as it fills (settled so far), a per-minute quota as its use
// per minute; the red line adds what calls in flight hold reserved, the
// dashed line is the limit. account-per-dev has one copy of the quota per
// developer, so its panel has its own scale, against all of them.
func (r *Result) drawDrain(dc draw.Canvas) error {
	n := len(r.Strategies)
	cols := min(2, n)
	rows := (n + cols - 1) / cols
	from, until := r.drainWindow()
	// One scale for the shared-account panels, so that they compare at a
	// glance: up to one account's limit or the most drawn.
	var top float64
	for _, s := range r.Strategies {
		if s.drain.accounts == 1 {
			top = max(top, s.drain.peak(from, until))
		}
	}
	plots := make([][]*plot.Plot, rows)
	for j := range plots {
		plots[j] = make([]*plot.Plot, cols)
	}
	for k, s := range r.Strategies {
		t := top
		if s.drain.accounts > 1 {
			t = s.drain.peak(from, until)
		}
		p, err := r.drainPanel(s, t*1.08, from, until, k == 0)
		if err != nil {
			return err
		}
		plots[k/cols][k%cols] = p
	}
	title := draw.Crop(dc, 0, 0, 0, 0)
	title.Min.Y = dc.Max.Y - 0.35*vg.Inch
	sty := plot.New().Title.TextStyle
	sty.Font.Size = 13
	sty.XAlign = draw.XCenter
	sty.YAlign = draw.YCenter
	title.FillText(sty, vg.Point{X: (dc.Min.X + dc.Max.X) / 2, Y: dc.Max.Y - 0.18*vg.Inch}, r.drainTitle())
	body := draw.Crop(dc, 0, 0, 0, -0.35*vg.Inch)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(12), PadY: vg.Points(10),
		PadTop: vg.Points(2), PadBottom: vg.Points(2), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	canvases := plot.Align(plots, tiles, body)
	for j := range plots {
		for i, p := range plots[j] {
			if p != nil {
				p.Draw(canvases[j][i])
			}
		}
	}
	return nil
}

// drainTitle names the chart after the quota it follows.
func (r *Result) drainTitle() string {
	if len(r.Strategies) > 0 && r.Strategies[0].drain.perMinute() {
		return fmt.Sprintf("The %s quota (per minute) in the busiest two hours, by developer (%s)", r.Binding, r.Scenario)
	}
	return fmt.Sprintf("The %s quota filling over the day, by developer (%s)", r.Binding, r.Scenario)
}

// drainWindow is the part of the day the drain chart shows, in hours: for
// a per-minute quota the two hours around the busiest minute of any
// strategy; for a daily one from the start to shortly after the last
// change.
func (r *Result) drainWindow() (from, until float64) {
	if len(r.Strategies) == 0 {
		return 0, r.Hours
	}
	if r.Strategies[0].drain.perMinute() {
		busiest, most := 0.0, -1.0
		for _, s := range r.Strategies {
			d := &s.drain
			if d.accounts > 1 {
				continue
			}
			for i := range d.hours {
				if v := d.settledAt(i) + d.use(i); v > most {
					busiest, most = d.hours[i], v
				}
			}
		}
		span := min(2, r.Hours)
		from = max(0, busiest-span/2)
		until = min(r.Hours, from+span)
		return max(0, until-span), until
	}
	for _, s := range r.Strategies {
		d := &s.drain
		last := len(d.hours) - 1
		for i := range d.hours {
			if d.committed[i] != d.committed[last] || d.total(i) != d.total(last) {
				until = max(until, d.hours[min(i+1, last)])
			}
		}
	}
	return 0, min(r.Hours, max(1, math.Ceil(until*1.1*2)/2))
}

// perMinute reports whether the series follows a per-minute quota.
func (d *drainSeries) perMinute() bool { return d.kind != config.KindTPD }

// minutes is the sample interval in minutes.
func (d *drainSeries) minutes() float64 {
	if len(d.hours) < 2 {
		return 1
	}
	return (d.hours[1] - d.hours[0]) * 60
}

// at is developer k's value at sample i: settled so far for a daily quota,
// settled in the minute before for a per-minute one.
func (d *drainSeries) at(k, i int) float64 {
	if !d.perMinute() {
		return d.byDev[k][i]
	}
	if i == 0 {
		return 0
	}
	return (d.byDev[k][i] - d.byDev[k][i-1]) / d.minutes()
}

// use is what the red line draws at sample i: for a daily quota settled
// plus reserved in flight (at its highest since the sample before); for a
// per-minute one what calls in flight hold reserved. (Adding a minute's
// settled tokens to it would count twice what streamed and settled within
// the minute: the bucket counts output as it streams and refills.)
func (d *drainSeries) use(i int) float64 {
	if !d.perMinute() {
		return d.committed[i]
	}
	return d.held[i]
}

// settledAt is all developers' value at sample i.
func (d *drainSeries) settledAt(i int) float64 {
	var sum float64
	for k := range d.byDev {
		sum += d.at(k, i)
	}
	return sum
}

// limitLine is the limit drawn: every account's together.
func (d *drainSeries) limitLine() float64 { return float64(d.limit) * float64(d.accounts) }

// peak is the most the panel draws between from and until, the limit
// included.
func (d *drainSeries) peak(from, until float64) float64 {
	top := d.limitLine()
	for i, h := range d.hours {
		if h >= from && h <= until {
			top = max(top, d.use(i), d.settledAt(i))
		}
	}
	return top
}

// total is the drain bucket's settled use by all developers at sample i.
func (d *drainSeries) total(i int) float64 {
	var sum float64
	for _, dev := range d.byDev {
		sum += dev[i]
	}
	return sum
}

// layers groups developers: the heaviest users each get a layer, in name
// order, and everyone else one "others" layer. It returns each layer's
// name and developers.
func (d *drainSeries) layers() (names []string, groups [][]int) {
	n := len(d.byDev)
	if n == 0 || len(d.hours) == 0 {
		return nil, nil
	}
	last := len(d.hours) - 1
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	if n <= maxDrainLayers {
		for _, i := range order {
			names = append(names, d.names[i])
			groups = append(groups, []int{i})
		}
		return names, groups
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch x, y := d.byDev[a][last], d.byDev[b][last]; {
		case x > y:
			return -1
		case x < y:
			return 1
		}
		return 0
	})
	keep := slices.Clone(order[:maxDrainLayers-1])
	slices.Sort(keep)
	for _, i := range keep {
		names = append(names, d.names[i])
		groups = append(groups, []int{i})
	}
	names = append(names, fmt.Sprintf("%d others", n-len(keep)))
	groups = append(groups, slices.Clone(order[maxDrainLayers-1:]))
	return names, groups
}

func (r *Result) drainPanel(s StrategyResult, top, from, until float64, legend bool) (*plot.Plot, error) {
	d := &s.drain
	limit := d.limitLine()
	title := s.Name
	if d.accounts > 1 {
		title = fmt.Sprintf("%s: %d accounts, the limit is all of them (own scale)", s.Name, d.accounts)
	}
	p := newPlot(title)
	p.Title.TextStyle.Font.Size = 11
	p.Y.Tick.Marker = tokenTicks{}
	p.X.Tick.Marker = clockTicks{start: r.StartHour}
	p.X.Min, p.X.Max = from, until
	p.Y.Min, p.Y.Max = 0, top
	p.Y.Label.Text = "tokens"
	if d.perMinute() {
		p.Y.Label.Text = "tokens per minute"
	}
	names, order := d.layers()
	var idx []int
	for i, h := range d.hours {
		if h >= from && h <= until {
			idx = append(idx, i)
		}
	}
	hours := make([]float64, len(idx))
	for j, i := range idx {
		hours[j] = d.hours[i]
	}
	// Stack: draw the cumulative top layer first, each filled to zero, so
	// the lower layers paint over it.
	cum := make([][]float64, len(order))
	for k, devs := range order {
		cum[k] = make([]float64, len(idx))
		for j, i := range idx {
			for _, dev := range devs {
				cum[k][j] += d.at(dev, i)
			}
			if k > 0 {
				cum[k][j] += cum[k-1][j]
			}
		}
	}
	fills := make([]*plotter.Line, len(order))
	for k := len(order) - 1; k >= 0; k-- {
		l, err := plotter.NewLine(xyOf(hours, cum[k]))
		if err != nil {
			return nil, err
		}
		c := palette[k%len(palette)]
		l.FillColor = c
		l.LineStyle.Width = vg.Points(0.5)
		l.LineStyle.Color = darker(c)
		p.Add(l)
		fills[k] = l
	}
	if legend {
		for k := range order {
			p.Legend.Add(names[k], fills[k])
		}
	}
	use := make([]float64, len(idx))
	for j, i := range idx {
		use[j] = d.use(i)
	}
	hl, err := plotter.NewLine(xyOf(hours, use))
	if err != nil {
		return nil, err
	}
	hl.LineStyle.Color = colRed
	hl.LineStyle.Width = vg.Points(1.2)
	p.Add(hl)
	lim, err := plotter.NewLine(plotter.XYs{{X: from, Y: limit}, {X: until, Y: limit}})
	if err != nil {
		return nil, err
	}
	lim.LineStyle.Color = colBlack
	lim.LineStyle.Width = vg.Points(1.2)
	lim.LineStyle.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	p.Add(lim)
	if legend {
		if d.perMinute() {
			p.Legend.Add("reserved in flight", hl)
		} else {
			p.Legend.Add("settled + reserved in flight", hl)
		}
		p.Legend.Add("limit", lim)
		p.Legend.Top = true
		p.Legend.TextStyle.Font.Size = 8
		p.Legend.ThumbnailWidth = vg.Points(12)
	}
	return p, nil
}

func xyOf(xs, ys []float64) plotter.XYs {
	out := make(plotter.XYs, len(xs))
	for i := range xs {
		out[i] = plotter.XY{X: xs[i], Y: ys[i]}
	}
	return out
}

func darker(c color.Color) color.Color {
	r, g, b, a := c.RGBA()
	return color.RGBA64{R: uint16(r * 7 / 10), G: uint16(g * 7 / 10), B: uint16(b * 7 / 10), A: uint16(a)}
}

// clockTicks labels hours since the start of the day as UTC clock times.
type clockTicks struct{ start float64 }

func (c clockTicks) Ticks(min, max float64) []plot.Tick {
	span := max - min
	step := 1.0
	switch {
	case span > 24:
		step = 6
	case span > 12:
		step = 2
	case span <= 1:
		step = 1.0 / 6
	case span <= 3:
		step = 0.5
	}
	var ticks []plot.Tick
	for h := math.Ceil(min/step) * step; h <= max+1e-9; h += step {
		t := c.start + h
		hh := int(math.Floor(t)) % 24
		mm := int(math.Round((t - math.Floor(t)) * 60))
		ticks = append(ticks, plot.Tick{Value: h, Label: fmt.Sprintf("%02d:%02d", hh, mm)})
	}
	return ticks
}
