package emulator

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// The Anthropic Messages API, as Bedrock serves it on its two endpoints
// (BEDROCK.md section 6). The emulator's root plays bedrock-runtime and the
// path prefix /mantle plays bedrock-mantle:
//
//	POST /anthropic/v1/messages                runtime: the region's runtime buckets, with burndown
//	POST /mantle/anthropic/v1/messages         Mantle: the region's mantle buckets
//	POST /mantle/v1/messages                   Mantle (Claude Code appends /v1/messages to
//	                                           ANTHROPIC_BEDROCK_MANTLE_BASE_URL)
//	POST /v1/messages                          Mantle (runtime has no such path)
//	POST {any of these}/count_tokens           {"input_tokens": N}, charges nothing
//
// A /region/NAME prefix comes first (/region/eu-west-1/mantle/v1/messages).
// Any query (Claude Code's ?beta=true) is accepted. The body is an Anthropic
// Messages body with "model"; "stream": true answers Anthropic server-sent
// events. Mantle refuses output_config.format with 400 and takes max_tokens
// as the model's maximum when it is unset; runtime requires max_tokens, as
// InvokeModel does. Authentication is as on the Bedrock paths, plus
// x-api-key (the Anthropic SDKs' header); Mantle's SigV4 signing name is
// bedrock-mantle (the Anthropic TypeScript SDK's AnthropicBedrockMantle in
// Claude Code 2.1.332), runtime's is bedrock, and neither is checked.
//
// Claude Code 2.1.332 in Mantle mode, measured against a logging server,
// sends only POST {base}/v1/messages (a max_tokens 1 probe of its model)
// and POST {base}/v1/messages?beta=true (the streamed call); no models list.

// endpoint is which Bedrock endpoint a Messages path plays.
type endpoint uint8

const (
	endpointRuntime endpoint = iota
	endpointMantle
)

func (e endpoint) String() string {
	if e == endpointMantle {
		return "bedrock-mantle"
	}
	return "bedrock-runtime"
}

// messagesRoute is a parsed Messages API path.
type messagesRoute struct {
	endpoint endpoint
	count    bool // .../count_tokens
}

// Path prefixes of the Messages API.
const (
	mantlePrefix    = "/mantle"
	anthropicPrefix = "/anthropic"
	messagesPath    = "/v1/messages"
	countTokensPath = "/v1/messages/count_tokens"
)

// parseMessagesPath reads path (after any /region/NAME prefix) as a Messages
// API path.
func parseMessagesPath(path string) (messagesRoute, bool) {
	ep := endpointMantle
	switch {
	case strings.HasPrefix(path, mantlePrefix+"/"):
		path = strings.TrimPrefix(path[len(mantlePrefix):], anthropicPrefix)
	case strings.HasPrefix(path, anthropicPrefix+"/"):
		ep, path = endpointRuntime, path[len(anthropicPrefix):]
	}
	switch path {
	case messagesPath:
		return messagesRoute{endpoint: ep}, true
	case countTokensPath:
		return messagesRoute{endpoint: ep, count: true}, true
	}
	return messagesRoute{}, false
}

