package eventstream

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// sdkClient returns the official bedrockruntime client pointed at a server
// that answers every request with the frames of ms.
func sdkClient(t *testing.T, ms []Message) *bedrockruntime.Client {
	t.Helper()
	body := encodeAll(t, ms)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", bedrock.ContentTypeEventStream)
		w.Header().Set(bedrock.HeaderRequestID, "req-1")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return bedrockruntime.New(bedrockruntime.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
}

const sdkModel = "us.anthropic.claude-sonnet-4-20250514-v1:0"

// invokeStream runs InvokeModelWithResponseStream and returns the chunk
// bytes received and the stream's error.
func invokeStream(t *testing.T, ms []Message) ([]string, error) {
	t.Helper()
	out, err := sdkClient(t, ms).InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String(sdkModel), ContentType: aws.String("application/json"), Body: []byte(`{}`),
	})
	if err != nil {
		t.Fatalf("InvokeModelWithResponseStream: %v", err)
	}
	stream := out.GetStream()
	defer stream.Close()
	var got []string
	for ev := range stream.Events() {
		c, ok := ev.(*types.ResponseStreamMemberChunk)
		if !ok {
			t.Fatalf("unexpected event %T", ev)
		}
		got = append(got, string(c.Value.Bytes))
	}
	return got, stream.Err()
}

func TestSDKReadsInvokeStream(t *testing.T) {
	got, err := invokeStream(t, invokeMessages())
	if err != nil {
		t.Fatalf("stream Err: %v", err)
	}
	if diff := cmp.Diff(invokeEvents, got); diff != "" {
		t.Errorf("chunks (-want +got):\n%s", diff)
	}
}

// A mid-stream exception surfaces as the SDK's typed exception from Err().
func TestSDKSeesMidStreamExceptions(t *testing.T) {
	names := []string{
		bedrock.ThrottlingException, bedrock.ModelStreamErrorException, bedrock.InternalServerException,
		bedrock.ServiceUnavailableException, bedrock.ValidationException, bedrock.ModelTimeoutException,
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			ms := append(invokeMessages()[:2], ExceptionMessage(name, "stop here"))
			got, err := invokeStream(t, ms)
			if len(got) != 2 {
				t.Errorf("got %d chunks before the exception, want 2", len(got))
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("Err() = %v (%T), want a smithy.APIError", err, err)
			}
			if ae.ErrorCode() != name || ae.ErrorMessage() != "stop here" {
				t.Errorf("Err() = %s %q, want %s %q", ae.ErrorCode(), ae.ErrorMessage(), name, "stop here")
			}
		})
	}
	_, err := invokeStream(t, []Message{ExceptionMessage(bedrock.ThrottlingException, bedrock.MsgTooManyTokens)})
	var te *types.ThrottlingException
	if !errors.As(err, &te) {
		t.Errorf("Err() = %T, want *types.ThrottlingException", err)
	}
}

func TestSDKReadsConverseStream(t *testing.T) {
	out, err := sdkClient(t, converseMessages()).ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String(sdkModel),
	})
	if err != nil {
		t.Fatalf("ConverseStream: %v", err)
	}
	stream := out.GetStream()
	defer stream.Close()
	var kinds []string
	var text bytes.Buffer
	var usage *types.TokenUsage
	for ev := range stream.Events() {
		switch v := ev.(type) {
		case *types.ConverseStreamOutputMemberMessageStart:
			kinds = append(kinds, EventMessageStart)
		case *types.ConverseStreamOutputMemberContentBlockStart:
			kinds = append(kinds, EventContentBlockStart)
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			kinds = append(kinds, EventContentBlockDelta)
			if d, ok := v.Value.Delta.(*types.ContentBlockDeltaMemberText); ok {
				text.WriteString(d.Value)
			}
		case *types.ConverseStreamOutputMemberContentBlockStop:
			kinds = append(kinds, EventContentBlockStop)
		case *types.ConverseStreamOutputMemberMessageStop:
			kinds = append(kinds, EventMessageStop)
		case *types.ConverseStreamOutputMemberMetadata:
			kinds = append(kinds, EventMetadata)
			usage = v.Value.Usage
		default:
			t.Fatalf("unexpected event %T", ev)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream Err: %v", err)
	}
	var want []string
	for _, e := range converseEvents {
		want = append(want, e.typ)
	}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("event types (-want +got):\n%s", diff)
	}
	if got := text.String(); got != "Hello there, friend." {
		t.Errorf("text = %q", got)
	}
	if usage == nil || aws.ToInt32(usage.InputTokens) != 900 || aws.ToInt32(usage.OutputTokens) != 31 ||
		aws.ToInt32(usage.CacheReadInputTokens) != 50 || aws.ToInt32(usage.CacheWriteInputTokens) != 7 {
		t.Errorf("metadata usage = %+v", usage)
	}
}
