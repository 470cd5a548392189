package simulate

import (
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// maxDeveloperBars is the largest team the developers chart draws one bar
// per developer for; larger teams are in the report's table.
const maxDeveloperBars = 12

// drawDevelopers is chart 4: for each strategy, the share of each
// developer's demanded tasks completed, side by side, so that a heavy user
// who takes the quota from the others shows as the others' short bars.
func (r *Result) drawDevelopers(dc draw.Canvas) error {
	p := newPlot("Each developer's demanded tasks completed")
	p.Y.Label.Text = "completed / demanded"
	p.Y.Tick.Marker = percentTicks{}
	devs := r.Demand.PerDev
	n := len(devs)
	w := vg.Points(math.Max(3, math.Min(14, 110/float64(n))))
	for j, d := range devs {
		vals := make(plotter.Values, len(r.Strategies))
		for i, s := range r.Strategies {
			if d.Demand > 0 {
				vals[i] = float64(s.PerDev[j].Completed) / float64(d.Demand)
			}
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return err
		}
		b.Color = palette[j%len(palette)]
		b.LineStyle.Width = 0
		b.Offset = vg.Length(float64(j)-float64(n-1)/2) * w
		p.Add(b)
		p.Legend.Add(d.Name, b)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = 8
	p.Y.Min, p.Y.Max = 0, 1.35
	p.NominalX(r.names()...)
	p.X.Min, p.X.Max = -0.6, float64(len(r.Strategies))-0.4
	slant(p)
	p.Draw(dc)
	return nil
}

// percentTicks labels 0 to 1 as 0% to 100%.
type percentTicks struct{}

func (percentTicks) Ticks(min, max float64) []plot.Tick {
	var ticks []plot.Tick
	for v := 0.0; v <= math.Min(max, 1)+1e-9; v += 0.25 {
		if v < min {
			continue
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: pct(v)})
	}
	return ticks
}
