package bedrock

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Exception names as Bedrock sends them in x-amzn-ErrorType (BEDROCK.md section 3).
const (
	ThrottlingException           = "ThrottlingException"
	ValidationException           = "ValidationException"
	AccessDeniedException         = "AccessDeniedException"
	ResourceNotFoundException     = "ResourceNotFoundException"
	ModelTimeoutException         = "ModelTimeoutException"
	ModelErrorException           = "ModelErrorException"
	ModelNotReadyException        = "ModelNotReadyException"
	ModelStreamErrorException     = "ModelStreamErrorException"
	InternalServerException       = "InternalServerException"
	ServiceUnavailableException   = "ServiceUnavailableException"
	ServiceQuotaExceededException = "ServiceQuotaExceededException"
)

// Throttling messages, one per kind of limit (BEDROCK.md section 3).
const (
	MsgTooManyTokens         = "Too many tokens, please wait before trying again."
	MsgTooManyRequests       = "Too many requests, please wait before trying again."
	MsgTooManyTokensPerDay   = "Too many tokens per day, please wait before trying again."
	MsgServiceUnavailable    = "Service unavailable. Please try your request again."
	MsgInternalServerFailure = "The server encountered an internal error while processing the request."
)

type exceptionInfo struct {
	status     int
	streamType string // lowerCamelCase :exception-type in event streams
}

var exceptions = map[string]exceptionInfo{
	ThrottlingException:           {http.StatusTooManyRequests, "throttlingException"},
	ValidationException:           {http.StatusBadRequest, "validationException"},
	AccessDeniedException:         {http.StatusForbidden, "accessDeniedException"},
	ResourceNotFoundException:     {http.StatusNotFound, "resourceNotFoundException"},
	ModelTimeoutException:         {http.StatusRequestTimeout, "modelTimeoutException"},
	ModelErrorException:           {http.StatusFailedDependency, "modelErrorException"},
	ModelNotReadyException:        {http.StatusTooManyRequests, "modelNotReadyException"},
	ModelStreamErrorException:     {http.StatusFailedDependency, "modelStreamErrorException"},
	InternalServerException:       {http.StatusInternalServerError, "internalServerException"},
	ServiceUnavailableException:   {http.StatusServiceUnavailable, "serviceUnavailableException"},
	ServiceQuotaExceededException: {http.StatusBadRequest, "serviceQuotaExceededException"},
}

// StatusOf returns the HTTP status Bedrock uses for an exception name, or 500
// for a name it does not know.
func StatusOf(name string) int {
	if e, ok := exceptions[name]; ok {
		return e.status
	}
	return http.StatusInternalServerError
}

// StreamTypeOf returns the lowerCamelCase :exception-type used for name inside
// an event stream.
func StreamTypeOf(name string) string {
	if e, ok := exceptions[name]; ok {
		return e.streamType
	}
	return "internalServerException"
}

// NameOfStreamType is the inverse of StreamTypeOf; ok is false for an unknown type.
func NameOfStreamType(t string) (name string, ok bool) {
	for n, e := range exceptions {
		if e.streamType == t {
			return n, true
		}
	}
	return "", false
}

// Error is a Bedrock exception: what a client sees as x-amzn-ErrorType and
// {"message"}. Handlers return it; WriteError renders it.
type Error struct {
	Name    string // exception name, e.g. ThrottlingException
	Message string
	// Header holds extra response headers, e.g. Retry-After on the
	// gateway's own throttles. Bedrock itself sends none.
	Header http.Header
}

func (e *Error) Error() string { return e.Name + ": " + e.Message }

// Status is the HTTP status for the exception.
func (e *Error) Status() int { return StatusOf(e.Name) }

// Errorf builds an *Error with a formatted message.
func Errorf(name, format string, args ...any) *Error {
	return &Error{Name: name, Message: fmt.Sprintf(format, args...)}
}

// WithRetryAfter sets a Retry-After header of d (RetryAfter) and returns e.
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	e.SetHeader("Retry-After", RetryAfter(d))
	return e
}

// RetryAfter is d as a Retry-After value: whole seconds, rounded up (the
// unit Claude Code and the SDKs read), at least 1.
func RetryAfter(d time.Duration) string {
	// (d-1)/s + 1 rounds up without overflowing near the largest Duration.
	return strconv.FormatInt(int64((max(d, time.Second)-1)/time.Second+1), 10)
}

// SetHeader adds a response header to the error.
func (e *Error) SetHeader(k, v string) {
	if e.Header == nil {
		e.Header = http.Header{}
	}
	e.Header.Set(k, v)
}

// AsError returns err as a Bedrock exception. Errors that are not an *Error
// become an InternalServerException whose message hides their details.
func AsError(err error) *Error {
	var be *Error
	if errors.As(err, &be) {
		return be
	}
	return &Error{Name: InternalServerException, Message: MsgInternalServerFailure}
}

// WriteError renders err as Bedrock does: the exception's status,
// x-amzn-ErrorType and a JSON body {"message": "..."}. The caller sets
// x-amzn-RequestId. Details of non-Bedrock errors are not sent to the client.
func WriteError(w http.ResponseWriter, err error) {
	be := AsError(err)
	h := w.Header()
	for k, vs := range be.Header {
		h[k] = vs
	}
	h.Set("Content-Type", "application/json")
	h.Set("x-amzn-ErrorType", be.Name)
	w.WriteHeader(be.Status())
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{be.Message})
	_, _ = w.Write(body)
}
