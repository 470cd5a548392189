package eventstream

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// Kind is what a frame's :message-type says it is.
type Kind int

const (
	KindEvent     Kind = iota + 1 // :message-type event
	KindException                 // :message-type exception: a modelled Bedrock exception
	KindError                     // :message-type error: :error-code / :error-message
)

func (k Kind) String() string {
	switch k {
	case KindEvent:
		return MessageTypeEvent
	case KindException:
		return MessageTypeException
	case KindError:
		return MessageTypeError
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Event is a frame read for its meaning.
type Event struct {
	Kind Kind
	// EventType is :event-type for KindEvent: EventTypeChunk for
	// InvokeModelWithResponseStream, EventMessageStart etc. for ConverseStream.
	EventType string
	// ExceptionName is the Bedrock exception name (bedrock.ThrottlingException)
	// for KindException, or the :error-code for KindError.
	ExceptionName string
	// Message is the exception's {"message"} or the :error-message.
	Message string
	// Payload is the frame's payload (the chunk or Converse event JSON).
	Payload []byte
}

// Parse reads m's headers. An :exception-type Bedrock does not define is
// kept, with its first letter upper-cased as Bedrock's names are. It fails
// only when the headers that say what the frame is are missing; an
// exception whose payload is not {"message": ...} keeps the raw payload as
// its message.
func Parse(m Message) (Event, error) {
	mt, ok := headerString(m.Headers, HeaderMessageType)
	if !ok {
		return Event{}, fmt.Errorf("%w: no %s header", ErrCorrupt, HeaderMessageType)
	}
	switch mt {
	case MessageTypeEvent:
		et, ok := headerString(m.Headers, HeaderEventType)
		if !ok {
			return Event{}, fmt.Errorf("%w: event without %s", ErrCorrupt, HeaderEventType)
		}
		return Event{Kind: KindEvent, EventType: et, Payload: m.Payload}, nil
	case MessageTypeException:
		t, ok := headerString(m.Headers, HeaderExceptionType)
		if !ok {
			return Event{}, fmt.Errorf("%w: exception without %s", ErrCorrupt, HeaderExceptionType)
		}
		name, known := bedrock.NameOfStreamType(t)
		if !known {
			name = upperFirst(t)
		}
		var body struct {
			Message string `json:"message"`
		}
		msg := string(m.Payload)
		if json.Unmarshal(m.Payload, &body) == nil {
			msg = body.Message
		}
		return Event{Kind: KindException, ExceptionName: name, Message: msg, Payload: m.Payload}, nil
	case MessageTypeError:
		code, _ := headerString(m.Headers, HeaderErrorCode)
		msg, _ := headerString(m.Headers, HeaderErrorMessage)
		return Event{Kind: KindError, ExceptionName: code, Message: msg, Payload: m.Payload}, nil
	}
	return Event{}, fmt.Errorf("%w: unknown %s %q", ErrCorrupt, HeaderMessageType, mt)
}

func headerString(h eventstream.Headers, name string) (string, bool) {
	v, ok := h.Get(name).(eventstream.StringValue)
	return string(v), ok
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
