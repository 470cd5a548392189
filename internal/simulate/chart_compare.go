package simulate

import (
	"math"
	"strconv"

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
	right, err := r.taskBars()
	if err != nil {
		return err
	}
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(18), PadTop: vg.Points(4), PadBottom: vg.Points(2), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	c := plot.Align([][]*plot.Plot{{left, right}}, tiles, dc)
	left.Draw(c[0][0])
	right.Draw(c[0][1])
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
		labels.Labels = append(labels.Labels, commas(int64(v)))
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
	p := newPlot("Agent tasks in the day")
	p.Y.Label.Text = "tasks"
	p.Y.Tick.Marker = countTicks{}
	n := len(r.Strategies)
	completed, failed, unfinished := make(plotter.Values, n), make(plotter.Values, n), make(plotter.Values, n)
	var top float64
	var labels plotter.XYLabels
	for i, s := range r.Strategies {
		completed[i], failed[i], unfinished[i] = float64(s.TasksCompleted), float64(s.TasksFailed), float64(s.TasksUnfinished)
		top = max(top, float64(s.TasksStarted))
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: float64(s.TasksStarted)})
		labels.Labels = append(labels.Labels, strconv.Itoa(s.TasksCompleted)+" done")
	}
	w := vg.Points(30)
	cb, err := plotter.NewBarChart(completed, w)
	if err != nil {
		return nil, err
	}
	cb.Color, cb.LineStyle.Width = colGreen, 0
	fb, err := plotter.NewBarChart(failed, w)
	if err != nil {
		return nil, err
	}
	fb.Color, fb.LineStyle.Width = colRed, 0
	fb.StackOn(cb)
	ub, err := plotter.NewBarChart(unfinished, w)
	if err != nil {
		return nil, err
	}
	ub.Color, ub.LineStyle.Width = colGrey, 0
	ub.StackOn(fb)
	p.Add(cb, fb, ub)
	p.Legend.Add("completed", cb)
	p.Legend.Add("failed", fb)
	p.Legend.Add("unfinished", ub)
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = 9
	demand := float64(r.Demand.TasksCompleted)
	if demand > 0 {
		l, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: demand}, {X: float64(n) - 0.5, Y: demand}})
		if err != nil {
			return nil, err
		}
		l.LineStyle.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		l.LineStyle.Width = vg.Points(1.2)
		l.LineStyle.Color = colBlack
		p.Add(l)
		p.Legend.Add("demand (no quota)", l)
		top = max(top, demand)
	}
	if err := addBarLabels(p, labels); err != nil {
		return nil, err
	}
	p.Y.Min, p.Y.Max = 0, math.Max(top*1.3, 1)
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
