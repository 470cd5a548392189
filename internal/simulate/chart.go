package simulate

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/dustin/go-humanize"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Chart is one chart of a result, rendered as SVG and PNG.
type Chart struct {
	// Name is the file name without extension.
	Name    string
	Title   string
	Caption string
	SVG     []byte
	PNG     []byte
}

// pngDPI is the PNG resolution: a 10-inch chart is 1,200 pixels wide.
const pngDPI = 120

// Charts renders the result's three charts: one request's reservation over
// time, the quota draining over the day by developer, and each strategy's
// reservation per request and tasks per day side by side.
func (r *Result) Charts() ([]Chart, error) {
	type spec struct {
		name, title, caption string
		w, h                 vg.Length
		draw                 func(dc draw.Canvas) error
	}
	drainRows := (len(r.Strategies) + 1) / 2
	specs := []spec{
		{"reservation", "One request's reservation over time",
			fmt.Sprintf("The seed's example request (%s input tokens, a %d-token answer) as the emulated Bedrock account books it under the %s profile: reserved at admission, adjusted as the answer streams, settled at the end.",
				humanize.Comma(int64(r.Figures.Input)), traceOutput, r.Profile),
			10 * vg.Inch, 4.5 * vg.Inch, r.drawReservation},
		{"drain", r.drainTitle(),
			"The quota that binds (the one the team's demand presses hardest), per developer, stacked: a daily quota as it fills (the red line adds what calls in flight hold reserved), a per-minute quota as tokens settled per minute (the red line is what calls in flight hold reserved). The dashed line is the limit. account-per-dev is drawn on its own scale against all its accounts' limits together.",
			10 * vg.Inch, vg.Length(drainRows)*3*vg.Inch + 0.4*vg.Inch, r.drawDrain},
		{"comparison", "Before and after: reservation per request, tasks, and 429s",
			"Left: the average admission charge Bedrock reserved per answered call. Middle: the demanded tasks, completed (green), failed by the cap (orange: a long edit or answer max_tokens cut that Claude Code could not complete), failed otherwise (red: 429s) and unfinished at the end of the day (grey). Right: the 429s Claude Code saw.",
			10 * vg.Inch, 4.5 * vg.Inch, r.drawComparison},
	}
	if len(r.Demand.PerDev) <= maxDeveloperBars {
		specs = append(specs, spec{"developers", "Each developer's demanded tasks completed",
			"For each strategy, the share of each developer's demanded tasks completed, one bar per developer: a heavy user who takes the shared quota from the others shows as the others' shorter bars.",
			10 * vg.Inch, 4.5 * vg.Inch, r.drawDevelopers})
	}
	var out []Chart
	for _, s := range specs {
		svg, err := render(s.w, s.h, s.draw, false)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", s.name, err)
		}
		png, err := render(s.w, s.h, s.draw, true)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", s.name, err)
		}
		out = append(out, Chart{Name: s.name, Title: s.title, Caption: s.caption, SVG: svg, PNG: png})
	}
	return out, nil
}

// render draws onto an SVG or PNG canvas of w×h.
func render(w, h vg.Length, f func(draw.Canvas) error, png bool) ([]byte, error) {
	var buf bytes.Buffer
	if png {
		c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(pngDPI), vgimg.UseBackgroundColor(color.White))
		if err := f(draw.New(c)); err != nil {
			return nil, err
		}
		if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	c := vgsvg.New(w, h)
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	if err := f(dc); err != nil {
		return nil, err
	}
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteCharts writes each chart as NAME.svg and NAME.png into dir.
func WriteCharts(dir string, charts []Chart) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, c := range charts {
		if err := os.WriteFile(filepath.Join(dir, c.Name+".svg"), c.SVG, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, c.Name+".png"), c.PNG, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Colors: Tableau 10, readable on white and in print.
var palette = []color.Color{
	rgb(0x4e79a7), rgb(0xf28e2b), rgb(0x59a14f), rgb(0xb07aa1), rgb(0x76b7b2),
	rgb(0xedc948), rgb(0xff9da7), rgb(0x9c755f), rgb(0xe15759), rgb(0xbab0ac),
}

var (
	colGreen  = rgb(0x59a14f)
	colRed    = rgb(0xe15759)
	colOrange = rgb(0xf28e2b)
	colGrey   = rgb(0xbab0ac)
	colBlack  = color.Black
)

func rgb(v uint32) color.Color {
	return color.RGBA{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v), A: 255}
}

// strategyColor gives each strategy the same color in every chart.
func strategyColor(name string) color.Color {
	switch name {
	case "direct-unset":
		return rgb(0xe15759)
	case "direct-defaults":
		return rgb(0xf28e2b)
	case "direct-4096":
		return rgb(0xedc948)
	case "account-per-dev", "account-per-dev-4096":
		return rgb(0xb07aa1)
	case "headroom":
		return rgb(0x59a14f)
	case "headroom-4096":
		return rgb(0x76b7b2)
	}
	return rgb(0x4e79a7)
}

// newPlot returns a plot with the house style.
func newPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 13
	p.Title.Padding = vg.Points(6)
	p.X.Label.TextStyle.Font.Size = 11
	p.Y.Label.TextStyle.Font.Size = 11
	p.X.Tick.Label.Font.Size = 10
	p.Y.Tick.Label.Font.Size = 10
	p.Legend.TextStyle.Font.Size = 10
	p.Add(newGrid())
	return p
}

// tokenTicks labels a token axis 500k, 1.5M.
type tokenTicks struct{}

func (tokenTicks) Ticks(min, max float64) []plot.Tick { return niceTicks(min, max, false, human) }

// countTicks labels a count axis with whole numbers.
type countTicks struct{}

func (countTicks) Ticks(min, max float64) []plot.Tick {
	return niceTicks(min, max, true, func(v float64) string { return humanize.Comma(int64(v)) })
}

// niceTicks puts about six labelled ticks on 1-2-5 steps, with four
// unlabelled ones between labels.
func niceTicks(lo, hi float64, whole bool, label func(float64) string) []plot.Tick {
	if !(hi > lo) {
		return []plot.Tick{{Value: lo, Label: label(lo)}}
	}
	raw := (hi - lo) / 6
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	if whole {
		step = math.Max(1, math.Round(step))
	}
	minor := step / 5
	if whole && minor < 1 {
		minor = step
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/minor) * minor; v <= hi+minor/1e6; v += minor {
		t := plot.Tick{Value: v}
		if k := v / step; math.Abs(k-math.Round(k)) < 1e-6 {
			t.Label = label(v)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// human formats a token count: 950, 20k, 1.5M, 2B.
func human(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trimFloat(v/1e9) + "B"
	case a >= 1e6:
		return trimFloat(v/1e6) + "M"
	case a >= 1e3:
		return trimFloat(v/1e3) + "k"
	}
	return trimFloat(v)
}

func trimFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// fontSize is a helper for text styles.
func fontSize(pt float64) font.Length { return font.Length(pt) }
