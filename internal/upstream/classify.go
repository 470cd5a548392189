package upstream

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// Class says what the gateway may do after an upstream answer. Retrying is
// only ever safe before the first byte of the answer has reached the client.
type Class int

const (
	// Success is a 2xx answer: pass it through.
	Success Class = iota
	// Throttled is Bedrock's own ThrottlingException: retry within the
	// request's deadline and lower the mirrored bucket's effective capacity.
	Throttled
	// Retryable is a transient failure that did not consume the request:
	// 500/503, ModelNotReadyException, or a connection that failed before
	// any answer. Retry within the deadline.
	Retryable
	// Fatal is any other answer (validation, access denied, unknown model,
	// model errors): pass it to the client unchanged. For a transport error
	// it means the call must not be tried again (see ClassifyError).
	Fatal
)

func (c Class) String() string {
	switch c {
	case Success:
		return "success"
	case Throttled:
		return "throttled"
	case Retryable:
		return "retryable"
	case Fatal:
		return "fatal"
	}
	return "unknown"
}

// ErrorType returns the exception name of an upstream error answer:
// x-amzn-ErrorType cut at the first ':' (real Bedrock sometimes appends a
// namespace URL, BEDROCK.md section 3).
func ErrorType(h http.Header) string {
	t := h.Get(bedrock.HeaderErrorType)
	if i := strings.IndexByte(t, ':'); i >= 0 {
		t = t[:i]
	}
	return t
}

// StatusOverloaded is the Anthropic Messages API's "overloaded_error"
// status, which a Mantle upstream may answer; transient like a 503.
const StatusOverloaded = 529

// Classify sorts an upstream HTTP answer into a retry class.
func Classify(status int, h http.Header) Class {
	if status >= 200 && status < 300 {
		return Success
	}
	name := ErrorType(h)
	switch {
	case status == http.StatusTooManyRequests && (name == bedrock.ThrottlingException || name == ""):
		return Throttled
	case status == http.StatusTooManyRequests && name == bedrock.ModelNotReadyException:
		return Retryable
	case status == http.StatusServiceUnavailable, status == http.StatusBadGateway, status == http.StatusGatewayTimeout,
		status == StatusOverloaded:
		return Retryable
	case status == http.StatusInternalServerError && (name == bedrock.InternalServerException || name == ""):
		return Retryable
	}
	return Fatal
}

// ClassifyError sorts a transport error (no answer at all) into a retry
// class. Fatal: the request's own cancellation or deadline, and failures of
// the gateway's own setup that no retry fixes: a *CredentialsError, an
// *EndpointError, a TLS certificate that fails verification, a host name
// that does not exist. Retrying those would only hold the client until its
// deadline before the same failure. Anything else (refused, reset, a
// resolver timeout) is Retryable.
func ClassifyError(err error) Class {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || misconfigured(err) {
		return Fatal
	}
	return Retryable
}
