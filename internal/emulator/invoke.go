package emulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// HeaderOutputTokens overrides, for one request, the length of the answer
// before max_tokens cuts it.
const HeaderOutputTokens = "X-Headroom-Emulator-Output-Tokens"

// maxBodyBytes bounds a request body; Bedrock refuses far smaller ones.
const maxBodyBytes = 32 << 20

// call is one runtime request being served.
type call struct {
	id       string
	region   string
	rawModel string // the model path segment, still escaped
	op       bedrock.Operation
	model    bedrock.Model
	body     []byte
	start    time.Time // wall clock, for latencies
}

// answerAsk is what one request asks of its answer besides its body: the
// output tokens and tool input size forced by the emulator's headers, the
// scripted tool-use turn, and the faults drawn for it.
type answerAsk struct {
	want     int // forced output tokens, -1 for none
	turn     turn
	toolSize int
	faults   faultPlan
}

// readAsk is the step the runtime and Messages paths share once the request
// is parsed: it reads the emulator's headers, finds the tool-use script's
// turn in body, and draws the request's faults; a drawn ServiceUnavailable
// is returned as the error.
func (s *Server) readAsk(r *http.Request, body []byte) (answerAsk, error) {
	want, err := headerTokens(r, HeaderOutputTokens, -1)
	if err != nil {
		return answerAsk{}, err
	}
	ask := answerAsk{want: want, turn: turnFree}
	if tu := s.applied.Generation.ToolUse; tu.Name != "" {
		if ask.toolSize, err = headerTokens(r, HeaderToolInputTokens, tu.InputTokens); err != nil {
			return answerAsk{}, err
		}
		if ask.turn, err = scriptTurn(body, tu.Name); err != nil {
			return answerAsk{}, err
		}
	}
	ask.faults = s.faults.next(r.Header.Get(HeaderFault))
	if ask.faults.unavailable {
		return answerAsk{}, &bedrock.Error{Name: bedrock.ServiceUnavailableException, Message: bedrock.MsgServiceUnavailable}
	}
	return ask, nil
}

// serveModel serves the five runtime operations: it validates the request,
// draws its faults, admits it against the region's quotas, and hands it to
// the writer of its operation, which settles the reservation.
func (s *Server) serveModel(w http.ResponseWriter, r *http.Request, c call) error {
	c.start = time.Now()
	m, err := bedrock.ParseModel(c.rawModel)
	if err != nil {
		return bedrock.Errorf(bedrock.ValidationException, "The provided model identifier is invalid.")
	}
	c.model = m
	if c.body, err = readBody(r); err != nil {
		return err
	}
	if c.op == bedrock.OpCountTokens {
		return s.serveCountTokens(w, c)
	}

	req, maxTokens, err := s.readRequest(c)
	if err != nil {
		return err
	}
	ask, err := s.readAsk(r, c.body)
	if err != nil {
		return err
	}
	faults := ask.faults

	input := int(math.Round(float64(req.InputTokens) * s.applied.Generation.InputTokenScale))
	res, err := s.account.Admit(s.now(), Call{
		ID: c.id, Region: c.region, Model: m,
		Demand: bedrock.Demand{InputTokens: input, MaxTokens: maxTokens},
	})
	var te *ThrottleError
	if errors.As(err, &te) {
		// The client sees Bedrock's message; the log also gets the bucket.
		return fmt.Errorf("%w (%v)", &bedrock.Error{Name: bedrock.ThrottlingException, Message: te.Message()}, te)
	}
	if err != nil {
		return err
	}
	usage := bedrock.Usage{InputTokens: input}
	defer func() {
		charge := res.Settle(s.now(), usage)
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "served", slog.String("request_id", c.id), slog.String("op", c.op.String()),
				slog.String("region", c.region), slog.String("model", m.ID), slog.Int("max_tokens", maxTokens),
				slog.Int("input_tokens", usage.InputTokens), slog.Int("output_tokens", usage.OutputTokens),
				slog.Int64("reserved", res.Admission()), slog.Int64("charged", charge))
		}
	}()

	a := plan(s.applied.Generation, c.body, req, maxTokens, ask.want, ask.turn, ask.toolSize)
	if faults.slow {
		if err := sleep(r.Context(), s.applied.Faults.SlowLatency.Duration); err != nil {
			return nil // the client is gone; it is charged its input
		}
	}
	if c.op.Streaming() {
		s.serveStream(r.Context(), w, c, a, res, &usage, faults.throttleMidStream)
		return nil
	}
	// A non-streaming answer takes as long to generate as a streamed one.
	if err := sleep(r.Context(), s.pace(a.output(), true)); err != nil {
		return nil
	}
	usage.OutputTokens = a.output()
	// Settle before the answer leaves, so that a client's next call already
	// sees the reservation given back.
	res.Settle(s.now(), usage)
	if c.op == bedrock.OpConverse {
		s.writeConverse(w, c, a, usage)
	} else {
		s.writeInvoke(w, c, a, usage)
	}
	return nil
}

