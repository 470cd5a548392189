package simulate

import (
	"fmt"

	"github.com/dustin/go-humanize"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// drawReservation is chart 1: the example request's hold on the quota
// under each max_tokens setting, step by step.
func (r *Result) drawReservation(dc draw.Canvas) error {
	p := newPlot(fmt.Sprintf("One request's reservation over time (%s profile, %s)", r.Profile, shortModel(r.Figures.Model)))
	p.X.Label.Text = "seconds since the request was sent"
	p.Y.Label.Text = "quota tokens held by the request"
	p.Y.Tick.Marker = tokenTicks{}
	p.Y.Min = 0
	p.Legend.Top = true
	var top float64
	colors := []int{8, 1, 2}
	var labels plotter.XYLabels
	for i, ln := range r.trace {
		xy := make(plotter.XYs, len(ln.t))
		for j := range ln.t {
			xy[j] = plotter.XY{X: ln.t[j], Y: ln.held[j]}
			top = max(top, ln.held[j])
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.StepStyle = plotter.PostStep
		l.LineStyle.Width = vg.Points(2.5)
		l.LineStyle.Color = palette[colors[i%len(colors)]]
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s: reserves %s, settles at %s", ln.label, humanize.Comma(int64(ln.held[2])), humanize.Comma(int64(ln.settled))), l)
		labels.XYs = append(labels.XYs, plotter.XY{X: 0.3, Y: ln.held[2]})
		labels.Labels = append(labels.Labels, humanize.Comma(int64(ln.held[2]))+" reserved")
	}
	if len(r.trace) > 0 {
		ln := r.trace[len(r.trace)-1]
		xy := make(plotter.XYs, len(ln.t))
		for j := range ln.t {
			xy[j] = plotter.XY{X: ln.t[j], Y: ln.charged[j]}
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.LineStyle.Width = vg.Points(1.5)
		l.LineStyle.Color = colBlack
		l.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		p.Legend.Add("counted as used so far (input + output × burndown)", l)
		end := ln.t[len(ln.t)-1]
		labels.XYs = append(labels.XYs, plotter.XY{X: end - 2.5, Y: ln.settled})
		labels.Labels = append(labels.Labels, "settled "+humanize.Comma(int64(ln.settled)))
		if lim := float64(r.Figures.QuotaLimit); lim > 0 && lim <= 2*top {
			q, err := plotter.NewLine(plotter.XYs{{X: ln.t[0], Y: lim}, {X: end, Y: lim}})
			if err != nil {
				return err
			}
			q.LineStyle.Width = vg.Points(1)
			q.LineStyle.Color = colGrey
			q.LineStyle.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
			p.Add(q)
			p.Legend.Add(fmt.Sprintf("the %s quota: %s", r.Figures.Quota, humanize.Comma(r.Figures.QuotaLimit)), q)
			top = lim
		}
	}
	p.Y.Max = top * 1.45
	lab, err := plotter.NewLabels(labels)
	if err != nil {
		return err
	}
	for i := range lab.TextStyle {
		lab.TextStyle[i].Font.Size = fontSize(9)
		lab.Offset = vg.Point{Y: vg.Points(3)}
	}
	p.Add(lab)
	p.Draw(dc)
	return nil
}

// shortModel drops the geography prefix and version suffix of a model ID
// for titles.
func shortModel(id string) string {
	m := id
	for _, pre := range []string{"us.", "eu.", "apac.", "global."} {
		if len(m) > len(pre) && m[:len(pre)] == pre {
			m = m[len(pre):]
		}
	}
	if len(m) > 10 && m[:10] == "anthropic." {
		m = m[10:]
	}
	return m
}
