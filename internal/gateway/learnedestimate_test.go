package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
)

// tokenizerUpstream answers InvokeModel and Messages calls as a Bedrock
// whose tokenizer counts the input of Opus 4.7 at 1.5 times the gateway's
// body estimate and every other model's at exactly the estimate. Each call
// waits at the upstream until the test has read the ledger's hold: it
// sends on arrived, then waits for release.
type tokenizerUpstream struct {
	arrived, release chan struct{}
}

func (f *tokenizerUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body struct {
		Model string `json:"model"`
	}
	_ = json.Unmarshal(b, &body)
	model := body.Model // Messages: the body names it; InvokeModel: the path
	if m, ok := strings.CutPrefix(r.URL.Path, "/model/"); ok {
		model, _, _ = strings.Cut(m, "/")
	}
	input := bedrock.EstimateTokens(b)
	if strings.Contains(model, "claude-opus-4-7") {
		input = input * 3 / 2
	}
	f.arrived <- struct{}{}
	<-f.release
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":%d,"output_tokens":3}}`, input)
}

// TestLearnedInputEstimate: when Bedrock counts a model's input at 1.5
// times the gateway's body estimate (Opus 4.7's tokenizer), the gateway
// learns it from the usage it settles, and a later request of that model,
// in another spelling and through another front door, holds the learned
// input in the ledger while it is in flight; another model, whose
// estimates were right, keeps its reservation, and /v1/status shows both
// factors. It fails if admission reserves the raw estimate, or if
// settlement does not learn.
func TestLearnedInputEstimate(t *testing.T) {
	t.Parallel()
	up := &tokenizerUpstream{arrived: make(chan struct{}), release: make(chan struct{})}
	scope := bedrock.Scope{Models: []string{"claude"}}
	h := newHarness(t, harnessOpts{upstream: up, settleDelay: -1,
		buckets: []config.Bucket{{Name: "claude-tpd", Kind: config.KindTPD, Limit: 100_000_000, Scope: scope}}})
	const opus, opusOther = "us.anthropic.claude-opus-4-7", "anthropic.claude-opus-4-7"
	// About 10,000 tokens of input and max_tokens 1, so that the input is
	// a third of a reservation (the rest is the seed profile's 4,096 × 5).
	text := strings.Repeat("lorem ipsum dolor sit amet, ", 40_000/28)
	invoke := fmt.Sprintf(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":1,"messages":[{"role":"user","content":%q}]}`, text)
	messages := func(model string) string {
		return fmt.Sprintf(`{"model":%q,"max_tokens":1,"messages":[{"role":"user","content":%q}]}`, model, text)
	}
	raw := bedrock.EstimateTokens([]byte(invoke))
	if raw < 9_000 {
		t.Fatalf("the body's estimate is %d tokens, want about 10,000", raw)
	}
	// held sends one call and returns what the ledger holds while the call
	// is at the upstream; the call has settled when it returns.
	held := func(path, body string) int64 {
		t.Helper()
		done := make(chan *http.Response, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPost, h.gwURL+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+h.secret["alice"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
			}
			done <- resp
		}()
		var n int64
		select {
		case <-up.arrived:
			n = h.reserved()
			up.release <- struct{}{}
		case resp := <-done:
			if resp == nil {
				t.Fatalf("%s: no answer", path)
			}
			t.Fatalf("%s: answered without reaching the upstream: %d %s", path, resp.StatusCode, readAll(resp))
		}
		if resp := <-done; resp == nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: no 200", path)
		} else {
			readAll(resp)
		}
		waitFor(t, "settlement", func() bool { return h.reserved() == 0 })
		return n
	}

	// Before any usage is known, both models reserve the raw estimate plus
	// the same output term.
	opusFirst := held("/model/"+opus+"/invoke", invoke)
	sonnetFirst := held("/model/"+sonnet+"/invoke", invoke)
	if opusFirst != sonnetFirst || opusFirst <= int64(raw) {
		t.Fatalf("first reservations: Opus 4.7 %d, Sonnet 4 %d; want the same, above the input estimate %d", opusFirst, sonnetFirst, raw)
	}
	outputTerm := opusFirst - int64(raw)
	for range 5 {
		held("/model/"+opus+"/invoke", invoke)
		held("/model/"+sonnet+"/invoke", invoke)
	}

	// Opus 4.7, in its other spelling and by the Messages door: the hold's
	// input part has come most of the way to what Bedrock counts (the
	// factor rises halfway to 1.5 per answer: 1.49 after six).
	opusInput := held("/anthropic/v1/messages", messages(opusOther)) - outputTerm
	t.Logf("Opus 4.7's input estimate %d; after six answers it holds %d", raw, opusInput)
	if lo, hi := int64(math.Ceil(1.45*float64(raw))), int64(raw)*3/2; opusInput < lo || opusInput > hi {
		t.Errorf("Opus 4.7 holds %d input tokens after six answers of %d; want between %d and %d (Bedrock counts 1.5 × the estimate %d)",
			opusInput, int64(raw)*3/2, lo, hi, raw)
	}
	if got := held("/anthropic/v1/messages", messages(sonnet)); got != sonnetFirst {
		t.Errorf("Sonnet 4, whose estimates were right, now holds %d; want %d, as at first", got, sonnetFirst)
	}

	st := h.status()
	if f := st.Estimates["anthropic.claude-opus-4-7"]; f < 1.45 || f > 1.5 {
		t.Errorf("/v1/status input_estimate_factors: Opus 4.7 %v, want about 1.49 (%v)", f, st.Estimates)
	}
	if f, ok := st.Estimates["anthropic.claude-sonnet-4-20250514-v1:0"]; !ok || f != 1 {
		t.Errorf("/v1/status input_estimate_factors: Sonnet 4 %v, want 1 (%v)", f, st.Estimates)
	}
}
