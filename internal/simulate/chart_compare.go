package simulate

import (
	"image/color"
	"math"
	"strconv"

	"github.com/dustin/go-humanize"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// drawComparison is chart 3: each strategy's reservation per request and
// its tasks completed, failed and unfinished, side by side.
func (r *Result) drawComparison(dc draw.Canvas) error {
	left, err := r.reservationBars()
	if err != nil {
		return err
	}
	mid, err := r.taskBars()
	if err != nil {
		return err
	}
	right, err := r.throttleBars()
	if err != nil {
		return err
	}
	tiles := draw.Tiles{Rows: 1, Cols: 3, PadX: vg.Points(18), PadTop: vg.Points(4), PadBottom: vg.Points(2), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	c := plot.Align([][]*plot.Plot{{left, mid, right}}, tiles, dc)
	left.Draw(c[0][0])
	mid.Draw(c[0][1])
	right.Draw(c[0][2])
	return nil
}

func (r *Result) names() []string {
	var out []string
	for _, s := range r.Strategies {
		out = append(out, s.Name)
	}
	return out
}

func (r *Result) reservationBars() (*plot.Plot, error) {
	p := newPlot("Reserved per request")
	p.Y.Label.Text = "quota tokens reserved at admission (mean)"
	p.Y.Tick.Marker = tokenTicks{}
	var top float64
	var labels plotter.XYLabels
	for i, s := range r.Strategies {
		v := s.MeanReservation
		top = max(top, v)
		b, err := plotter.NewBarChart(plotter.Values{v}, vg.Points(30))
		if err != nil {
			return nil, err
		}
		b.XMin = float64(i)
		b.Color = strategyColor(s.Name)
		b.LineStyle.Width = 0
		p.Add(b)
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: v})
		labels.Labels = append(labels.Labels, humanize.Comma(int64(v)))
	}
	if err := addBarLabels(p, labels); err != nil {
		return nil, err
	}
	p.Y.Min, p.Y.Max = 0, math.Max(top*1.15, 1)
	p.NominalX(r.names()...)
	slant(p)
	return p, nil
}

func (r *Result) taskBars() (*plot.Plot, error) {
	p := newPlot("Demanded tasks")
	p.Y.Label.Text = "tasks"
	p.Y.Tick.Marker = countTicks{}
	n := len(r.Strategies)
	layers := []struct {
		name  string
		color color.Color
		value func(StrategyResult) int
	}{
		{"completed", colGreen, func(s StrategyResult) int { return s.TasksCompleted }},
		{"failed by the cap", colOrange, func(s StrategyResult) int { return s.TasksFailedByCap }},
		{"failed (429s)", colRed, func(s StrategyResult) int { return s.TasksFailed - s.TasksFailedByCap }},
		{"unfinished", colGrey, func(s StrategyResult) int { return s.TasksUnfinished }},
	}
	w := vg.Points(22)
	var below *plotter.BarChart
	for _, l := range layers {
		vals := make(plotter.Values, n)
		for i, s := range r.Strategies {
			vals[i] = float64(l.value(s))
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		b.Color, b.LineStyle.Width = l.color, 0
		if below != nil {
			b.StackOn(below)
		}
		below = b
		p.Add(b)
		p.Legend.Add(l.name, b)
	}
	var labels plotter.XYLabels
	for i, s := range r.Strategies {
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: float64(s.TasksDemanded)})
		labels.Labels = append(labels.Labels, strconv.Itoa(s.TasksCompleted))
	}
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = 8
	if err := addBarLabels(p, labels); err != nil {
		return nil, err
	}
	p.Y.Min, p.Y.Max = 0, math.Max(float64(r.Demand.TasksDemanded)*1.45, 1)
	p.NominalX(r.names()...)
	slant(p)
	return p, nil
}

func (r *Result) throttleBars() (*plot.Plot, error) {
	p := newPlot("429s Claude Code saw")
	p.Y.Label.Text = "429 responses"
	p.Y.Tick.Marker = countTicks{}
	var top float64
	var labels plotter.XYLabels
	for i, s := range r.Strategies {
		v := float64(s.Client429s)
		top = max(top, v)
		b, err := plotter.NewBarChart(plotter.Values{v}, vg.Points(22))
		if err != nil {
			return nil, err
		}
		b.XMin = float64(i)
		b.Color = strategyColor(s.Name)
		b.LineStyle.Width = 0
		p.Add(b)
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: v})
		labels.Labels = append(labels.Labels, humanize.Comma(int64(s.Client429s)))
	}
	if err := addBarLabels(p, labels); err != nil {
		return nil, err
	}
	p.Y.Min, p.Y.Max = 0, math.Max(top*1.15, 1)
	p.NominalX(r.names()...)
	slant(p)
	return p, nil
}

func addBarLabels(p *plot.Plot, labels plotter.XYLabels) error {
	l, err := plotter.NewLabels(labels)
	if err != nil {
		return err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].Font.Size = fontSize(9)
		l.TextStyle[i].XAlign = draw.XCenter
	}
	l.Offset = vg.Point{Y: vg.Points(3)}
	p.Add(l)
	return nil
}

// slant tilts the strategy names so that long ones do not collide.
func slant(p *plot.Plot) {
	p.X.Tick.Label.Rotation = math.Pi / 9
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
}

func newGrid() *plotter.Grid {
	g := plotter.NewGrid()
	g.Vertical.Width = 0
	g.Horizontal.Color = rgb(0xe0e0e0)
	return g
}
