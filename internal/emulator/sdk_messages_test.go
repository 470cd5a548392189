package emulator

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	anthropicbedrock "github.com/anthropics/anthropic-sdk-go/v2/bedrock"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/headroomhq/headroom/internal/config"
)

// The official Anthropic Go SDK (anthropic-sdk-go) against the emulator's
// Messages paths: the plain client with its base URL pointed at the
// emulator and an x-api-key, unary and streaming, and its Bedrock Mantle
// client signing with SigV4 (service bedrock-mantle).

func sdkParams(maxTokens int64) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.Model(opus47),
		MaxTokens: maxTokens,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("say hi"))},
	}
}

func TestAnthropicSDK(t *testing.T) {
	t.Setenv("ANTHROPIC_API_KEY", "")
	t.Setenv("ANTHROPIC_BASE_URL", "")
	cfg := mantleCfg(10_000_000, 10_000_000, 10_000_000)
	cfg.Generation.OutputTokens = config.Distribution{Distribution: config.DistFixed, Mean: 7, Max: 7}
	ts := newTestServer(t, cfg)
	ctx := t.Context()

	for _, base := range []string{"/mantle/", "/anthropic/", "/mantle/anthropic/"} {
		client := anthropic.NewClient(option.WithBaseURL(ts.url+base), option.WithAPIKey("k"), option.WithMaxRetries(0))
		t.Run(strings.Trim(base, "/")+" unary", func(t *testing.T) {
			msg, err := client.Messages.New(ctx, sdkParams(100))
			if err != nil {
				t.Fatal(err)
			}
			if len(msg.Content) != 1 || msg.Content[0].Text != Opening || msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.OutputTokens != 7 || msg.Usage.InputTokens == 0 {
				t.Errorf("message %+v", msg)
			}
		})
		t.Run(strings.Trim(base, "/")+" stream", func(t *testing.T) {
			stream := client.Messages.NewStreaming(ctx, sdkParams(100))
			var msg anthropic.Message
			events := 0
			for stream.Next() {
				if err := msg.Accumulate(stream.Current()); err != nil {
					t.Fatal(err)
				}
				events++
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if len(msg.Content) != 1 || msg.Content[0].Text != Opening || msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.OutputTokens != 7 || events < 6 {
				t.Errorf("after %d events: %+v", events, msg)
			}
		})
	}

	t.Run("throttled", func(t *testing.T) {
		ts := newTestServer(t, mantleCfg(1, 100, 100))
		client := anthropic.NewClient(option.WithBaseURL(ts.url+"/mantle/"), option.WithAPIKey("k"), option.WithMaxRetries(0))
		_, err := client.Messages.New(ctx, sdkParams(1000))
		var ae *anthropic.Error
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusTooManyRequests || ae.Type() != "rate_limit_error" {
			t.Fatalf("got %v, want a 429 rate_limit_error", err)
		}
		stream := client.Messages.NewStreaming(ctx, sdkParams(1000))
		for stream.Next() {
		}
		if !errors.As(stream.Err(), &ae) || ae.StatusCode != http.StatusTooManyRequests {
			t.Errorf("stream: got %v, want a 429", stream.Err())
		}
	})

	t.Run("throttled mid-stream", func(t *testing.T) {
		client := anthropic.NewClient(option.WithBaseURL(ts.url+"/mantle/"), option.WithAPIKey("k"), option.WithMaxRetries(0),
			option.WithHeader(HeaderFault, FaultThrottleMidStream), option.WithHeader(HeaderOutputTokens, "40"))
		stream := client.Messages.NewStreaming(ctx, sdkParams(100))
		events := 0
		for stream.Next() {
			events++
		}
		if stream.Err() == nil || events == 0 {
			t.Errorf("after %d events: got %v, want the stream's error event", events, stream.Err())
		}
	})

	t.Run("Mantle client with SigV4", func(t *testing.T) {
		t.Setenv("AWS_BEARER_TOKEN_BEDROCK", "")
		t.Setenv("ANTHROPIC_AWS_API_KEY", "")
		cfg := mantleCfg(10_000_000, 10_000_000, 10_000_000)
		cfg.Regions = append(cfg.Regions, config.EmulatorRegion{Name: "eu-west-1", Mantle: cfg.Regions[0].Mantle})
		cfg.RequireAuth = true
		cfg.Generation.OutputTokens = config.Distribution{Distribution: config.DistFixed, Mean: 7, Max: 7}
		ts := newTestServer(t, cfg)
		client, err := anthropicbedrock.NewMantleClient(ctx, anthropicbedrock.MantleClientConfig{
			AWSAccessKey: "AKIDEXAMPLE", AWSSecretAccessKey: "secret", AWSRegion: "eu-west-1", BaseURL: ts.url + "/mantle",
		}, option.WithMaxRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		stream := client.Messages.NewStreaming(ctx, sdkParams(100))
		var msg anthropic.Message
		for stream.Next() {
			if err := msg.Accumulate(stream.Current()); err != nil {
				t.Fatal(err)
			}
		}
		if err := stream.Err(); err != nil || msg.Content[0].Text != Opening {
			t.Fatalf("%v: %+v", err, msg)
		}
		// The region came from the signature's scope.
		if l := ts.ledgers(t, "eu-west-1"); l.MantleIn == 0 || l.MantleOut != 7 {
			t.Errorf("eu-west-1's Mantle ledger: %+v", l)
		}
	})
}
