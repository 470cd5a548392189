package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
	"github.com/headroomhq/headroom/internal/quota"
)

// TestFailoverWaitsWhenNoRoom: another client of the account holds both
// regions' per-minute quota, which the gateway's mirror cannot see. Every
// request the gateway sends is throttled by both regions, yet none is
// handed a 429: each gives its reservation back and waits in the route's
// queues (pausing between tries), and all complete once one region frees,
// about 3.5 s later (past the few quick retries that used to end in the
// upstream's 429). A request whose wait ends first gets the throttle, with
// Retry-After, Bedrock-shaped on InvokeModel and Anthropic-shaped on
// Messages. Nothing stays reserved. The AWS SDK for Go and the Anthropic
// SDK, their retries off, complete among them.
func TestFailoverWaitsWhenNoRoom(t *testing.T) {
	t.Parallel()
	// 50,000 a minute: a request of the gateway reserves 7 + 4,096 × 5.
	tight := testBuckets(50_000, 100_000_000)
	h := newRouteHarness(t, routeOpts{
		emu:     map[string][]config.Bucket{"us-east-1": tight, "us-west-2": tight},
		faults:  func(f *config.Faults) { f.SlowLatency = config.Duration{Duration: time.Minute} },
		maxWait: 20 * time.Second,
	})
	// The other client: a call to each region that reserves 7 + 9,900 × 5
	// of the 50,000 and holds it until it is cancelled.
	hold := map[string]context.CancelFunc{}
	var holders sync.WaitGroup
	t.Cleanup(holders.Wait) // after the cancels below (cleanups run last first)
	for _, region := range routeRegions {
		ctx, cancel := context.WithCancel(context.Background())
		hold[region] = cancel
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.emuURL+"/region/"+region+"/model/"+sonnet+"/invoke",
			strings.NewReader(fmt.Sprintf(smallMsg, 9_900)))
		req.Header.Set(emulator.HeaderFault, emulator.FaultSlow)
		holders.Go(func() {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	waitFor(t, "the other client's holds", func() bool {
		for _, r := range h.emuSrv.Account().State(time.Now()).Regions {
			if len(r.InFlight) == 0 {
				return false
			}
		}
		return true
	})
	held := h.calls("us-east-1") + h.calls("us-west-2")

	type answer struct {
		what   string
		status int
		header http.Header
		body   string
		took   time.Duration
	}
	var mu sync.Mutex
	var answers []answer
	var wg sync.WaitGroup
	send := func(what, path, body string, hdr map[string]string) {
		wg.Go(func() {
			start := time.Now()
			req, _ := http.NewRequest(http.MethodPost, h.gwURL+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+h.secret)
			req.Header.Set("anthropic-version", "2023-06-01")
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("%s: %v", what, err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			answers = append(answers, answer{what, resp.StatusCode, resp.Header, string(b), time.Since(start)})
			mu.Unlock()
		})
	}
	invoke := fmt.Sprintf(smallMsg, 100)
	messages := fmt.Sprintf(`{"model":%q,"max_tokens":100,"messages":[{"role":"user","content":"hello there"}]}`, sonnet)
	for i := range 3 {
		send("invoke "+strconv.Itoa(i), "/model/"+sonnet+"/invoke", invoke, nil)
	}
	send("stream", "/model/"+sonnet+"/invoke-with-response-stream", invoke, nil)
	send("messages", "/v1/messages", messages, nil)
	short := map[string]string{HeaderMaxWait: "1"}
	send("invoke, 1 s wait", "/model/"+sonnet+"/invoke", invoke, short)
	send("messages, 1 s wait", "/v1/messages", messages, short)

	// Real clients with their own retries off: the AWS SDK for Go and the
	// Anthropic SDK see the answer, not a 429.
	sdkErrs := make(chan error, 2)
	wg.Go(func() {
		c := bedrockruntime.New(bedrockruntime.Options{Region: "us-east-1", RetryMaxAttempts: 1}, func(o *bedrockruntime.Options) {
			o.BaseEndpoint = aws.String(h.gwURL)
			o.Credentials = credentials.NewStaticCredentialsProvider(h.secret, "any-secret", "")
			o.HTTPClient = bodyCopyingClient{awshttp.NewBuildableClient()}
		})
		_, err := c.InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{ModelId: aws.String(sonnet),
			ContentType: aws.String("application/json"), Body: []byte(invoke)})
		sdkErrs <- err
	})
	wg.Go(func() {
		c := anthropic.NewClient(option.WithBaseURL(h.gwURL), option.WithAPIKey(h.secret), option.WithMaxRetries(0))
		stream := c.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{Model: sonnet, MaxTokens: 100,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("say hi"))}})
		var acc anthropic.Message
		for stream.Next() {
			_ = acc.Accumulate(stream.Current())
		}
		if err := stream.Err(); err != nil {
			sdkErrs <- err
			return
		}
		if acc.StopReason == "" {
			sdkErrs <- fmt.Errorf("anthropic SDK: the stream ended without a stop reason: %+v", acc)
			return
		}
		sdkErrs <- nil
	})

	time.Sleep(3500 * time.Millisecond)
	freed := time.Now()
	hold["us-west-2"]() // west frees; east stays held
	wg.Wait()

	// {"type":"message_stop" in base64, as the event stream's chunks carry it.
	const messageStopB64 = "eyJ0eXBlIjoibWVzc2FnZV9zdG9wIi"
	for _, a := range answers {
		short := strings.HasSuffix(a.what, "1 s wait")
		switch {
		case !short && a.status != http.StatusOK:
			t.Errorf("%s: %d %s; want it to wait for a region and complete", a.what, a.status, a.body)
		case !short && a.what == "stream" && !strings.Contains(a.body, messageStopB64):
			t.Errorf("stream: incomplete: %q", a.body)
		case short && a.status != http.StatusTooManyRequests:
			t.Errorf("%s: %d %s; want a throttle when its wait ends", a.what, a.status, a.body)
		case short && (a.took < time.Second || a.took > 3*time.Second):
			t.Errorf("%s: answered after %v, want about its 1 s wait", a.what, a.took)
		case short:
			if ra, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("%s: Retry-After %q, want whole seconds", a.what, a.header.Get("Retry-After"))
			}
			anthropic := strings.HasPrefix(a.what, "messages")
			if anthropic && !strings.Contains(a.body, `"rate_limit_error"`) || !anthropic && a.header.Get("X-Amzn-Errortype") != "ThrottlingException" {
				t.Errorf("%s: %s %v: want the throttle in the client's protocol", a.what, a.body, a.header)
			}
		}
	}
	close(sdkErrs)
	for err := range sdkErrs {
		if err != nil {
			t.Errorf("a real client: %v", err)
		}
	}
	if len(answers) != 7 {
		t.Fatalf("%d answers, want 7", len(answers))
	}
	if h.th429.Load() < 7 {
		t.Fatalf("the regions throttled %d calls: the test held nothing", h.th429.Load())
	}
	t.Logf("served %v after west freed; %d upstream 429s; calls east %d, west %d",
		time.Since(freed).Round(time.Millisecond), h.th429.Load(), h.calls("us-east-1"), h.calls("us-west-2")-held)
	waitFor(t, "the ledgers to be empty", func() bool { return h.reserved() == 0 })
}