// headerTokens reads a number of tokens from header name of r, def when the
// header is absent.
func headerTokens(r *http.Request, name string, def int) (int, error) {
	v := r.Header.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, bedrock.Errorf(bedrock.ValidationException, "%s: %q is not a number of tokens", name, v)
	}
	return n, nil
}

// readRequest reads the admission fields and the effective max_tokens.
func (s *Server) readRequest(c call) (bedrock.Request, int, error) {
	var req bedrock.Request
	var err error
	if c.op.Converse() {
		req, err = bedrock.ReadConverse(c.body)
	} else {
		req, err = bedrock.ReadInvoke(c.body)
	}
	if err != nil {
		return req, 0, err
	}
	maxTokens := req.MaxTokens
	switch {
	case req.HasMaxTokens:
	case c.op.Converse():
		maxTokens = bedrock.DefaultMaxOutput(c.model)
	default:
		// Bedrock requires max_tokens in an Anthropic body.
		return req, 0, bedrock.Errorf(bedrock.ValidationException,
			"Malformed input request: #: required key [max_tokens] not found, please reformat your input and try again.")
	}
	if limit := bedrock.DefaultMaxOutput(c.model); c.model.Anthropic() && maxTokens > limit {
		return req, 0, bedrock.Errorf(bedrock.ValidationException,
			"max_tokens: %d > %d, which is the maximum allowed number of output tokens for %s", maxTokens, limit, modelName(c.model))
	}
	if req.Thinking == bedrock.ThinkingEnabled && req.ThinkingBudget >= maxTokens {
		return req, 0, bedrock.Errorf(bedrock.ValidationException,
			"`max_tokens` must be greater than `thinking.budget_tokens` (%d >= %d).", req.ThinkingBudget, maxTokens)
	}
	return req, maxTokens, nil
}

func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > maxBodyBytes {
		return nil, bedrock.Errorf(bedrock.ValidationException, "Input is too long for requested model.")
	}
	// The buffer grows as bytes arrive: a declared length is a promise,
	// and a client that declares 20 MB and sends one byte must not cost
	// 20 MB. An honest body of up to 1 MB is still read in one buffer.
	var buf bytes.Buffer
	buf.Grow(int(min(max(r.ContentLength, 0), 1<<20)) + bytes.MinRead)
	_, err := buf.ReadFrom(io.LimitReader(r.Body, maxBodyBytes+1))
	body := buf.Bytes()
	if err != nil {
		return nil, bedrock.Errorf(bedrock.ValidationException, "Malformed input request: could not read the body: %v", err)
	}
	if len(body) > maxBodyBytes {
		return nil, bedrock.Errorf(bedrock.ValidationException, "Input is too long for requested model.")
	}
	return body, nil
}

