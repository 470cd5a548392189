package gateway

import (
	"context"
	"errors"
	"fmt"
	"testing"

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
			return
		}
		o.BaseEndpoint, o.HTTPClient = aws.String(h.gwTLS), h.tlsClient
		o.BearerAuthTokenProvider = bearer.TokenProviderFunc(func(context.Context) (bearer.Token, error) {
			return bearer.Token{Value: secret}, nil
		})
		o.AuthSchemePreference = []string{"httpBearerAuth"}
	})
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
