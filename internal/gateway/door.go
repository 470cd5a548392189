package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/upstream"
)

// door is what differs between the gateway's front doors; everything else
// (authentication, the body read once, the max_tokens policy, the estimate,
// admission, sending with retries, settling) is the one request path in
// handle. Two protocols are served:
//
//   - bedrockDoor: the Bedrock Runtime operations under /model/{id}/...,
//     with restJson1 errors and event-stream answers;
//   - messagesDoor: the Anthropic Messages API (/v1/messages and
//     /anthropic/v1/messages, and their count_tokens), with Anthropic
//     errors and server-sent events.
type door interface {
	// read finds the model and the admission fields of a body in one scan
	// and checks the body; rawModel is the path's model segment (Bedrock).
	read(op bedrock.Operation, body []byte, rawModel string) (parsed, error)
	// rewrite applies the clamp (when cl.Changed) and whatever the upstream
	// needs of the body, in place where it can; it returns body unchanged
	// when there is nothing to do.
	rewrite(body []byte, p *parsed, cl admission.Clamped, svc upstream.Service) ([]byte, error)
	// pass copies a 2xx answer to the client and meters it.
	pass(w http.ResponseWriter, resp *http.Response, p *parsed, adjust func(bedrock.Usage), wantStop bool) result
	// writeError renders an error of the gateway's own (the one writer).
	writeError(w http.ResponseWriter, err error)
	// upstreamError renders an upstream error answer in the door's
	// protocol, or returns the error to render.
	upstreamError(w http.ResponseWriter, resp *http.Response) error
}

// parsed is what a door read from a request.
type parsed struct {
	op     bedrock.Operation
	model  bedrock.Model
	req    bedrock.Request
	spans  bedrock.Spans
	stream bool
	beta   bool // ?beta=true on a Messages call
}

type bedrockDoor struct{}

func (bedrockDoor) read(op bedrock.Operation, body []byte, rawModel string) (parsed, error) {
	model, err := bedrock.ParseModel(rawModel)
	if err != nil {
		return parsed{}, bedrock.Errorf(bedrock.ValidationException, "The provided model identifier is invalid.")
	}
	p := parsed{op: op, model: model, stream: op.Streaming()}
	switch {
	case op == bedrock.OpCountTokens:
		_, err = bedrock.ReadCountTokens(body)
	case op.Converse():
		p.req, p.spans, err = bedrock.ReadConverseSpans(body)
	default:
		p.req, p.spans, err = bedrock.ReadInvokeSpans(body)
	}
	return p, err
}

func (bedrockDoor) rewrite(body []byte, p *parsed, cl admission.Clamped, _ upstream.Service) ([]byte, error) {
	switch {
	case !cl.Changed:
		return body, nil
	case p.op.Converse():
		return bedrock.RewriteConverseAt(body, p.spans, cl.MaxTokens, cl.ThinkingBudget)
	}
	return bedrock.RewriteInvokeAt(body, p.spans, cl.MaxTokens, cl.ThinkingBudget)
}

func (bedrockDoor) pass(w http.ResponseWriter, resp *http.Response, p *parsed, adjust func(bedrock.Usage), wantStop bool) result {
	if p.stream {
		return passStream(w, resp, adjust)
	}
	return passBody(w, resp, p.op.Converse(), wantStop)
}

func (bedrockDoor) writeError(w http.ResponseWriter, err error) { bedrock.WriteError(w, err) }

// upstreamError passes a Bedrock error answer on unchanged; anything else
// (a proxy's HTML page, say) becomes a Bedrock-shaped error, so clients and
// SDKs can read it.
func (bedrockDoor) upstreamError(w http.ResponseWriter, resp *http.Response) error {
	if resp.Header.Get(bedrock.HeaderErrorType) == "" {
		upstream.Drain(resp)
		return foreignUpstreamError(resp.StatusCode)
	}
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, 1<<20))
	return nil
}

type messagesDoor struct{}

