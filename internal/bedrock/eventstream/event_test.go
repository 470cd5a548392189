package eventstream

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	str := func(s string) eventstream.Value { return eventstream.StringValue(s) }
	tests := []struct {
		name string
		m    Message
		want Event
	}{
		{"chunk", EventMessage(EventTypeChunk, []byte(`{"bytes":"e30="}`)),
			Event{Kind: KindEvent, EventType: "chunk", Payload: []byte(`{"bytes":"e30="}`)}},
		{"converse event", EventMessage(EventMetadata, []byte(`{}`)),
			Event{Kind: KindEvent, EventType: "metadata", Payload: []byte(`{}`)}},
		{"error frame", ErrorMessage("InternalFailure", "boom"),
			Event{Kind: KindError, ExceptionName: "InternalFailure", Message: "boom"}},
		{"unknown exception type keeps its name", Message{
			Headers: eventstream.Headers{{Name: ":message-type", Value: str("exception")}, {Name: ":exception-type", Value: str("newShinyException")}},
			Payload: []byte(`{"message":"m"}`),
		}, Event{Kind: KindException, ExceptionName: "NewShinyException", Message: "m", Payload: []byte(`{"message":"m"}`)}},
		{"exception with non-JSON payload", Message{
			Headers: eventstream.Headers{{Name: ":message-type", Value: str("exception")}, {Name: ":exception-type", Value: str("throttlingException")}},
			Payload: []byte(`slow down`),
		}, Event{Kind: KindException, ExceptionName: "ThrottlingException", Message: "slow down", Payload: []byte(`slow down`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRejectsUnidentifiedFrames(t *testing.T) {
	str := func(s string) eventstream.Value { return eventstream.StringValue(s) }
	tests := []struct {
		name    string
		headers eventstream.Headers
	}{
		{"no headers", nil},
		{"message-type not a string", eventstream.Headers{{Name: ":message-type", Value: eventstream.Int32Value(1)}}},
		{"unknown message-type", eventstream.Headers{{Name: ":message-type", Value: str("gossip")}}},
		{"event without event-type", eventstream.Headers{{Name: ":message-type", Value: str("event")}}},
		{"exception without exception-type", eventstream.Headers{{Name: ":message-type", Value: str("exception")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(Message{Headers: tt.headers}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	got := []string{KindEvent.String(), KindException.String(), KindError.String(), Kind(0).String()}
	want := []string{"event", "exception", "error", "Kind(0)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