// downAfterFirst is a shared ledger that holds the first reserve and then
// cannot be reached.
type downAfterFirst struct {
	n       atomic.Int64
	changed chan struct{}
}

func (d *downAfterFirst) Reserve(context.Context, admission.SharedHold) error {
	if d.n.Add(1) == 1 {
		return nil
	}
	return &admission.Unavailable{Err: errors.New("redis: connection refused"), RetryAfter: 2 * time.Second}
}
func (d *downAfterFirst) Overdraw(admission.SharedHold)                             {}
func (d *downAfterFirst) Adjust(admission.SharedHold, quota.Cost)                   {}
func (d *downAfterFirst) End(admission.SharedHold, quota.Cost, bool, time.Duration) {}
func (d *downAfterFirst) Throttled(quota.Set)                                       {}
func (d *downAfterFirst) Changed() <-chan struct{}                                  { return d.changed }
func (d *downAfterFirst) Waiting()                                                  {}

// TestThrottleThenLedgerDown: a request the upstream throttles waits to
// be placed again; when the ledger the replicas share cannot be reached by
// then, the client gets its 503 (the documented Redis-down answer), not
// the upstream's 429.
func TestThrottleThenLedgerDown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{emu: func(c *config.Emulator) {
		c.Regions[0].Buckets = testBuckets(10_000, 100_000_000) // the account is smaller than the mirror says
	}})
	sh := &downAfterFirst{changed: make(chan struct{})}
	h.up.Admission.ShareWith(sh)
	resp, body := h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke", fmt.Sprintf(smallMsg, 4096), nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Amzn-Errortype") != "ServiceUnavailableException" {
		t.Errorf("status %d %s %s; want the shared ledger's 503", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), body)
	}
	if h.throttle.Load() != 1 || sh.n.Load() != 2 {
		t.Errorf("%d upstream throttles, %d reserves; want 1 and 2 (the first held, the second refused)", h.throttle.Load(), sh.n.Load())
	}
	waitFor(t, "the ledger to be empty", func() bool { return h.reserved() == 0 })
}