// isMessagesFamily reports whether path (after any /region/NAME prefix) is
// under a Messages API prefix, so that its errors, even a 404, are
// Anthropic-shaped.
func isMessagesFamily(path string) bool {
	for _, p := range []string{mantlePrefix, anthropicPrefix, "/v1"} {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// messagesCall is one Messages API request being served.
type messagesCall struct {
	id       string
	region   string
	endpoint endpoint
	model    bedrock.Model
	body     []byte
	start    time.Time // wall clock, for latencies
}

// Request headers that split the input of a Messages call into prompt-cache
// reads and writes (the emulator has no prompt cache of its own): N of the
// estimated input tokens are reported and charged as cache reads (never
// charged) or cache writes (charged like input).
const (
	HeaderCacheReadTokens  = "X-Headroom-Emulator-Cache-Read-Tokens"
	HeaderCacheWriteTokens = "X-Headroom-Emulator-Cache-Write-Tokens"
)

// serveMessages serves a Messages API call: it reads the body, admits it
// against the endpoint's ledger, and answers a message or an SSE stream.
func (s *Server) serveMessages(w http.ResponseWriter, r *http.Request, c messagesCall, rt messagesRoute) error {
	c.start = time.Now()
	w.Header().Set("Request-Id", c.id)
	var err error
	if c.body, err = readBody(r); err != nil {
		return err
	}
	req, err := bedrock.ReadInvoke(c.body)
	if err != nil {
		return err
	}
	f, err := readMessagesFields(c.body)
	if err != nil {
		return bedrock.Errorf(bedrock.ValidationException, "%v", err)
	}
	if c.model, err = bedrock.ParseModel(f.model); err != nil {
		return bedrock.Errorf(bedrock.ValidationException, "model: %q is not a valid model identifier", f.model)
	}
	input := int(math.Round(float64(req.InputTokens) * s.applied.Generation.InputTokenScale))
	if rt.count {
		w.Header()["Content-Type"] = contentTypeJSON
		_, _ = w.Write(strconv.AppendInt(append([]byte(nil), `{"input_tokens":`...), int64(input), 10))
		_, _ = w.Write([]byte{'}'})
		return nil
	}
	if c.endpoint == endpointMantle && f.structured {
		return bedrock.Errorf(bedrock.ValidationException, "output_config.format: structured outputs are not supported on this endpoint")
	}
	maxTokens, err := messagesMaxTokens(c, req)
	if err != nil {
		return err
	}
	usage, err := splitCache(r, input)
	if err != nil {
		return err
	}
	ask, err := s.readAsk(r, c.body)
	if err != nil {
		return err
	}
	faults := ask.faults

	demand := bedrock.Demand{InputTokens: usage.InputTokens, CacheWriteTokens: usage.CacheWriteInputTokens,
		CacheReadTokens: usage.CacheReadInputTokens, MaxTokens: maxTokens}
	call := Call{ID: c.id, Region: c.region, Model: c.model, Demand: demand}
	var m meter
	if c.endpoint == endpointMantle {
		res, err := s.admitMantle(r.Context(), call)
		if err != nil {
			return throttleError(err)
		}
		m = res
	} else {
		res, err := s.account.Admit(s.now(), call)
		if err != nil {
			return throttleError(err)
		}
		m = res
	}
	defer func() {
		m.end(s.now(), usage)
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "served", slog.String("request_id", c.id), slog.String("op", "Messages"),
				slog.String("endpoint", c.endpoint.String()), slog.String("region", c.region), slog.String("model", c.model.ID),
				slog.Int("max_tokens", maxTokens), slog.Int("input_tokens", usage.InputTokens), slog.Int("output_tokens", usage.OutputTokens))
		}
	}()

	a := plan(s.applied.Generation, c.body, req, maxTokens, ask.want, ask.turn, ask.toolSize)
	if faults.slow {
		if err := sleep(r.Context(), s.applied.Faults.SlowLatency.Duration); err != nil {
			return nil // the client is gone; it is charged its input
		}
	}
	if f.stream {
		s.serveSSE(r.Context(), w, f.model, a, m, &usage, faults.throttleMidStream)
		return nil
	}
	if err := sleep(r.Context(), s.pace(a.output(), true)); err != nil {
		return nil
	}
	usage.OutputTokens = a.output()
	// Settle before the answer leaves, so that a client's next call already
	// sees what it gave back.
	m.end(s.now(), usage)
	w.Header()["Content-Type"] = contentTypeJSON
	_, _ = w.Write(appendMessage(make([]byte, 0, 512+12*a.output()), f.model, a, usage))
	return nil
}

// throttleError turns a refusal of the ledger into the client's 429; the log
// also gets the bucket.
func throttleError(err error) error {
	var te *ThrottleError
	if errors.As(err, &te) {
		return fmt.Errorf("%w (%v)", &bedrock.Error{Name: bedrock.ThrottlingException, Message: te.Message()}, te)
	}
	return err
}

