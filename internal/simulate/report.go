package simulate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"os"
	"path/filepath"

	"github.com/dustin/go-humanize"
)

// WriteReport writes an HTML page, dir/index.html, with the result's
// tables and charts (written beside it as SVG and PNG), and the result as
// dir/result.json.
func WriteReport(dir string, r *Result, charts []Chart) error {
	if err := WriteCharts(dir, charts); err != nil {
		return err
	}
	var page bytes.Buffer
	if err := reportTemplate.Execute(&page, reportData{R: r, Charts: charts}); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), page.Bytes(), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "result.json"), append(js, '\n'), 0o644)
}

type reportData struct {
	R      *Result
	Charts []Chart
}

// Rows is the demand row followed by the strategies, for the report.
func (d reportData) Rows() []StrategyResult {
	return append([]StrategyResult{d.R.Demand}, d.R.Strategies...)
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"commas": func(v any) string {
		if n, ok := v.(int64); ok {
			return humanize.Comma(n)
		}
		switch n := v.(type) {
		case int:
			return humanize.Comma(int64(n))
		case int64:
			return humanize.Comma(n)
		case float64:
			return humanize.Comma(int64(n))
		}
		return fmt.Sprint(v)
	},
	"pct":      pct,
	"dur":      dur,
	"fairness": fairness,
	"cell": func(s StrategyResult, i int) string {
		return fmt.Sprintf("%d/%d", s.PerDev[i].Completed, s.PerDev[i].Demand)
	},
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>headroom simulate: {{.R.Scenario}}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: .6rem 0; font-variant-numeric: tabular-nums; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
tr.demand td { color: #666; font-style: italic; }
figure { margin: 1rem 0; } figure img { width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9rem; }
.note { color: #555; font-size: .9rem; }
.wide { overflow-x: auto; } #strategies { font-size: .85rem; } #strategies th, #strategies td { padding: .25rem .4rem; } #strategies td:first-child { white-space: nowrap; }
.verdict { font-size: 1.15rem; font-weight: 600; border-left: 4px solid #59a14f; padding: .4rem .8rem; background: #f6faf5; }
</style>
</head>
<body>
<h1>headroom simulate: {{.R.Scenario}}</h1>
<p class="verdict" id="verdict">{{.R.Verdict}}</p>
<p>{{.R.Description}}</p>
<p class="note">{{.R.Developers}} developers, {{.R.Hours}} hours from {{printf "%02.0f:00" .R.StartHour}} UTC, seed {{.R.Seed}}, accounting profile <b>{{.R.Profile}}</b>.
Quotas: {{range $i, $b := .R.Buckets}}{{if $i}}, {{end}}{{$b.Name}} ({{$b.Kind}} {{commas $b.Limit}}){{end}}; the binding quota is <b>{{.R.Binding}}</b>.</p>

<h2>Reservation per request</h2>
{{with .R.Figures}}
<p>What one request with {{commas .Input}} input tokens reserves at admission on {{.Model}} (burndown {{.Burndown}}):</p>
<table>
<tr><th>setting</th><th>max_tokens</th><th>max_tokens × {{.Burndown}}</th><th>reserved</th><th>of {{.Quota}}</th><th>fit at once</th></tr>
{{range .Rows}}<tr><td>{{.Setting}}</td><td>{{commas .MaxTokens}}</td><td>{{commas .OutputReserve}}</td><td>{{commas .Reserved}}</td><td>{{pct .QuotaShare}}</td><td>{{.CallsThatFit}}</td></tr>
{{end}}</table>
<p>4,096 instead of {{commas .Default}}: <b>{{.MoreCalls}}×</b> more calls from the same quota. The workload: {{.Workload.Tasks}} tasks with no quota,
{{.Workload.CallsPerTask}} calls and {{commas .Workload.TokensPerTask}} quota tokens per task; {{commas .Workload.DemandTokens}} tokens of {{.Quota}} in the day.</p>
{{end}}

<h2>Strategies on the same demand</h2>
<div class="wide"><table id="strategies">
<tr><th>strategy</th><th>completed / demanded</th><th>failed</th><th>failed by the cap</th><th>unfinished</th><th>429s seen</th><th>first 429</th><th>p50 task</th><th>p95 task</th><th>p95 queue</th><th>reserved / call</th><th>cut answers</th><th>output tokens in cut answers</th><th>fairness</th><th>{{.R.Binding}} used</th></tr>
{{range .Rows}}<tr{{if eq .Name "no-quota"}} class="demand"{{end}}><td title="{{.Description}}">{{.Name}}</td><td>{{commas .TasksCompleted}}/{{commas .TasksDemanded}}</td><td>{{commas .TasksFailed}}</td><td>{{commas .TasksFailedByCap}}</td><td>{{commas .TasksUnfinished}}</td><td>{{commas .Client429s}}</td><td>{{if .FirstThrottled}}#{{.FirstThrottled}}{{else}}-{{end}}</td><td>{{dur .TaskSecondsP50}}</td><td>{{dur .TaskSecondsP95}}</td><td>{{dur .QueueSecondsP95}}</td><td>{{commas .MeanReservation}}</td><td>{{commas .CutAnswers}}</td><td>{{commas .CutOutputTokens}}</td><td>{{fairness .Fairness}}</td><td>{{pct .Utilisation}}</td></tr>
{{end}}</table></div>
<p class="note">no-quota is the same workload with no quota at all: it fixes the team's demand, the tasks every strategy faces, so that no strategy can complete more.
"Failed by the cap": tasks failed because max_tokens cut an answer Claude Code could not complete (text still cut after its three recovery turns, or a tool call cut mid-JSON on every repeat).
"429s seen" counts every 429 Claude Code received, retried or not; "first 429" is the number of the first request answered 429.
Fairness is Jain's index of each developer's completed tasks over their demand (1 is even).</p>
{{range .R.Strategies}}<p class="note"><b>{{.Name}}</b>: {{.Description}}.</p>
{{end}}

<h2>Completed tasks per developer</h2>
<table>
<tr><th>developer</th>{{range .R.Strategies}}<th>{{.Name}}</th>{{end}}</tr>
{{$r := .R}}{{range $i, $d := .R.Demand.PerDev}}<tr><td>{{$d.Name}}</td>{{range $r.Strategies}}<td>{{cell . $i}}</td>{{end}}</tr>
{{end}}</table>

{{range .Charts}}
<h2>{{.Title}}</h2>
<figure><img src="{{.Name}}.svg" alt="{{.Title}}"><figcaption>{{.Caption}} (<a href="{{.Name}}.png">PNG</a>, <a href="{{.Name}}.svg">SVG</a>)</figcaption></figure>
{{end}}
<p class="note">Generated by <code>headroom simulate --scenario {{.R.Scenario}} --seed {{.R.Seed}}</code>; the full result is in <a href="result.json">result.json</a>.</p>
</body>
</html>
`))
