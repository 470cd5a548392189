package doctor

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// SupportCase writes a ready-to-send AWS Support case for Situation 1: the
// account, regions, quota codes with applied and default values, and the
// time and x-amzn-RequestId of every failed call.
func SupportCase(r Report) string {
	p := r.Probe
	if p == nil {
		return ""
	}
	var regions []string
	for _, rp := range p.Regions {
		regions = append(regions, rp.Region)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Subject: Amazon Bedrock throttles every request: effective quotas near zero (account %s)\n\n", p.Account)
	fmt.Fprintf(&b, "Hello,\n\n")
	b.WriteString(wrap(fmt.Sprintf("Every Amazon Bedrock request from our account is throttled, including a first request "+
		"with max_tokens 1, in every region we tried (%s). We believe the effective quotas were not provisioned correctly. "+
		"Please check the effective quotas (not only the defaults shown in Service Quotas) for the model below in these "+
		"regions and correct them.", strings.Join(regions, ", ")), "", 90))
	b.WriteString("\n")
	fmt.Fprintf(&b, "Account:   %s (%s)\n", p.Account, p.AccountFrom)
	var models []string
	for _, rp := range p.Regions {
		if !slices.Contains(models, rp.Model) {
			models = append(models, rp.Model)
		}
	}
	fmt.Fprintf(&b, "Model:     %s\n", strings.Join(models, ", "))
	fmt.Fprintf(&b, "Regions:   %s\n", strings.Join(regions, ", "))
	if p.Endpoint != "" {
		fmt.Fprintf(&b, "Endpoint:  %s\n", p.Endpoint)
	}
	fmt.Fprintf(&b, "\nQuotas (service code %s):\n", ServiceCode)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  region\tcode\tapplied\tdefault\tname")
	n := 0
	for _, rp := range p.Regions {
		for _, q := range rp.Quotas {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", rp.Region, q.Code, optCommas(q.Applied), optCommas(q.Default), q.Name)
			n++
		}
		if rp.QuotaError != "" {
			fmt.Fprintf(tw, "  %s\t(could not read: %s)\t\t\t\n", rp.Region, rp.QuotaError)
			n++
		}
	}
	if n == 0 {
		fmt.Fprintln(tw, "  (none read)\t\t\t\t")
	}
	_ = tw.Flush()
	fmt.Fprintf(&b, "\nFailed calls:\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  time (UTC)\tregion\tmax_tokens\tstatus\tx-amzn-RequestId\terror")
	for _, rp := range p.Regions {
		for _, c := range rp.Calls {
			if c.OK {
				continue
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\t%s: %s\n", c.Time.UTC().Format(time.RFC3339), rp.Region, c.MaxTokens, c.Status,
				orUnknown(c.RequestID), c.ErrorType, c.Message)
		}
	}
	_ = tw.Flush()
	fmt.Fprintf(&b, "\nThank you.\n")
	return b.String()
}
