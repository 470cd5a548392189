package bedrock

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestExceptionTable checks name <-> status <-> stream type against
// BEDROCK.md section 3, in both directions.
func TestExceptionTable(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		streamType string
	}{
		{ThrottlingException, 429, "throttlingException"},
		{ValidationException, 400, "validationException"},
		{AccessDeniedException, 403, "accessDeniedException"},
		{ResourceNotFoundException, 404, "resourceNotFoundException"},
		{ModelTimeoutException, 408, "modelTimeoutException"},
		{ModelErrorException, 424, "modelErrorException"},
		{ModelNotReadyException, 429, "modelNotReadyException"},
		{ModelStreamErrorException, 424, "modelStreamErrorException"},
		{InternalServerException, 500, "internalServerException"},
		{ServiceUnavailableException, 503, "serviceUnavailableException"},
		{ServiceQuotaExceededException, 400, "serviceQuotaExceededException"},
	}
	if got, want := len(exceptions), len(tests); got != want {
		t.Errorf("exception table has %d entries, test covers %d", got, want)
	}
	for _, tt := range tests {
		if got := StatusOf(tt.name); got != tt.status {
			t.Errorf("StatusOf(%s) = %d, want %d", tt.name, got, tt.status)
		}
		if got := (&Error{Name: tt.name}).Status(); got != tt.status {
			t.Errorf("Error{%s}.Status() = %d, want %d", tt.name, got, tt.status)
		}
		if got := StreamTypeOf(tt.name); got != tt.streamType {
			t.Errorf("StreamTypeOf(%s) = %q, want %q", tt.name, got, tt.streamType)
		}
		if got, ok := NameOfStreamType(tt.streamType); !ok || got != tt.name {
			t.Errorf("NameOfStreamType(%q) = %q, %v, want %q", tt.streamType, got, ok, tt.name)
		}
	}
	if got := StatusOf("NoSuchException"); got != 500 {
		t.Errorf("StatusOf(unknown) = %d, want 500", got)
	}
	if got := StreamTypeOf("NoSuchException"); got != "internalServerException" {
		t.Errorf("StreamTypeOf(unknown) = %q", got)
	}
	if _, ok := NameOfStreamType("ThrottlingException"); ok {
		t.Error("NameOfStreamType accepts the UpperCamelCase name; the stream type is lowerCamelCase")
	}
}

type written struct {
	Status     int
	ErrorType  string
	Type       string
	RetryAfter string
	Body       map[string]any
}

func writeError(t *testing.T, err error) written {
	t.Helper()
	rec := httptest.NewRecorder()
	WriteError(rec, err)
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", rec.Body.String(), err)
	}
	h := rec.Result().Header
	return written{rec.Code, h.Get("x-amzn-ErrorType"), h.Get("Content-Type"), h.Get("Retry-After"), body}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want written
	}{
		{"throttling, as Bedrock: no Retry-After",
			Errorf(ThrottlingException, MsgTooManyTokensPerDay),
			written{429, "ThrottlingException", "application/json", "", map[string]any{"message": MsgTooManyTokensPerDay}}},
		{"gateway throttle with Retry-After rounded up",
			(&Error{Name: ThrottlingException, Message: MsgTooManyTokens}).WithRetryAfter(1500 * time.Millisecond),
			written{429, "ThrottlingException", "application/json", "2", map[string]any{"message": MsgTooManyTokens}}},
		{"whole seconds as they are",
			(&Error{Name: ThrottlingException, Message: MsgTooManyTokens}).WithRetryAfter(2 * time.Second),
			written{429, "ThrottlingException", "application/json", "2", map[string]any{"message": MsgTooManyTokens}}},
		{"Retry-After at least one second",
			(&Error{Name: ThrottlingException, Message: MsgTooManyRequests}).WithRetryAfter(0),
			written{429, "ThrottlingException", "application/json", "1", map[string]any{"message": MsgTooManyRequests}}},
		{"validation wrapped once",
			fmt.Errorf("reading body: %w", Errorf(ValidationException, "bad %s", "max_tokens")),
			written{400, "ValidationException", "application/json", "", map[string]any{"message": "bad max_tokens"}}},
		{"message with quotes is escaped",
			Errorf(ValidationException, `key "x" <bad>`),
			written{400, "ValidationException", "application/json", "", map[string]any{"message": `key "x" <bad>`}}},
		{"other errors hide their details",
			errors.New("dial tcp 10.0.0.7:443: secret-host unreachable"),
			written{500, "InternalServerException", "application/json", "", map[string]any{"message": MsgInternalServerFailure}}},
		{"unavailable",
			Errorf(ServiceUnavailableException, MsgServiceUnavailable),
			written{503, "ServiceUnavailableException", "application/json", "", map[string]any{"message": MsgServiceUnavailable}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, writeError(t, tt.err)); diff != "" {
				t.Errorf("WriteError (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteErrorKeepsCallerHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set(HeaderRequestID, "req-1")
	e := Errorf(ThrottlingException, MsgTooManyTokens)
	e.SetHeader("X-Extra", "1")
	WriteError(rec, e)
	h := rec.Result().Header
	if got := h.Get(HeaderRequestID); got != "req-1" {
		t.Errorf("x-amzn-RequestId = %q, want req-1", got)
	}
	if got := h.Get("X-Extra"); got != "1" {
		t.Errorf("X-Extra = %q, want 1", got)
	}
	if got := http.CanonicalHeaderKey("x-amzn-ErrorType"); got != HeaderErrorType {
		t.Errorf("HeaderErrorType = %q, canonical form is %q", HeaderErrorType, got)
	}
}

func TestAsError(t *testing.T) {
	be := Errorf(AccessDeniedException, "no")
	if got := AsError(fmt.Errorf("wrapped: %w", be)); got != be {
		t.Errorf("AsError(wrapped) = %v, want the same *Error", got)
	}
	if got := be.Error(); got != "AccessDeniedException: no" {
		t.Errorf("Error() = %q", got)
	}
}

// TestRetryAfterValues: whole seconds rounded up, at least 1, and no
// overflow at the largest waits.
func TestRetryAfterValues(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{math.MinInt64, "1"}, {-5 * time.Second, "1"}, {0, "1"}, {1, "1"}, {999 * time.Millisecond, "1"},
		{time.Second, "1"}, {time.Second + 1, "2"}, {1500 * time.Millisecond, "2"}, {2 * time.Second, "2"},
		{24 * time.Hour, "86400"}, {math.MaxInt64, "9223372037"},
	} {
		if got := RetryAfter(tt.d); got != tt.want {
			t.Errorf("RetryAfter(%v) = %s, want %s", tt.d, got, tt.want)
		}
	}
}