// messagesMaxTokens is the effective max_tokens of a Messages call.
func messagesMaxTokens(c messagesCall, req bedrock.Request) (int, error) {
	limit := bedrock.DefaultMaxOutput(c.model)
	maxTokens := req.MaxTokens
	switch {
	case req.HasMaxTokens:
	case c.endpoint == endpointMantle:
		maxTokens = limit // quotas-mantle.html: the model's maximum when unset
	default:
		return 0, bedrock.Errorf(bedrock.ValidationException, "max_tokens: Field required")
	}
	if c.model.Anthropic() && maxTokens > limit {
		return 0, bedrock.Errorf(bedrock.ValidationException,
			"max_tokens: %d > %d, which is the maximum allowed number of output tokens for %s", maxTokens, limit, modelName(c.model))
	}
	if req.Thinking == bedrock.ThinkingEnabled && req.ThinkingBudget >= maxTokens {
		return 0, bedrock.Errorf(bedrock.ValidationException,
			"`max_tokens` must be greater than `thinking.budget_tokens` (%d >= %d).", req.ThinkingBudget, maxTokens)
	}
	return maxTokens, nil
}

// splitCache splits input tokens into input, cache reads and cache writes
// as the request's HeaderCacheReadTokens and HeaderCacheWriteTokens say
// (each at most what is left).
func splitCache(r *http.Request, input int) (bedrock.Usage, error) {
	read, err := headerTokens(r, HeaderCacheReadTokens, 0)
	if err != nil {
		return bedrock.Usage{}, err
	}
	write, err := headerTokens(r, HeaderCacheWriteTokens, 0)
	if err != nil {
		return bedrock.Usage{}, err
	}
	read = min(read, input)
	write = min(write, input-read)
	return bedrock.Usage{InputTokens: input - read - write, CacheReadInputTokens: read, CacheWriteInputTokens: write}, nil
}

// meter is an admitted request's hold on its ledger: Reservation on the
// runtime buckets, MantleReservation on Mantle's.
type meter interface {
	// Adjust counts the output generated so far.
	Adjust(now time.Time, u bedrock.Usage)
	// end settles with the final usage; later calls do nothing.
	end(now time.Time, u bedrock.Usage)
}

func (r *Reservation) end(now time.Time, u bedrock.Usage)       { r.Settle(now, u) }
func (r *MantleReservation) end(now time.Time, u bedrock.Usage) { r.Settle(now, u) }

// appendMessage appends answer a as an Anthropic message naming model. The
// Messages paths name the model as the request did (as the Anthropic API
// does); InvokeModel names it without prefix and version.
func appendMessage(b []byte, model string, a answer, u bedrock.Usage) []byte {
	b = append(b, `{"id":"`...)
	b = appendID(b, "msg_bdrk_", a.seed)
	b = append(b, `","type":"message","role":"assistant","model":"`...)
	b = appendJSONText(b, model)
	b = append(b, `","content":[`...)
	for i, blk := range a.blocks {
		if i > 0 {
			b = append(b, ',')
		}
		c := a.content(i)
		switch blk.kind {
		case blockThinking:
			b = append(b, `{"type":"thinking","thinking":"`...)
			b = c.appendTokens(b, blk.tokens)
			b = append(b, `","signature":"`...)
			b = append(b, thinkingSignature...)
			b = append(b, `"}`...)
		case blockText:
			b = append(b, `{"type":"text","text":"`...)
			b = c.appendTokens(b, blk.tokens)
			b = append(b, `"}`...)
		case blockToolUse:
			b = append(b, `{"type":"tool_use","id":"`...)
			b = append(b, blk.tool.id...)
			b = append(b, `","name":"`...)
			b = appendJSONText(b, blk.tool.name)
			b = append(b, `","input":`...)
			b = c.appendInput(b, blk.tokens)
			b = append(b, '}')
		}
	}
	b = append(b, `],"stop_reason":"`...)
	b = append(b, a.stop...)
	b = append(b, `","stop_sequence":null,"usage":`...)
	b = appendAnthropicUsage(b, u)
	return append(b, '}')
}
