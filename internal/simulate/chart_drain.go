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
)

// maxDrainLayers is the most developers drawn as their own layer; the
// rest are stacked together as "others".
const maxDrainLayers = 8

// drawDrain is chart 2: one panel per strategy, each developer's settled
// use of the drain bucket stacked over the day, with what is held in
// flight on top and the limit.
func (r *Result) drawDrain(dc draw.Canvas) error {
	n := len(r.Strategies)
	cols := min(2, n)
	rows := (n + cols - 1) / cols
	// One scale for every panel, so that they compare at a glance: up to
	// one account's limit or the most drawn, and up to the last change.
	var top, until float64
	for _, s := range r.Strategies {
		d := &s.drain
		top = max(top, float64(d.limit))
		last := len(d.hours) - 1
		for i := range d.hours {
			top = max(top, d.committed[i])
			if d.committed[i] != d.committed[last] || d.total(i) != d.total(last) {
				until = max(until, d.hours[min(i+1, last)])
			}
		}
	}
	until = min(r.Hours, max(1, math.Ceil(until*1.1*2)/2))
	plots := make([][]*plot.Plot, rows)
	for j := range plots {
		plots[j] = make([]*plot.Plot, cols)
	}
	for k, s := range r.Strategies {
		p, err := r.drainPanel(s, top*1.08, until, k == 0)
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
	title.FillText(sty, vg.Point{X: (dc.Min.X + dc.Max.X) / 2, Y: dc.Max.Y - 0.18*vg.Inch},
		fmt.Sprintf("The %s quota draining over the day, by developer (%s)", r.Figures.Quota, r.Scenario))
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

// total is the drain bucket's settled use by all developers at sample i.
func (d *drainSeries) total(i int) float64 {
	var sum float64
	for _, dev := range d.byDev {
		sum += dev[i]
	}
	return sum
}

// layers groups developers: the heaviest users each get a layer, in name
// order, and everyone else one "others" layer.
func (d *drainSeries) layers() (names []string, series [][]float64) {
	n := len(d.byDev)
	if n == 0 || len(d.hours) == 0 {
		return nil, nil
	}
	last := len(d.hours) - 1
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	if n > maxDrainLayers {
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
		others := make([]float64, len(d.hours))
		for _, i := range order[maxDrainLayers-1:] {
			for t := range others {
				others[t] += d.byDev[i][t]
			}
		}
		for _, i := range keep {
			names = append(names, d.names[i])
			series = append(series, d.byDev[i])
		}
		names = append(names, fmt.Sprintf("%d others", n-len(keep)))
		series = append(series, others)
		return names, series
	}
	for _, i := range order {
		names = append(names, d.names[i])
		series = append(series, d.byDev[i])
	}
	return names, series
}

func (r *Result) drainPanel(s StrategyResult, top, until float64, legend bool) (*plot.Plot, error) {
	d := &s.drain
	limit := float64(d.limit) * float64(d.accounts)
	title := s.Name
	if d.accounts > 1 {
		title = fmt.Sprintf("%s (%d accounts, %s each)", s.Name, d.accounts, commas(d.limit))
	}
	p := newPlot(title)
	p.Title.TextStyle.Font.Size = 11
	p.Y.Tick.Marker = tokenTicks{}
	p.X.Tick.Marker = clockTicks{start: r.StartHour}
	p.X.Min, p.X.Max = 0, until
	p.Y.Min, p.Y.Max = 0, top
	p.Y.Label.Text = "tokens"
	names, series := d.layers()
	hours := d.hours
	for len(hours) > 1 && hours[len(hours)-2] >= until {
		hours = hours[:len(hours)-1]
	}
	// Stack: draw the cumulative top layer first, each filled to zero, so
	// the lower layers paint over it.
	cum := make([][]float64, len(series))
	for k := range series {
		cum[k] = make([]float64, len(hours))
		for t := range hours {
			cum[k][t] = series[k][t]
			if k > 0 {
				cum[k][t] += cum[k-1][t]
			}
		}
	}
	fills := make([]*plotter.Line, len(series))
	for k := len(series) - 1; k >= 0; k-- {
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
		for k := range series {
			p.Legend.Add(names[k], fills[k])
		}
	}
	hl, err := plotter.NewLine(xyOf(hours, d.committed[:len(hours)]))
	if err != nil {
		return nil, err
	}
	hl.LineStyle.Color = colRed
	hl.LineStyle.Width = vg.Points(1.2)
	p.Add(hl)
	lim, err := plotter.NewLine(plotter.XYs{{X: 0, Y: limit}, {X: until, Y: limit}})
	if err != nil {
		return nil, err
	}
	lim.LineStyle.Color = colBlack
	lim.LineStyle.Width = vg.Points(1.2)
	lim.LineStyle.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	if limit <= top {
		p.Add(lim)
	}
	if legend {
		p.Legend.Add("settled + reserved in flight", hl)
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
