package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/headroomhq/headroom/internal/config"
)

// The official aws-sdk-go-v2 bedrockruntime client against the emulator,
// configured as a user would: LoadDefaultConfig (which honours
// AWS_CA_BUNDLE, set on the development machine), static credentials, and
// BaseEndpoint. Retries are off so that a throttle surfaces at once.

// isolateAWSConfig keeps the developer's own AWS files and variables out of
// the test, except AWS_CA_BUNDLE.
func isolateAWSConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	for _, v := range []string{"AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"} {
		t.Setenv(v, "")
	}
}

func sdkClient(t *testing.T, url, region string) *bedrockruntime.Client {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(t.Context(),
		awsconfig.WithRegion(region),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")),
		awsconfig.WithRetryMaxAttempts(1),
	)
	if err != nil {
		t.Fatal(err)
	}
	return bedrockruntime.NewFromConfig(cfg, func(o *bedrockruntime.Options) {
		o.BaseEndpoint = aws.String(url)
		o.HTTPClient = bodyCopyingClient{o.HTTPClient}
	})
}

// bodyCopyingClient works around a race in the SDK's transport (smithy-go
// v1.28.9, transport/http/internal/io/safe.go): the SDK closes its request
// body once the response arrives, and a closed body's WriteTo returns
// io.EOF. When a server answers within microseconds, as the emulator does,
// net/http's writeLoop may still be making its final read of that body; it
// gets the io.EOF, counts the write as failed and closes the connection
// under the response, so about one stream in 300 ended with "use of closed
// network connection" (a plain handler writing fixed frames shows the same).
// Real Bedrock answers too slowly to lose the race. Handing net/http its own
// copy of the body keeps the SDK's Close away from it.
type bodyCopyingClient struct{ next bedrockruntime.HTTPClient }

func (c bodyCopyingClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	return c.next.Do(r)
}