// serveCountTokens answers CountTokens: the input tokens the request would
// be charged, without charging anything.
func (s *Server) serveCountTokens(w http.ResponseWriter, c call) error {
	n, err := bedrock.ReadCountTokens(c.body)
	if err != nil {
		return err
	}
	n = int(math.Round(float64(n) * s.applied.Generation.InputTokenScale))
	b := make([]byte, 0, 32)
	b = append(b, `{"inputTokens":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, '}')
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	return nil
}

// pace is how long generating n tokens takes, with the time to first token
// when first is set.
func (s *Server) pace(n int, first bool) time.Duration {
	g := s.applied.Generation
	var d time.Duration
	if first {
		d = g.TimeToFirstToken.Duration
	}
	if g.TokensPerSecond > 0 {
		d += time.Duration(float64(n) / g.TokensPerSecond * float64(time.Second))
	}
	return d
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var contentTypeJSON = []string{"application/json"}

// writeInvoke writes an InvokeModel answer: an Anthropic message, with the
// usage also in Bedrock's headers.
func (s *Server) writeInvoke(w http.ResponseWriter, c call, a answer, u bedrock.Usage) {
	b := appendMessage(make([]byte, 0, 512+12*a.output()), modelName(c.model), a, u)

	// The header names are canonical already: assigning skips canonicalising
	// them on every request.
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h[bedrock.HeaderInputTokens] = []string{strconv.Itoa(u.InputTokens)}
	h[bedrock.HeaderOutputTokens] = []string{strconv.Itoa(u.OutputTokens)}
	h[bedrock.HeaderCacheReadTokens] = []string{strconv.Itoa(u.CacheReadInputTokens)}
	h[bedrock.HeaderCacheWriteTokens] = []string{strconv.Itoa(u.CacheWriteInputTokens)}
	h[bedrock.HeaderLatency] = []string{strconv.FormatInt(time.Since(c.start).Milliseconds(), 10)}
	_, _ = w.Write(b)
}

// writeConverse writes a Converse answer.
func (s *Server) writeConverse(w http.ResponseWriter, c call, a answer, u bedrock.Usage) {
	b := make([]byte, 0, 512+12*a.output())
	b = append(b, `{"output":{"message":{"role":"assistant","content":[`...)
	for i, blk := range a.blocks {
		if i > 0 {
			b = append(b, ',')
		}
		c := a.content(i)
		switch blk.kind {
		case blockThinking:
			b = append(b, `{"reasoningContent":{"reasoningText":{"text":"`...)
			b = c.appendTokens(b, blk.tokens)
			b = append(b, `","signature":"`...)
			b = append(b, thinkingSignature...)
			b = append(b, `"}}}`...)
		case blockText:
			b = append(b, `{"text":"`...)
			b = c.appendTokens(b, blk.tokens)
			b = append(b, `"}`...)
		case blockToolUse:
			b = append(b, `{"toolUse":{"toolUseId":"`...)
			b = append(b, blk.tool.id...)
			b = append(b, `","name":"`...)
			b = appendJSONText(b, blk.tool.name)
			b = append(b, `","input":`...)
			b = c.appendInput(b, blk.tokens)
			b = append(b, `}}`...)
		}
	}
	b = append(b, `]}},"stopReason":"`...)
	b = append(b, a.stop...)
	b = append(b, `","usage":`...)
	b = appendConverseUsage(b, u)
	b = append(b, `,"metrics":{"latencyMs":`...)
	b = strconv.AppendInt(b, time.Since(c.start).Milliseconds(), 10)
	b = append(b, `}}`...)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// thinkingSignature stands in for the signature of a thinking block, which
// clients send back unread by the emulator.
const thinkingSignature = "aGVhZHJvb20gZW11bGF0ZSB0aGlua2luZyBzaWduYXR1cmU="

// appendID appends an id as Bedrock's Anthropic models make them (msg_bdrk_...,
// toolu_bdrk_...): prefix and 24 letters and digits drawn from seed.
func appendID(b []byte, prefix string, seed uint64) []byte {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b = append(b, prefix...)
	rng := prng(seed)
	for range 24 {
		b = append(b, digits[rng.next()%uint64(len(digits))])
	}
	return b
}

func appendAnthropicUsage(b []byte, u bedrock.Usage) []byte {
	b = append(b, `{"input_tokens":`...)
	b = strconv.AppendInt(b, int64(u.InputTokens), 10)
	b = append(b, `,"cache_creation_input_tokens":`...)
	b = strconv.AppendInt(b, int64(u.CacheWriteInputTokens), 10)
	b = append(b, `,"cache_read_input_tokens":`...)
	b = strconv.AppendInt(b, int64(u.CacheReadInputTokens), 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, int64(u.OutputTokens), 10)
	return append(b, '}')
}

func appendConverseUsage(b []byte, u bedrock.Usage) []byte {
	b = append(b, `{"inputTokens":`...)
	b = strconv.AppendInt(b, int64(u.InputTokens), 10)
	b = append(b, `,"outputTokens":`...)
	b = strconv.AppendInt(b, int64(u.OutputTokens), 10)
	b = append(b, `,"totalTokens":`...)
	b = strconv.AppendInt(b, int64(u.InputTokens+u.OutputTokens+u.CacheReadInputTokens+u.CacheWriteInputTokens), 10)
	b = append(b, `,"cacheReadInputTokens":`...)
	b = strconv.AppendInt(b, int64(u.CacheReadInputTokens), 10)
	b = append(b, `,"cacheWriteInputTokens":`...)
	b = strconv.AppendInt(b, int64(u.CacheWriteInputTokens), 10)
	return append(b, '}')
}

// appendJSONText appends s escaped for the inside of a JSON string.
func appendJSONText[T string | []byte](b []byte, s T) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return b
}
