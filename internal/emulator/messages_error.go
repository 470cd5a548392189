package emulator

import (
	"encoding/json"
	"net/http"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// Errors on the Messages API paths are shaped as the Anthropic API shapes
// them, because that is what the Anthropic SDKs and Claude Code parse:
// status, and {"type":"error","error":{"type":TYPE,"message":...}}. The
// handlers return the same *bedrock.Error values as on the Bedrock paths;
// writeAnthropicError renders them by status.
//
// Retry-After: Bedrock runtime sends none (BEDROCK.md section 3) and AWS
// documents none for Mantle, so neither Messages path sends one; a client
// backs off on its own (Claude Code: about 3 minutes over 10 tries).

// anthropicErrorType is the Anthropic error type for an HTTP status.
func anthropicErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusServiceUnavailable, 529:
		return "overloaded_error"
	}
	return "api_error"
}

// writeAnthropicError renders err on a Messages path. Details of errors that
// are not a *bedrock.Error are not sent.
func writeAnthropicError(w http.ResponseWriter, err error) {
	be := bedrock.AsError(err)
	status := be.Status()
	h := w.Header()
	for k, vs := range be.Header {
		h[k] = vs
	}
	h["Content-Type"] = contentTypeJSON
	w.WriteHeader(status)
	_, _ = w.Write(appendAnthropicError(nil, anthropicErrorType(status), be.Message))
}

// appendAnthropicError appends an Anthropic error object, the body of an
// error response and the data of an SSE error event.
func appendAnthropicError(b []byte, typ, message string) []byte {
	msg, _ := json.Marshal(message)
	b = append(b, `{"type":"error","error":{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","message":`...)
	b = append(b, msg...)
	return append(b, `}}`...)
}
