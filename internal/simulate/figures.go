package simulate

import (
	"github.com/headroomhq/headroom/internal/bedrock"
)

// Figures are the seed's worked numbers, computed with the scenario's
// accounting profile for its main model: what one request reserves at
// admission with max_tokens unset, with Claude Code's default and with
// 4,096, against the drain quota.
type Figures struct {
	Model    string `json:"model"`
	Profile  string `json:"profile"`
	Burndown int    `json:"burndown"`
	// Input is the example request's input tokens (the seed's 1,000).
	Input int `json:"input_tokens"`
	// Quota and QuotaLimit name the binding bucket (the one the demand
	// presses hardest).
	Quota      string      `json:"quota"`
	QuotaLimit int64       `json:"quota_limit"`
	Rows       []FigureRow `json:"rows"`
	MoreCalls  float64     `json:"more_calls_4096_vs_default"`
	// Default is Claude Code's default max_tokens on the model.
	Default  int           `json:"client_default_max_tokens"`
	Workload WorkloadShape `json:"workload"`
}

// FigureRow is one max_tokens setting.
type FigureRow struct {
	Setting   string `json:"setting"`
	MaxTokens int    `json:"max_tokens"`
	// OutputReserve is the output part of the reservation (max_tokens ×
	// burndown under the seed profile): the seed's 160,000 and 20,480.
	OutputReserve int64 `json:"output_reserve"`
	// Reserved is the whole admission charge with Input tokens of input:
	// the seed's 321,000.
	Reserved int64 `json:"reserved"`
	// QuotaShare is Reserved over the quota's limit (the seed's 64%).
	QuotaShare float64 `json:"quota_share"`
	// CallsThatFit is how many such reservations the quota holds at once.
	CallsThatFit int64 `json:"calls_that_fit"`
}

// WorkloadShape summarizes the simulated workload (from the no-quota run).
type WorkloadShape struct {
	Tasks         int     `json:"tasks"`
	CallsPerTask  float64 `json:"calls_per_task"`
	TokensPerTask float64 `json:"quota_tokens_per_task"`
	DemandTokens  float64 `json:"demand_tokens"`
}

// seedInput is the seed's example input.
const seedInput = 1000

func seedFigures(sc *Scenario, demand *world, binding int) Figures {
	p := demand.profile
	m := demand.devs[0].main
	f := Figures{Model: m.model.ID, Profile: p.Name, Burndown: m.burndown, Input: seedInput,
		Quota: sc.Buckets[binding].Name, QuotaLimit: sc.Buckets[binding].Limit}
	for _, row := range []struct {
		setting string
		max     int
	}{
		{"max_tokens unset (the model's limit)", m.maxOut},
		{"Claude Code default (CLAUDE_CODE_MAX_OUTPUT_TOKENS unset)", min(sc.Workload.MaxTokens, m.maxOut)},
		{"CLAUDE_CODE_MAX_OUTPUT_TOKENS=4096 (headroom-4096's cap)", 4096},
	} {
		r := FigureRow{Setting: row.setting, MaxTokens: row.max,
			OutputReserve: p.Admission(bedrock.Demand{MaxTokens: row.max}, m.burndown),
			Reserved:      p.Admission(bedrock.Demand{InputTokens: seedInput, MaxTokens: row.max}, m.burndown),
		}
		if f.QuotaLimit > 0 {
			r.QuotaShare = round(float64(r.Reserved)/float64(f.QuotaLimit), 4)
			r.CallsThatFit = f.QuotaLimit / r.Reserved
		}
		f.Rows = append(f.Rows, r)
	}
	f.Default = f.Rows[1].MaxTokens
	f.MoreCalls = round(float64(f.Rows[1].OutputReserve)/float64(f.Rows[2].OutputReserve), 2)
	s := &demand.stats
	f.Workload.Tasks = s.completed
	f.Workload.DemandTokens = s.bucketUse[binding]
	if s.completed > 0 {
		f.Workload.CallsPerTask = round(float64(s.calls)/float64(s.started), 1)
		f.Workload.TokensPerTask = round(s.bucketUse[binding]/float64(s.started), 0)
	}
	return f
}
