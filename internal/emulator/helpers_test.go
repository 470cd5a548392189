package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/bedrock/eventstream"
	"github.com/headroomhq/headroom/internal/config"
)

// t0 is the tests' epoch: a Monday, 10:00 UTC.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// clock is a settable clock for the accounting.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const sonnet4 = "us.anthropic.claude-sonnet-4-20250514-v1:0"

// oneRegion is a configuration with a single region us-east-1 holding
// buckets, and no other changes to the defaults.
func oneRegion(buckets ...config.Bucket) config.Emulator {
	cfg := config.DefaultEmulator()
	cfg.Regions = []config.EmulatorRegion{{Name: "us-east-1", Buckets: buckets}}
	cfg.DefaultRegion = "us-east-1"
	return cfg
}

func tpm(limit int64) config.Bucket {
	return config.Bucket{Name: "tpm", Kind: config.KindTPM, Limit: limit}
}
func tpd(limit int64) config.Bucket {
	return config.Bucket{Name: "tpd", Kind: config.KindTPD, Limit: limit}
}
func rpm(limit int64) config.Bucket {
	return config.Bucket{Name: "rpm", Kind: config.KindRPM, Limit: limit}
}

// testServer runs cfg's emulator on an httptest server with a fixed clock.
type testServer struct {
	*Server
	url   string
	clock *clock
}

func newTestServer(t *testing.T, cfg config.Emulator) *testServer {
	t.Helper()
	clk := newClock()
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), clk.now)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &testServer{Server: s, url: hs.URL, clock: clk}
}

// invokeBody is a small Anthropic body; maxTokens < 0 leaves max_tokens out.
func invokeBody(maxTokens int, prompt string) []byte {
	var b strings.Builder
	b.WriteString(`{"anthropic_version":"bedrock-2023-05-31",`)
	if maxTokens >= 0 {
		fmt.Fprintf(&b, `"max_tokens":%d,`, maxTokens)
	}
	fmt.Fprintf(&b, `"messages":[{"role":"user","content":%q}]}`, prompt)
	return []byte(b.String())
}

// inputTokens is what the emulator charges as the input of body.
func inputTokens(t *testing.T, body []byte) int64 {
	t.Helper()
	r, err := bedrock.ReadInvoke(body)
	if err != nil {
		t.Fatal(err)
	}
	return int64(r.InputTokens)
}

// post sends body to path with extra headers (name, value pairs).
func post(t *testing.T, url string, body []byte, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// bedrockError reads an error response as (status, x-amzn-ErrorType, message).
type bedrockError struct {
	Status  int
	Type    string
	Message string
}

func readError(t *testing.T, resp *http.Response) bedrockError {
	t.Helper()
	defer resp.Body.Close()
	var body struct {
		Message string `json:"message"`
	}
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &body); err != nil {
		t.Fatalf("error body %q: %v", data, err)
	}
	return bedrockError{resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), body.Message}
}

func throttled(msg string) bedrockError {
	return bedrockError{http.StatusTooManyRequests, bedrock.ThrottlingException, msg}
}

// state fetches GET /_emulator/state.
func (ts *testServer) state(t *testing.T) State {
	t.Helper()
	resp, err := http.Get(ts.url + PathState)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// bucket returns the named bucket of region in st.
func (st State) bucket(t *testing.T, region, name string) BucketState {
	t.Helper()
	for _, r := range st.Regions {
		if r.Name != region {
			continue
		}
		for _, b := range r.Buckets {
			if b.Name == name {
				return b
			}
		}
	}
	t.Fatalf("no bucket %s in %s", name, region)
	return BucketState{}
}

func (st State) inFlight(region string) int {
	for _, r := range st.Regions {
		if r.Name == region {
			return len(r.InFlight)
		}
	}
	return -1
}

// decodeStream reads every frame of an event stream and parses it.
func decodeStream(t *testing.T, r io.Reader) []eventstream.Event {
	t.Helper()
	dec := eventstream.NewDecoder(r)
	var evs []eventstream.Event
	for {
		m, err := dec.Next()
		if err == io.EOF {
			return evs
		}
		if err != nil {
			t.Fatalf("after %d frames: %v", len(evs), err)
		}
		ev, err := eventstream.Parse(m)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
}

// anthropicEvents decodes the Anthropic events inside chunk frames; it
// fails on any other frame.
func anthropicEvents(t *testing.T, evs []eventstream.Event) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ev := range evs {
		if ev.Kind != eventstream.KindEvent || ev.EventType != eventstream.EventTypeChunk {
			t.Fatalf("frame %+v is not a chunk", ev)
		}
		var c struct {
			Bytes []byte `json:"bytes"`
		}
		if err := json.Unmarshal(ev.Payload, &c); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(c.Bytes, &m); err != nil {
			t.Fatalf("chunk %q: %v", c.Bytes, err)
		}
		out = append(out, m)
	}
	return out
}
