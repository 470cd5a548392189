package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/headroomhq/headroom/internal/bedrock"
)

func TestInvokeClampsAndSettles(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	resp, body := h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke", fmt.Sprintf(smallMsg, 32000), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got, want := resp.Header.Get(HeaderMaxTokens), "32000->4096 (fixed)"; got != want {
		t.Errorf("%s = %q, want %q", HeaderMaxTokens, got, want)
	}
	if resp.Header.Get(bedrock.HeaderRequestID) == "" {
		t.Error("no x-amzn-RequestId")
	}
	waitFor(t, "the refund", func() bool { return h.reserved() == 0 })
	u, err := bedrock.ReadInvokeUsage(body)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(u.InputTokens + 5*u.OutputTokens)
	for _, b := range h.ledger() {
		// The day bucket is a counter (the minute bucket refills at once).
		if b.KindName == "tpd" && b.Used != want {
			t.Errorf("bucket %s used %d, want settlement %d", b.Name, b.Used, want)
		}
	}
}

func TestStreamPassThrough(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	resp, body := h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke-with-response-stream", fmt.Sprintf(smallMsg, 100), nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != bedrock.ContentTypeEventStream {
		t.Fatalf("status %d, content type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	// The same request straight at the emulator gives the same bytes.
	_, direct := h.post(h.emuURL, "x", "/model/"+sonnet+"/invoke-with-response-stream", fmt.Sprintf(smallMsg, 100), nil)
	if len(direct) != len(body) {
		t.Errorf("stream through the gateway is %d bytes, direct %d", len(body), len(direct))
	}
	waitFor(t, "the refund", func() bool { return h.reserved() == 0 })
}

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.post(h.gwURL, h.secret["alice"], "/model/"+sonnet+"/invoke", fmt.Sprintf(smallMsg, 10), nil)
	for path, want := range map[string]string{
		"/healthz":   "ok",
		"/metrics":   `headroom_requests_total{op="InvokeModel",outcome="ok"} 1`,
		"/v1/status": `"name": "sonnet-tpm"`,
	} {
		resp, err := http.Get(h.gwURL + path)
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		_, _ = fmt.Fprint(&sb, readAll(resp))
		if !strings.Contains(sb.String(), want) {
			t.Errorf("GET %s: want %q in:\n%s", path, want, sb.String())
		}
	}
}