func TestSDKAllOperations(t *testing.T) {
	isolateAWSConfig(t)
	ts := newTestServer(t, config.DefaultEmulator())
	// Signed for eu-west-1, so the requests draw from eu-west-1's buckets.
	c := sdkClient(t, ts.url, "eu-west-1")
	ctx := t.Context()
	model := "eu.anthropic.claude-sonnet-4-20250514-v1:0"
	arn := "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/" + model
	body := invokeBody(50, "hello from the SDK")
	converseIn := []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "hello"}}}}

	t.Run("InvokeModel", func(t *testing.T) {
		out, err := c.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String(arn), Body: body, ContentType: aws.String("application/json")})
		if err != nil {
			t.Fatal(err)
		}
		var m anthropicMessage
		if err := json.Unmarshal(out.Body, &m); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(m.Content[0].Text, "Hello from headroom emulate") || m.Usage.OutputTokens == 0 {
			t.Errorf("answer %+v", m)
		}
	})
	t.Run("InvokeModelWithResponseStream", func(t *testing.T) {
		out, err := c.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{ModelId: aws.String(model), Body: body})
		if err != nil {
			t.Fatal(err)
		}
		stream := out.GetStream()
		defer stream.Close()
		var evTypes []string
		for ev := range stream.Events() {
			chunk, ok := ev.(*types.ResponseStreamMemberChunk)
			if !ok {
				t.Fatalf("event %T", ev)
			}
			var e struct{ Type string }
			if err := json.Unmarshal(chunk.Value.Bytes, &e); err != nil {
				t.Fatal(err)
			}
			evTypes = append(evTypes, e.Type)
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if len(evTypes) < 5 || evTypes[0] != "message_start" || evTypes[len(evTypes)-1] != "message_stop" {
			t.Errorf("events %v", evTypes)
		}
	})
	t.Run("Converse", func(t *testing.T) {
		out, err := c.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(model), Messages: converseIn,
			InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(5)}})
		if err != nil {
			t.Fatal(err)
		}
		msg := out.Output.(*types.ConverseOutputMemberMessage).Value
		text := msg.Content[0].(*types.ContentBlockMemberText).Value
		if text != "Hello from headroom emulate, an" || out.StopReason != types.StopReasonMaxTokens || aws.ToInt32(out.Usage.OutputTokens) != 5 {
			t.Errorf("text %q, stop %s, usage %+v", text, out.StopReason, out.Usage)
		}
	})
	t.Run("ConverseStream", func(t *testing.T) {
		out, err := c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String(model), Messages: converseIn,
			InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(200)}})
		if err != nil {
			t.Fatal(err)
		}
		stream := out.GetStream()
		defer stream.Close()
		var text strings.Builder
		var usage *types.TokenUsage
		var stop types.StopReason
		for ev := range stream.Events() {
			switch e := ev.(type) {
			case *types.ConverseStreamOutputMemberContentBlockDelta:
				if d, ok := e.Value.Delta.(*types.ContentBlockDeltaMemberText); ok {
					text.WriteString(d.Value)
				}
			case *types.ConverseStreamOutputMemberMessageStop:
				stop = e.Value.StopReason
			case *types.ConverseStreamOutputMemberMetadata:
				usage = e.Value.Usage
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if usage == nil || int(aws.ToInt32(usage.OutputTokens)) != len(strings.Fields(text.String())) || stop == "" {
			t.Errorf("usage %+v for %d words, stop %q", usage, len(strings.Fields(text.String())), stop)
		}
	})
	t.Run("CountTokens", func(t *testing.T) {
		out, err := c.CountTokens(ctx, &bedrockruntime.CountTokensInput{ModelId: aws.String(model),
			Input: &types.CountTokensInputMemberInvokeModel{Value: types.InvokeModelTokensRequest{Body: body}}})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := int64(aws.ToInt32(out.InputTokens)), inputTokens(t, body); got != want {
			t.Errorf("input tokens %d, want %d", got, want)
		}
	})

	st := ts.state(t)
	if used := st.bucket(t, "eu-west-1", "sonnet-4-cross-region-tpm").Used; used == 0 {
		t.Error("SigV4 for eu-west-1 did not draw from eu-west-1")
	}
	if used := st.bucket(t, "us-east-1", "sonnet-4-cross-region-tpm").Used; used != 0 {
		t.Errorf("us-east-1 was charged %d", used)
	}
}

func TestSDKThrottling(t *testing.T) {
	isolateAWSConfig(t)
	ctx := t.Context()
	body := invokeBody(4096, "hi")

	// A quota smaller than one request: every call is refused at admission.
	ts := newTestServer(t, oneRegion(tpm(1000)))
	c := sdkClient(t, ts.url, "us-east-1")
	_, err := c.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String(sonnet4), Body: body})
	var te *types.ThrottlingException
	if !errors.As(err, &te) || aws.ToString(te.Message) != "Too many tokens, please wait before trying again." {
		t.Errorf("InvokeModel: got %v, want *types.ThrottlingException", err)
	}
	_, err = c.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{ModelId: aws.String(sonnet4), Body: body})
	if !errors.As(err, &te) {
		t.Errorf("InvokeModelWithResponseStream: got %v, want *types.ThrottlingException", err)
	}

	// Throttled mid-stream: the stream's Err() is the typed exception.
	cfg := oneRegion()
	cfg.Faults.MidStreamThrottleRate = 1
	ts = newTestServer(t, cfg)
	c = sdkClient(t, ts.url, "us-east-1")
	out, err := c.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{ModelId: aws.String(sonnet4), Body: body})
	if err != nil {
		t.Fatal(err)
	}
	n := drain(out.GetStream().Events())
	if err := out.GetStream().Err(); !errors.As(err, &te) || n == 0 {
		t.Errorf("InvokeModelWithResponseStream after %d events: got %v, want *types.ThrottlingException", n, err)
	}
	out.GetStream().Close()

	cs, err := c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String(sonnet4),
		Messages:        []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "hi"}}}},
		InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(1000)}})
	if err != nil {
		t.Fatal(err)
	}
	n = drain(cs.GetStream().Events())
	if err := cs.GetStream().Err(); !errors.As(err, &te) || n == 0 {
		t.Errorf("ConverseStream after %d events: got %v, want *types.ThrottlingException", n, err)
	}
	cs.GetStream().Close()
}

