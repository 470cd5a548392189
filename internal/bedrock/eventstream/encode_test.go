package eventstream

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// Every message survives Encoder -> the SDK's own decoder unchanged.
func TestEncodeRoundTripThroughSDKDecoder(t *testing.T) {
	want := mixedMessages()
	b := encodeAll(t, want)

	sdk := eventstream.NewDecoder()
	r := bytes.NewReader(b)
	var got []Message
	for r.Len() > 0 {
		m, err := sdk.Decode(r, nil)
		if err != nil {
			t.Fatalf("SDK Decode after %d messages: %v", len(got), err)
		}
		got = append(got, m)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestChunkMessage(t *testing.T) {
	event := []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi \u00e9 <>"}}`)
	m := ChunkMessage(event)

	wantHeaders := eventstream.Headers{
		{Name: ":event-type", Value: eventstream.StringValue("chunk")},
		{Name: ":content-type", Value: eventstream.StringValue("application/json")},
		{Name: ":message-type", Value: eventstream.StringValue("event")},
	}
	if diff := cmp.Diff(wantHeaders, m.Headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	wantPayload := `{"bytes":"` + base64.StdEncoding.EncodeToString(event) + `"}`
	if got := string(m.Payload); got != wantPayload {
		t.Errorf("payload = %s, want %s", got, wantPayload)
	}
	inner, err := chunkBytes(m.Payload)
	if err != nil || !bytes.Equal(inner, event) {
		t.Errorf("chunkBytes = %q, %v; want %q", inner, err, event)
	}
}

func TestAnthropicChunk(t *testing.T) {
	m, err := AnthropicChunk(map[string]any{"type": "message_stop"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseChunk(m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(AnthropicEvent{Type: "message_stop"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := AnthropicChunk(func() {}); err == nil {
		t.Error("AnthropicChunk(func) succeeded, want a marshalling error")
	}
}

// Exceptions map name -> lowerCamelCase :exception-type -> name.
func TestExceptionMessageMapsBothWays(t *testing.T) {
	tests := []struct{ name, streamType string }{
		{bedrock.ThrottlingException, "throttlingException"},
		{bedrock.ModelStreamErrorException, "modelStreamErrorException"},
		{bedrock.InternalServerException, "internalServerException"},
		{bedrock.ServiceUnavailableException, "serviceUnavailableException"},
		{bedrock.ValidationException, "validationException"},
		{bedrock.ModelTimeoutException, "modelTimeoutException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const msg = `Too many tokens, "please" wait.`
			m := ExceptionMessage(tt.name, msg)
			wantHeaders := eventstream.Headers{
				{Name: ":exception-type", Value: eventstream.StringValue(tt.streamType)},
				{Name: ":content-type", Value: eventstream.StringValue("application/json")},
				{Name: ":message-type", Value: eventstream.StringValue("exception")},
			}
			if diff := cmp.Diff(wantHeaders, m.Headers); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			if got, want := string(m.Payload), `{"message":"Too many tokens, \"please\" wait."}`; got != want {
				t.Errorf("payload = %s, want %s", got, want)
			}
			got, err := Parse(m)
			if err != nil {
				t.Fatal(err)
			}
			want := Event{Kind: KindException, ExceptionName: tt.name, Message: msg, Payload: m.Payload}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

// The Encoder reuses its buffers: consecutive frames must not bleed into
// each other, and a failing writer reports its error.
func TestEncoderReuse(t *testing.T) {
	enc := NewEncoder()
	var buf bytes.Buffer
	long := ChunkMessage(bytes.Repeat([]byte("x"), 5000))
	short := EventMessage(EventMessageStop, []byte(`{}`))
	for _, m := range []Message{long, short, long} {
		if err := enc.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := decodeAll(buf.Bytes())
	if !errors.Is(err, io.EOF) {
		t.Fatalf("decode: %v", err)
	}
	if diff := cmp.Diff([]Message{long, short, long}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	wantErr := errors.New("client gone")
	if err := enc.Encode(failWriter{wantErr}, short); !errors.Is(err, wantErr) {
		t.Errorf("Encode to failing writer = %v, want %v", err, wantErr)
	}
}

// Encode hands each frame to the writer in one Write, so a flush after
// Encode never sends half a frame.
func TestEncodeWritesOnce(t *testing.T) {
	enc := NewEncoder()
	for _, m := range mixedMessages() {
		var w countingWriter
		if err := enc.Encode(&w, m); err != nil {
			t.Fatal(err)
		}
		if w.writes != 1 {
			t.Errorf("%d writes for one frame, want 1", w.writes)
		}
	}
}

type countingWriter struct{ writes int }

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return len(p), nil }

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }
