package gateway

import (
	"errors"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/headroomhq/headroom/internal/upstream"
)

// TestAnthropicSDK: the official Anthropic Go SDK (not its Bedrock
// wrapper), with its base URL pointed at the gateway and a Headroom key as
// its API key, calls Messages unary, streaming and count_tokens, through a
// runtime and a Mantle upstream; each call is settled in the ledger.
func TestAnthropicSDK(t *testing.T) {
	t.Parallel()
	for _, svc := range []upstream.Service{upstream.ServiceRuntime, upstream.ServiceMantle} {
		t.Run(string(svc), func(t *testing.T) {
			t.Parallel()
			h, _ := serviceHarness(t, svc, harnessOpts{})
			client := anthropic.NewClient(option.WithBaseURL(h.gwURL), option.WithAPIKey(h.secret["alice"]), option.WithMaxRetries(0))
			params := anthropic.MessageNewParams{
				Model:     sonnet,
				MaxTokens: 20000, // the SDK wants a stream above about 21,000
				Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("say hi"))},
			}

			settled := settledMeter(h, svc)
			msg, err := client.Messages.New(t.Context(), params)
			if err != nil {
				t.Fatal(err)
			}
			if msg.Usage.InputTokens != fakeInput || msg.Usage.OutputTokens != fakeOutput || msg.Content[0].Text != "hello" {
				t.Errorf("unary: %+v", msg)
			}
			waitFor(t, "settlement", func() bool { return h.reserved() == 0 })
			if got, want := settled(), wantSettled(svc); got != want {
				t.Errorf("unary settled %s, want %s", got, want)
			}

			settled = settledMeter(h, svc)
			params.MaxTokens = 128000
			stream := client.Messages.NewStreaming(t.Context(), params, option.WithHeader("X-Headroom-Emulator-Fake", "cut"))
			var acc anthropic.Message
			for stream.Next() {
				if err := acc.Accumulate(stream.Current()); err != nil {
					t.Fatal(err)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if acc.Usage.OutputTokens != fakeOutput || acc.StopReason != "max_tokens" || len(acc.Content) != 2 || acc.Content[1].ID != "toolu_fake1" {
				t.Errorf("stream: %+v", acc)
			}
			waitFor(t, "settlement", func() bool { return h.reserved() == 0 })
			if got, want := settled(), wantSettled(svc); got != want {
				t.Errorf("stream settled %s, want %s", got, want)
			}

			count, err := client.Messages.CountTokens(t.Context(), anthropic.MessageCountTokensParams{
				Model:    sonnet,
				Messages: params.Messages,
			})
			if err != nil || count.InputTokens != 42 {
				t.Errorf("count_tokens: %v %v", count, err)
			}

			// A bad key is an *anthropic.Error the SDK reads: 401.
			bad := anthropic.NewClient(option.WithBaseURL(h.gwURL), option.WithAPIKey("hr_nope"), option.WithMaxRetries(0))
			params.MaxTokens = 1000
			_, err = bad.Messages.New(t.Context(), params)
			var apiErr *anthropic.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
				t.Errorf("bad key: %v", err)
			}
		})
	}
}