func drain[T any](ch <-chan T) int {
	n := 0
	for range ch {
		n++
	}
	return n
}

// TestSDKBearerOverTLS: the SDK sends a Bedrock API key only over HTTPS; it
// trusts the emulator's certificate through AWS_CA_BUNDLE.
func TestSDKBearerOverTLS(t *testing.T) {
	isolateAWSConfig(t)
	cfg := config.DefaultEmulator()
	cfg.RequireAuth = true
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), newClock().now)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(s)
	t.Cleanup(hs.Close)
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CA_BUNDLE", bundle)
	t.Setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSKexample")
	c := sdkClient(t, hs.URL, "us-east-1")
	out, err := c.InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{ModelId: aws.String(sonnet4), Body: invokeBody(5, "hi")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out.Body), `"text":"Hello from headroom emulate, an"`) {
		t.Errorf("body %s", out.Body)
	}
}

// TestSDKToolUse: the SDK reads a scripted call from Converse and
// ConverseStream as a toolUse with its input, and a tool error sent back
// as a toolResult gets the call again.
func TestSDKToolUse(t *testing.T) {
	isolateAWSConfig(t)
	ts := newTestServer(t, toolConfig(25))
	c := sdkClient(t, ts.url, "us-east-1")
	ctx := t.Context()
	tools := &types.ToolConfiguration{Tools: []types.Tool{&types.ToolMemberToolSpec{Value: types.ToolSpecification{
		Name: aws.String("Write"), InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(map[string]any{"type": "object"})}}}}}
	msgs := []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "write it"}}}}

	out, err := c.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(sonnet4), Messages: msgs, ToolConfig: tools})
	if err != nil {
		t.Fatal(err)
	}
	msg := out.Output.(*types.ConverseOutputMemberMessage).Value
	tu, ok := msg.Content[0].(*types.ContentBlockMemberToolUse)
	if !ok || out.StopReason != types.StopReasonToolUse {
		t.Fatalf("content %#v, stop %s", msg.Content, out.StopReason)
	}
	var input map[string]any
	if err := tu.Value.Input.UnmarshalSmithyDocument(&input); err != nil {
		t.Fatal(err)
	}
	if content, _ := input["content"].(string); input["file_path"] != toolPath || len(strings.Fields(content)) != 25 {
		t.Errorf("input %v", input)
	}

	// The call failed: the script calls again, streamed this time.
	msgs = append(msgs, msg, types.Message{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{
		ToolUseId: tu.Value.ToolUseId, Status: types.ToolResultStatusError, Content: []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberText{Value: "bad input"}}}}}})
	so, err := c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String(sonnet4), Messages: msgs, ToolConfig: tools})
	if err != nil {
		t.Fatal(err)
	}
	stream := so.GetStream()
	defer stream.Close()
	var id, name, streamed string
	var stop types.StopReason
	for ev := range stream.Events() {
		switch e := ev.(type) {
		case *types.ConverseStreamOutputMemberContentBlockStart:
			if s, ok := e.Value.Start.(*types.ContentBlockStartMemberToolUse); ok {
				id, name = aws.ToString(s.Value.ToolUseId), aws.ToString(s.Value.Name)
			}
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			if d, ok := e.Value.Delta.(*types.ContentBlockDeltaMemberToolUse); ok {
				streamed += aws.ToString(d.Value.Input)
			}
		case *types.ConverseStreamOutputMemberMessageStop:
			stop = e.Value.StopReason
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if name != "Write" || id == "" || id == aws.ToString(tu.Value.ToolUseId) || stop != types.StopReasonToolUse {
		t.Errorf("retry: call %q %q (first %q), stop %s", name, id, aws.ToString(tu.Value.ToolUseId), stop)
	}
	if _, words := writeInput(t, streamed); words != 25 {
		t.Errorf("streamed input has %d words, want 25", words)
	}
}
