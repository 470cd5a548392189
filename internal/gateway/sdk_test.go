package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go/auth/bearer"
)

// sdkClient is the official SDK pointed at the gateway, authenticated with a
// Headroom key either as the SigV4 access key ID (over http://) or as a
// bearer token (over https://: the SDK refuses to send one in the clear).
func (h *harness) sdkClient(secret string, sigv4 bool) *bedrockruntime.Client {
	return bedrockruntime.New(bedrockruntime.Options{Region: region}, func(o *bedrockruntime.Options) {
		if sigv4 {
			o.BaseEndpoint = aws.String(h.gwURL)
			o.Credentials = credentials.NewStaticCredentialsProvider(secret, "any-secret", "")
		} else {
			o.BaseEndpoint, o.HTTPClient = aws.String(h.gwTLS), h.tlsClient
			o.BearerAuthTokenProvider = bearer.TokenProviderFunc(func(context.Context) (bearer.Token, error) {
				return bearer.Token{Value: secret}, nil
			})
			o.AuthSchemePreference = []string{"httpBearerAuth"}
		}
		o.HTTPClient = bodyCopyingClient{o.HTTPClient}
	})
}

// bodyCopyingClient works around a race between the SDK and net/http, on
// the client's side of the wire (smithy-go v1.28.9,
// transport/http/internal/io/safe.go; the emulator's SDK tests carry the
// same workaround). The SDK closes its request body as soon as Do returns,
// and a closed body's WriteTo returns io.EOF. net/http flushes the headers
// of a body it does not know to be in memory, writes the body straight to
// the socket, then reads the body once more to check that nothing is left.
// The gateway answers from the emulator in well under a millisecond, so
// Do can return (and the SDK close the body) before that last read: the
// writeLoop gets io.EOF, counts the write as failed and closes the
// connection under the answer being read, and a stream ends with "use of
// closed network connection" (about 13 runs in 1,080 with three test
// binaries at once). TestAWSSDKStreamOutlivesRequestWrite forces that
// order. Handing net/http its own copy of the body keeps the SDK's Close
// away from it.
type bodyCopyingClient struct{ next bedrockruntime.HTTPClient }

func (c bodyCopyingClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength > 0 {
		b, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	return c.next.Do(r)
}

// slowWriteConn holds each write's return for a while after the bytes
// went out: the server has the request and answers while the client's
// net/http is still inside its write of it.
type slowWriteConn struct{ net.Conn }

func (c slowWriteConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	time.Sleep(50 * time.Millisecond)
	return n, err
}

// TestAWSSDKStreamOutlivesRequestWrite: when the gateway's answer arrives
// before net/http has finished its write of the request (the order that
// made TestAWSSDKAllOperations fail now and then), that write still ends
// without error, so the connection under the stream stays open, and the
// stream reads to its end. Without bodyCopyingClient every write here
// fails with io.EOF (the short streams here are read whole before the
// connection closes; longer ones break).
func TestAWSSDKStreamOutlivesRequestWrite(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	slow := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return slowWriteConn{c}, nil
	}}}
	defer slow.CloseIdleConnections()
	c := bedrockruntime.New(bedrockruntime.Options{Region: region}, func(o *bedrockruntime.Options) {
		o.BaseEndpoint = aws.String(h.gwURL)
		o.Credentials = credentials.NewStaticCredentialsProvider(h.secret["alice"], "any-secret", "")
		o.HTTPClient = bodyCopyingClient{slow}
	})
	for i := range 3 {
		// net/http reports the end of its write of the request here; an
		// error there closes the connection under the answer.
		wrote := make(chan error, 1)
		ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) { wrote <- i.Err }})
		st, err := c.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{ModelId: aws.String(sonnet),
			Body: []byte(fmt.Sprintf(smallMsg, 64)), ContentType: aws.String("application/json")})
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		chunks := 0
		for range st.GetStream().Events() {
			chunks++
		}
		if err := st.GetStream().Err(); err != nil || chunks < 3 {
			t.Errorf("stream %d: %d chunks, err %v", i, chunks, err)
		}
		if err := <-wrote; err != nil {
			t.Errorf("stream %d: net/http's write of the request failed after the answer came: %v", i, err)
		}
	}
	waitFor(t, "the refunds", func() bool { return h.reserved() == 0 })
}

func TestAWSSDKAllOperations(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	for _, sigv4 := range []bool{false, true} {
		t.Run(fmt.Sprintf("sigv4=%v", sigv4), func(t *testing.T) {
			c := h.sdkClient(h.secret["alice"], sigv4)
			body := []byte(fmt.Sprintf(smallMsg, 64))

			inv, err := c.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String(sonnet), Body: body, ContentType: aws.String("application/json")})
			if err != nil {
				t.Fatalf("InvokeModel: %v", err)
			}
			if len(inv.Body) == 0 {
				t.Error("InvokeModel: empty body")
			}

			st, err := c.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{ModelId: aws.String(sonnet), Body: body, ContentType: aws.String("application/json")})
			if err != nil {
				t.Fatalf("InvokeModelWithResponseStream: %v", err)
			}
			chunks := 0
			for ev := range st.GetStream().Events() {
				if _, ok := ev.(*types.ResponseStreamMemberChunk); ok {
					chunks++
				}
			}
			if err := st.GetStream().Err(); err != nil || chunks < 3 {
				t.Errorf("stream: %d chunks, err %v", chunks, err)
			}

			msgs := []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "hello"}}}}
			conv, err := c.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(sonnet), Messages: msgs,
				InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(50000)}})
			if err != nil {
				t.Fatalf("Converse: %v", err)
			}
			if conv.Usage == nil || aws.ToInt32(conv.Usage.OutputTokens) == 0 {
				t.Errorf("Converse usage: %+v", conv.Usage)
			}

			cs, err := c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String(sonnet), Messages: msgs,
				AdditionalModelRequestFields: document.NewLazyDocument(map[string]any{"top_k": 5})})
			if err != nil {
				t.Fatalf("ConverseStream: %v", err)
			}
			var sawMeta bool
			for ev := range cs.GetStream().Events() {
				if _, ok := ev.(*types.ConverseStreamOutputMemberMetadata); ok {
					sawMeta = true
				}
			}
			if err := cs.GetStream().Err(); err != nil || !sawMeta {
				t.Errorf("ConverseStream: metadata %v, err %v", sawMeta, err)
			}

			ct, err := c.CountTokens(ctx, &bedrockruntime.CountTokensInput{ModelId: aws.String("anthropic.claude-sonnet-4-20250514-v1:0"),
				Input: &types.CountTokensInputMemberInvokeModel{Value: types.InvokeModelTokensRequest{Body: body}}})
			if err != nil {
				t.Fatalf("CountTokens: %v", err)
			}
			if aws.ToInt32(ct.InputTokens) <= 0 {
				t.Errorf("CountTokens = %d", aws.ToInt32(ct.InputTokens))
			}
		})
	}
	waitFor(t, "the refunds", func() bool { return h.reserved() == 0 })
}

func TestAWSSDKBadKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.sdkClient("hr_not-a-real-key", false)
	_, err := c.InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{ModelId: aws.String(sonnet), Body: []byte(fmt.Sprintf(smallMsg, 10))})
	var ade *types.AccessDeniedException
	if !errors.As(err, &ade) {
		t.Fatalf("err = %v, want AccessDeniedException", err)
	}
}
