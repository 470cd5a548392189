package eventstream

import (
	"encoding/base64"
	"encoding/json"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// Header names and values Bedrock uses (BEDROCK.md section 3).
const (
	HeaderMessageType   = ":message-type"
	HeaderEventType     = ":event-type"
	HeaderContentType   = ":content-type"
	HeaderExceptionType = ":exception-type"
	HeaderErrorCode     = ":error-code"
	HeaderErrorMessage  = ":error-message"

	MessageTypeEvent     = "event"
	MessageTypeException = "exception"
	MessageTypeError     = "error"

	// EventTypeChunk is the only event type of InvokeModelWithResponseStream.
	EventTypeChunk  = "chunk"
	ContentTypeJSON = "application/json"
)

// ConverseStream event types (BEDROCK.md section 3).
const (
	EventMessageStart      = "messageStart"
	EventContentBlockStart = "contentBlockStart"
	EventContentBlockDelta = "contentBlockDelta"
	EventContentBlockStop  = "contentBlockStop"
	EventMessageStop       = "messageStop"
	EventMetadata          = "metadata"
)

// Encoder writes messages as event-stream frames. It reuses its buffers
// between calls, so one Encoder serves one goroutine (one stream).
type Encoder struct {
	sdk *eventstream.Encoder
}

// NewEncoder returns an Encoder.
func NewEncoder() *Encoder { return &Encoder{sdk: eventstream.NewEncoder()} }

// Encode writes m to w as one frame, in a single Write call, so a caller
// that flushes after Encode sends whole frames.
func (e *Encoder) Encode(w io.Writer, m Message) error { return e.sdk.Encode(w, m) }

// ChunkMessage is an InvokeModelWithResponseStream chunk carrying one
// Anthropic stream event (the JSON of message_start, content_block_delta, ...):
// payload {"bytes":"<base64 of anthropicEvent>"}.
func ChunkMessage(anthropicEvent []byte) Message {
	const prefix, suffix = `{"bytes":"`, `"}`
	n := base64.StdEncoding.EncodedLen(len(anthropicEvent))
	p := make([]byte, 0, len(prefix)+n+len(suffix))
	p = append(p, prefix...)
	p = base64.StdEncoding.AppendEncode(p, anthropicEvent)
	p = append(p, suffix...)
	return EventMessage(EventTypeChunk, p)
}

// AnthropicChunk marshals v (an Anthropic stream event) to JSON and wraps it
// in a ChunkMessage.
func AnthropicChunk(v any) (Message, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Message{}, err
	}
	return ChunkMessage(b), nil
}

// EventMessage is an event frame of the given :event-type with a JSON
// payload: a ConverseStream event (EventMessageStart, ...) or, with
// EventTypeChunk, a ready-made chunk payload.
func EventMessage(eventType string, payload []byte) Message {
	return Message{
		Headers: eventstream.Headers{
			{Name: HeaderEventType, Value: eventstream.StringValue(eventType)},
			{Name: HeaderContentType, Value: eventstream.StringValue(ContentTypeJSON)},
			{Name: HeaderMessageType, Value: eventstream.StringValue(MessageTypeEvent)},
		},
		Payload: payload,
	}
}

// ExceptionMessage is a mid-stream exception: name is a Bedrock exception
// name (bedrock.ThrottlingException, ...), sent as its lowerCamelCase
// :exception-type, with payload {"message": message}. The AWS SDKs surface
// it as the typed exception (e.g. *types.ThrottlingException) from the
// stream's Err().
func ExceptionMessage(name, message string) Message {
	payload, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{message}) // a struct of one string cannot fail to marshal
	return Message{
		Headers: eventstream.Headers{
			{Name: HeaderExceptionType, Value: eventstream.StringValue(bedrock.StreamTypeOf(name))},
			{Name: HeaderContentType, Value: eventstream.StringValue(ContentTypeJSON)},
			{Name: HeaderMessageType, Value: eventstream.StringValue(MessageTypeException)},
		},
		Payload: payload,
	}
}

// ErrorMessage is an error frame (:message-type error), the event-stream
// form of a failure outside the modelled exceptions: :error-code and
// :error-message headers, no payload.
func ErrorMessage(code, message string) Message {
	return Message{
		Headers: eventstream.Headers{
			{Name: HeaderErrorCode, Value: eventstream.StringValue(code)},
			{Name: HeaderErrorMessage, Value: eventstream.StringValue(message)},
			{Name: HeaderMessageType, Value: eventstream.StringValue(MessageTypeError)},
		},
	}
}