func (messagesDoor) read(op bedrock.Operation, body []byte, _ string) (parsed, error) {
	m, sp, err := bedrock.ReadMessagesSpans(body)
	if err != nil {
		return parsed{}, err
	}
	model, err := bedrock.ParseModel(m.Model)
	if err != nil {
		return parsed{}, bedrock.Errorf(bedrock.ValidationException, "model: the model identifier is invalid.")
	}
	return parsed{op: op, model: model, req: m.Request, spans: sp, stream: m.Stream && op == bedrock.OpMessages}, nil
}

// rewrite clamps, and gives a bedrock-runtime upstream the body member
// anthropic_version it wants (a Mantle upstream gets the header instead,
// from the upstream client).
func (messagesDoor) rewrite(body []byte, p *parsed, cl admission.Clamped, svc upstream.Service) ([]byte, error) {
	version := ""
	if svc == upstream.ServiceRuntime {
		version = upstream.RuntimeVersion
	}
	maxTokens, budget := 0, 0
	if cl.Changed {
		maxTokens, budget = cl.MaxTokens, cl.ThinkingBudget
	}
	return bedrock.RewriteMessagesAt(body, p.spans, maxTokens, budget, version)
}

func (messagesDoor) pass(w http.ResponseWriter, resp *http.Response, p *parsed, adjust func(bedrock.Usage), wantStop bool) result {
	if p.stream {
		return passSSE(w, resp, adjust)
	}
	return passBody(w, resp, false, wantStop)
}

func (messagesDoor) writeError(w http.ResponseWriter, err error) { writeAnthropicError(w, err) }

// upstreamError passes an Anthropic error answer (Mantle's) on unchanged,
// and turns a Bedrock one (bedrock-runtime's x-amzn-ErrorType and
// {"message"}) or a foreign one into an Anthropic error with the same
// status and message.
func (messagesDoor) upstreamError(w http.ResponseWriter, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	upstream.Drain(resp)
	if name := upstream.ErrorType(resp.Header); name != "" {
		var v struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(b, &v)
		e := &bedrock.Error{Name: name, Message: v.Message}
		for _, k := range []string{"Retry-After", HeaderShouldRetry, bedrock.HeaderRequestID} {
			if val := resp.Header.Get(k); val != "" {
				e.SetHeader(k, val)
			}
		}
		return &anthropicStatus{err: e, status: resp.StatusCode}
	}
	var v struct {
		Type  string `json:"type"`
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &v) != nil || v.Type != "error" || v.Error.Type == "" {
		return foreignUpstreamError(resp.StatusCode)
	}
	copyHeader(w.Header(), resp.Header)
	w.Header().Del("Content-Length")
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(b)
	return nil
}

// anthropicStatus gives a Bedrock error another status on a Messages path:
// 401 for a missing or unknown key (Bedrock says 403), 413 for a body over
// the limit, the upstream's own status for a converted upstream error.
// Bedrock paths see the error it wraps.
type anthropicStatus struct {
	err    *bedrock.Error
	status int
}

func (e *anthropicStatus) Error() string { return e.err.Error() }
func (e *anthropicStatus) Unwrap() error { return e.err }

// writeAnthropicError renders err as the Anthropic API does:
// {"type":"error","error":{"type":...,"message":...}} with the status the
// type goes with, and the error's headers (retry-after, x-should-retry).
func writeAnthropicError(w http.ResponseWriter, err error) {
	be := bedrock.AsError(err)
	status := be.Status()
	var as *anthropicStatus
	if errors.As(err, &as) {
		status = as.status
	}
	switch status {
	case http.StatusFailedDependency: // ModelErrorException, ModelStreamErrorException
		status = http.StatusInternalServerError
	case http.StatusRequestTimeout: // ModelTimeoutException
		status = http.StatusGatewayTimeout
	}
	h := w.Header()
	for k, vs := range be.Header {
		h[k] = vs
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var v struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	v.Type, v.Error.Type, v.Error.Message = "error", AnthropicErrorType(status), be.Message
	body, _ := json.Marshal(v)
	_, _ = w.Write(body)
}

// AnthropicErrorType is the Anthropic API's error type for a status
// (docs.anthropic.com, "Errors").
func AnthropicErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusServiceUnavailable, upstream.StatusOverloaded:
		return "overloaded_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}
