package doctor

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
)

// wrapWidth is where long sentences wrap in text output.
const wrapWidth = 100

// WriteText renders the report for a person at a terminal.
func WriteText(w io.Writer, r Report) error {
	ew := &errWriter{w: w}
	p := func(format string, args ...any) { fmt.Fprintf(ew, format, args...) }

	p("headroom doctor: Claude Code on Amazon Bedrock\n\n")
	p("Settings (each layer overrides the ones above it)\n")
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	for _, l := range r.Layers {
		where, state := l.Path, ""
		switch {
		case l.Name == LayerEnvironment:
			where, state = "process environment", fmt.Sprintf("%d variables", l.Keys)
		case !l.Found && l.Ignored == "":
			state = "not found"
		case l.Ignored != "":
			state = "ignored: " + l.Ignored
		default:
			state = fmt.Sprintf("%d env keys", l.Keys)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", l.Name, where, state)
	}
	_ = tw.Flush()

	a := r.AWS
	p("\nAWS\n")
	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  Claude Code uses Bedrock\t%s\n", yesNo(a.UseBedrock))
	fmt.Fprintf(tw, "  region\t%s (%s)\n", a.Region.Value, a.Region.From)
	fmt.Fprintf(tw, "  AWS profile\t%s (%s)\n", a.Profile.Value, a.Profile.From)
	key := "not set"
	if a.BearerKey {
		key = "set (" + a.BearerFrom + "), value not shown"
	}
	fmt.Fprintf(tw, "  Bedrock API key\t%s\n", key)
	if a.SkipAuth {
		fmt.Fprintf(tw, "  authentication\tskipped (%s)\n", EnvSkipAuth)
	}
	base := "Amazon Bedrock (no " + EnvBaseURL + ")"
	if a.BaseURL.Value != "" {
		base = a.BaseURL.Value + " (" + a.BaseURL.From + ")"
	}
	fmt.Fprintf(tw, "  endpoint\t%s\n", base)
	if a.UseMantle {
		mb := "bedrock-mantle (no " + EnvMantleBaseURL + ")"
		if a.MantleBaseURL.Value != "" {
			mb = a.MantleBaseURL.Value + " (" + a.MantleBaseURL.From + ")"
		}
		fmt.Fprintf(tw, "  Mantle mode (%s)\tyes: %s\n", EnvUseMantle, mb)
	}
	_ = tw.Flush()

	p("\nModels and what each request reserves\n")
	writeModels(ew, r)
	as := r.Assumptions
	p("  Assumed: %s input tokens per request (--input-tokens), %d calls per agent task (--calls-per-task);\n"+
		"  counts hold each request's full reservation, as admission checks it.\n",
		humanize.Comma(int64(as.InputTokens)), as.CallsPerTask)

	if r.Probe != nil {
		writeProbe(ew, r.Probe)
	}

	p("\nFindings\n")
	for _, f := range r.Findings {
		tag := strings.ToUpper(string(f.Severity))
		p("  %-8s  %s\n", tag, f.Title)
		indent := strings.Repeat(" ", 12)
		p("%s", wrap(f.Why, indent, wrapWidth))
		if f.Fix != nil {
			if s := f.Fix.Snippet(); s != "" {
				p("%sfix: %s\n", indent, s)
			}
			if f.Fix.Action != "" {
				p("%s", wrap("do:  "+f.Fix.Action, indent, wrapWidth))
			}
		}
	}

	v := r.Verdict
	p("\nVerdict\n")
	p("%s", wrap(v.Summary, "  ", wrapWidth))
	for _, reason := range v.Reasons {
		p("%s", wrap("- "+reason, "    ", wrapWidth))
	}
	if len(v.Gateway) > 0 {
		p("\nWhat the Headroom gateway does about it\n")
		for _, line := range v.Gateway {
			p("%s", wrap("- "+line, "    ", wrapWidth))
		}
	}
	if r.SupportCase != "" {
		p("\nSupport case (ready to send to AWS Support)\n")
		p("%s\n", indentLines(r.SupportCase, "  | "))
	}
	return ew.err
}

func writeModels(w io.Writer, r Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	row := func(label string, cell func(ModelReport) string) {
		fmt.Fprintf(tw, "  %s", label)
		for _, m := range r.Models {
			fmt.Fprintf(tw, "\t%s", cell(m))
		}
		fmt.Fprintln(tw)
	}
	fits := func(get func(Fit) string) func(ModelReport) string {
		return func(m ModelReport) string {
			var parts []string
			for _, f := range m.Fits {
				parts = append(parts, f.Profile+" "+get(f))
			}
			return strings.Join(parts, " | ")
		}
	}
	row("", func(m ModelReport) string { return m.Role })
	row("model", func(m ModelReport) string { return m.ID })
	row("chosen by", func(m ModelReport) string { return m.From })
	row("max_tokens", func(m ModelReport) string {
		return humanize.Comma(int64(m.Output.MaxTokens)) + " (" + m.Output.MaxTokensFrom + ")"
	})
	row("thinking", func(m ModelReport) string {
		if m.Output.Thinking != ThinkingEnabled {
			return m.Output.Thinking
		}
		return "budget " + humanize.Comma(int64(m.Output.Budget)) + " (" + m.Output.BudgetFrom + ")"
	})
	row("output burndown", func(m ModelReport) string { return fmt.Sprintf("%dx", m.Burndown) })
	row("quota TPM / TPD", func(m ModelReport) string { return humanize.Comma(m.Limits.TPM) + " / " + humanize.Comma(m.Limits.TPD) })
	row("quota from", func(m ModelReport) string { return shorten(m.Limits.Source, 48) })
	row("reserved per request", fits(func(f Fit) string { return humanize.Comma(f.Reservation) }))
	row("  with max_tokens 4,096", func(m ModelReport) string { return "seed " + humanize.Comma(m.Advised.Reservation) })
	row("requests per minute", fits(func(f Fit) string { return humanize.Comma(f.RequestsPerMinute) }))
	row("requests per day", fits(func(f Fit) string { return humanize.Comma(f.RequestsPerDay) }))
	row("agent tasks per minute", fits(func(f Fit) string { return decimal(f.TasksPerMinute, 2) }))
	row("agent tasks per day", fits(func(f Fit) string { return decimal(f.TasksPerDay, 1) }))
	row("parallel burst", func(m ModelReport) string {
		var parts []string
		for _, f := range m.Fits {
			parts = append(parts, f.Profile+" "+humanize.Comma(f.Spike))
		}
		return fmt.Sprintf("%d calls: %s", m.ToolCalls, strings.Join(parts, " | "))
	})
	if len(r.Models) > 0 && r.Models[0].Mantle != nil {
		mantle := func(get func(*MantleFit) string) func(ModelReport) string {
			return func(m ModelReport) string {
				if m.Mantle == nil {
					return ""
				}
				return get(m.Mantle)
			}
		}
		row("Mantle: input / output TPM", mantle(func(f *MantleFit) string { return humanize.Comma(f.InputTPM) + " / " + humanize.Comma(f.OutputTPM) }))
		row("Mantle: reserved per request", mantle(func(f *MantleFit) string { return humanize.Comma(f.Reservation) + " (input + max_tokens)" }))
		row("Mantle: requests per minute", mantle(func(f *MantleFit) string { return humanize.Comma(f.RequestsPerMinute) }))
		row("Mantle: parallel burst", mantle(func(f *MantleFit) string { return humanize.Comma(f.Spike) }))
	}
	_ = tw.Flush()
}

func writeProbe(w io.Writer, p *ProbeResult) {
	target := "Amazon Bedrock"
	switch {
	case p.ThroughGateway():
		key := "no developer key: its operations endpoints are open to you"
		if p.Gateway.Key != "" {
			key = "key " + p.Gateway.Key
		}
		target = "the Headroom gateway at " + p.Endpoint + " (as " + key + ")"
	case p.Endpoint != "":
		target = p.Endpoint
	}
	fmt.Fprintf(w, "\nProbe of %s with %s (account %s)\n", target, p.Model, p.Account)
	if p.GatewayError != "" {
		fmt.Fprintf(w, "  the gateway did not answer the doctor: %s\n", p.GatewayError)
	}
	if p.NoCredentials != "" {
		fmt.Fprintf(w, "  no AWS credentials: %s\n", shorten(p.NoCredentials, 120))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  region\tcall\tmax_tokens\tresult\tx-amzn-RequestId")
	for _, rp := range p.Regions {
		for _, c := range rp.Calls {
			result := "passed"
			if !c.OK {
				result = fmt.Sprintf("%d %s: %s", c.Status, c.ErrorType, shorten(c.Message, 60))
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", rp.Region, c.Kind, humanize.Comma(int64(c.MaxTokens)), result, orUnknown(c.RequestID))
		}
	}
	_ = tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  region\tquota\tapplied\tdefault\tname")
	for _, rp := range p.Regions {
		for _, q := range rp.Quotas {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", rp.Region, q.Code, optCommas(q.Applied), optCommas(q.Default), q.Name)
		}
		if rp.QuotaError != "" {
			fmt.Fprintf(tw, "  %s\t(not read)\t\t\t%s\n", rp.Region, shorten(rp.QuotaError, 80))
		}
	}
	_ = tw.Flush()
}

// wrap breaks s into lines of at most width columns, each starting with indent.
func wrap(s, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(s) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	if len(line) > len(indent) {
		b.WriteString(line + "\n")
	}
	return b.String()
}

func indentLines(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(prefix+l, " ")
	}
	return strings.Join(lines, "\n")
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// errWriter keeps the first write error so rendering code can ignore them.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return len(p), nil
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
