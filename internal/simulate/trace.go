package simulate

import (
	"fmt"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
)

// traceLine is one request's hold on the quota over time, as the emulated
// Bedrock account books it: reserved at admission, adjusted while the
// answer streams, settled at the end.
type traceLine struct {
	label     string
	maxTokens int
	t, held   []float64 // seconds since the request was sent; reserved + charged
	charged   []float64 // the part already counted as used
	settled   float64
}

// Trace request: the seed's example input and a typical short answer.
const (
	traceOutput  = 600
	traceSeconds = 0.5 // adjust interval
)

// reservationTrace sends the seed's example request (1,000 input tokens,
// a 600-token answer) through an emulated account with the scenario's
// accounting profile, once per max_tokens setting, adjusting every half
// second as the answer streams, and records what it holds.
func reservationTrace(sc *Scenario, m *modelInfo, settings []int) ([]traceLine, error) {
	cfg := emulatorConfig(sc)
	// One bucket large enough for any request: the trace shows the
	// request's own charge, not whether it fits.
	cfg.Regions = []config.EmulatorRegion{{Name: sc.Region, Buckets: []config.Bucket{{Name: "trace", Kind: config.KindTPD, Limit: 1 << 40}}}}
	start := dayStart(sc.StartHourUTC)
	var out []traceLine
	for _, mt := range settings {
		acct, err := emulator.NewAccount(cfg, start)
		if err != nil {
			return nil, fmt.Errorf("trace account: %w", err)
		}
		d := bedrock.Demand{InputTokens: seedInput, MaxTokens: mt}
		res, err := acct.Admit(start, emulator.Call{ID: "trace", Region: sc.Region, Model: m.model, Demand: d})
		if err != nil {
			return nil, fmt.Errorf("trace admission: %w", err)
		}
		ln := traceLine{maxTokens: mt}
		record := func(sec float64) {
			st := acct.State(start.Add(seconds(sec)))
			var held, charged float64
			if f := st.Regions[0].InFlight; len(f) > 0 {
				held, charged = float64(f[0].Reserved+f[0].Charged), float64(f[0].Charged)
			} else {
				held, charged = float64(st.Regions[0].Buckets[0].Used), float64(st.Regions[0].Buckets[0].Used)
			}
			ln.t = append(ln.t, sec)
			ln.held = append(ln.held, held)
			ln.charged = append(ln.charged, charged)
		}
		ln.t, ln.held, ln.charged = []float64{-1, 0}, []float64{0, 0}, []float64{0, 0}
		record(0)
		ttft, tps := m.speed.FirstTokenSeconds, m.speed.TokensPerSecond
		end := ttft + traceOutput/tps
		for sec := traceSeconds; sec < end; sec += traceSeconds {
			gen := int(max(0, (sec-ttft)*tps))
			res.Adjust(start.Add(seconds(sec)), bedrock.Usage{InputTokens: seedInput, OutputTokens: gen})
			record(sec)
		}
		final := res.Settle(start.Add(seconds(end)), bedrock.Usage{InputTokens: seedInput, OutputTokens: traceOutput})
		record(end)
		record(end + 3)
		ln.settled = float64(final)
		out = append(out, ln)
	}
	return out, nil
}
