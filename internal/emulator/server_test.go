package emulator

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
)

// anthropicMessage is the part of an InvokeModel answer the tests read.
type anthropicMessage struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Role    string `json:"role"`
	Model   string `json:"model"`
	Content []struct {
		Type      string `json:"type"`
		Text      string `json:"text"`
		Thinking  string `json:"thinking"`
		Signature string `json:"signature"`
	} `json:"content"`
	StopReason string        `json:"stop_reason"`
	Usage      bedrock.Usage `json:"usage"`
}

func invoke(t *testing.T, url string, body []byte, headers ...string) (anthropicMessage, *http.Response) {
	t.Helper()
	resp := post(t, url, body, headers...)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, data)
	}
	var m anthropicMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return m, resp
}

// TestModelIdentifiers: every spelling of a model reaches the same
// buckets: literal ':', %3A, and inference-profile ARNs with %2F.
func TestModelIdentifiers(t *testing.T) {
	cfg := oneRegion(config.Bucket{Name: "sonnet-4-cross", Kind: config.KindTPM, Limit: 1e9,
		Scope: bedrock.Scope{Models: []string{"claude-sonnet-4-2025"}, Inference: bedrock.InferenceCrossRegion}})
	ts := newTestServer(t, cfg)
	body := invokeBody(10, "hi")
	paths := []string{
		"us.anthropic.claude-sonnet-4-20250514-v1:0",
		"us.anthropic.claude-sonnet-4-20250514-v1%3A0",
		"arn:aws:bedrock:us-east-1:123456789012:inference-profile%2Fus.anthropic.claude-sonnet-4-20250514-v1%3A0",
		"arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fglobal.anthropic.claude-sonnet-4-20250514-v1%3A0",
	}
	for i, p := range paths {
		m, _ := invoke(t, ts.url+"/model/"+p+"/invoke", body, HeaderOutputTokens, "3")
		if m.Model != "claude-sonnet-4-20250514" {
			t.Errorf("%s: model %q", p, m.Model)
		}
		if got := ts.state(t).bucket(t, "us-east-1", "sonnet-4-cross").Used; got != int64(i+1)*(inputTokens(t, body)+15) {
			t.Errorf("%s: did not draw from the Sonnet 4 cross-region bucket (used %d)", p, got)
		}
	}
}

func TestErrors(t *testing.T) {
	ts := newTestServer(t, config.DefaultEmulator())
	model := ts.url + "/model/" + sonnet4
	tests := []struct {
		name   string
		method string
		url    string
		body   string
		want   bedrockError
	}{
		{"unknown route", "GET", ts.url + "/v2/things", "", bedrockError{404, bedrock.ResourceNotFoundException, ""}},
		{"unknown action", "POST", model + "/invoke-async", "{}", bedrockError{404, bedrock.ResourceNotFoundException, ""}},
		{"GET on invoke", "GET", model + "/invoke", "", bedrockError{404, bedrock.ResourceNotFoundException, ""}},
		{"bad model", "POST", ts.url + "/model/arn:aws:s3:::bucket/invoke", `{"max_tokens":1,"messages":[]}`, bedrockError{400, bedrock.ValidationException, "The provided model identifier is invalid."}},
		{"not JSON", "POST", model + "/invoke", `{"max_tokens":`, bedrockError{400, bedrock.ValidationException, ""}},
		{"max_tokens missing on invoke", "POST", model + "/invoke", `{"messages":[{"role":"user","content":"hi"}]}`,
			bedrockError{400, bedrock.ValidationException, "Malformed input request: #: required key [max_tokens] not found, please reformat your input and try again."}},
		{"max_tokens above the model's", "POST", model + "/invoke", `{"max_tokens":100000,"messages":[{"role":"user","content":"hi"}]}`,
			bedrockError{400, bedrock.ValidationException, "max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-20250514"}},
		{"thinking budget not below max_tokens", "POST", model + "/converse", `{"inferenceConfig":{"maxTokens":2000},"additionalModelRequestFields":{"thinking":{"type":"enabled","budget_tokens":2000}},"messages":[]}`,
			bedrockError{400, bedrock.ValidationException, ""}},
		{"bad count-tokens", "POST", model + "/count-tokens", `{"input":{}}`, bedrockError{400, bedrock.ValidationException, ""}},
		{"unknown region", "POST", ts.url + "/region/ap-south-1/model/" + sonnet4 + "/invoke", string(invokeBody(1, "hi")),
			bedrockError{400, bedrock.ValidationException, `region "ap-south-1" is not served by this emulator (it serves [us-east-1 us-west-2 eu-west-1])`}},
		{"GET reset", "GET", ts.url + PathReset, "", bedrockError{404, bedrock.ResourceNotFoundException, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, tt.url, strings.NewReader(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Header.Get(bedrock.HeaderRequestID) == "" {
				t.Error("no x-amzn-RequestId")
			}
			got := readError(t, resp)
			if tt.want.Message == "" {
				got.Message = "" // only the status and type are fixed
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if st := ts.state(t); st.bucket(t, "us-east-1", "sonnet-4-cross-region-tpm").Used != 0 {
		t.Error("a refused request was charged")
	}
}

func TestAuth(t *testing.T) {
	const sigv4 = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260302/%s/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
	cfg := config.DefaultEmulator()
	cfg.RequireAuth = true
	// The region of each request shows in which region's bucket it drew from.
	ts := newTestServer(t, cfg)
	tests := []struct {
		name       string
		prefix     string
		auth       string
		wantStatus int
		wantRegion string
	}{
		{"no auth", "", "", 403, ""},
		{"garbage", "", "Basic dXNlcjpwYXNz", 403, ""},
		{"empty bearer", "", "Bearer ", 403, ""},
		{"bearer, default region", "", "Bearer abc", 200, "us-east-1"},
		{"SigV4 names the region", "", strings.Replace(sigv4, "%s", "eu-west-1", 1), 200, "eu-west-1"},
		{"path prefix beats SigV4", "/region/us-west-2", strings.Replace(sigv4, "%s", "eu-west-1", 1), 200, "us-west-2"},
		{"SigV4 of an unknown region", "", strings.Replace(sigv4, "%s", "ap-south-1", 1), 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.Reset()
			resp := post(t, ts.url+tt.prefix+"/model/"+sonnet4+"/invoke", invokeBody(10, "hi"), "Authorization", tt.auth)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus == 403 && resp.Header.Get(bedrock.HeaderErrorType) != bedrock.AccessDeniedException {
				t.Errorf("error type %q", resp.Header.Get(bedrock.HeaderErrorType))
			}
			if tt.wantRegion == "" {
				return
			}
			var charged []string
			for _, r := range ts.state(t).Regions {
				if r.Buckets[0].Used > 0 {
					charged = append(charged, r.Name)
				}
			}
			if d := cmp.Diff([]string{tt.wantRegion}, charged); d != "" {
				t.Errorf("charged regions (-want +got):\n%s", d)
			}
		})
	}
}

// TestAnswers: the shape of non-streaming answers, their length, cuts,
// thinking and determinism.
func TestAnswers(t *testing.T) {
	cfg := oneRegion()
	cfg.Generation.OutputTokens = config.Distribution{Distribution: config.DistFixed, Min: 0, Mean: 40, Max: 1000}
	ts := newTestServer(t, cfg)
	url := ts.url + "/model/" + sonnet4 + "/invoke"
	thinking := []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":3000,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"think"}]}`)
	tests := []struct {
		name         string
		body         []byte
		override     string
		wantBlocks   []string
		wantThinking int
		wantText     int
		wantStop     string
	}{
		{"configured length", invokeBody(100, "a"), "", []string{"text"}, 0, 40, "end_turn"},
		{"header overrides", invokeBody(100, "a"), "7", []string{"text"}, 0, 7, "end_turn"},
		{"cut at max_tokens", invokeBody(25, "a"), "", []string{"text"}, 0, 25, "max_tokens"},
		{"thinking counts toward output", thinking, "", []string{"thinking", "text"}, 10, 30, "end_turn"},
		{"thinking within its budget", thinking, "2900", []string{"thinking", "text"}, 725, 2175, "end_turn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.override != "" {
				hdr = []string{HeaderOutputTokens, tt.override}
			}
			m, resp := invoke(t, url, tt.body, hdr...)
			var blocks []string
			var thinkingWords, textWords int
			for _, c := range m.Content {
				blocks = append(blocks, c.Type)
				thinkingWords += len(strings.Fields(c.Thinking))
				textWords += len(strings.Fields(c.Text))
			}
			got := []any{blocks, thinkingWords, textWords, m.StopReason, m.Usage.OutputTokens, resp.Header.Get(bedrock.HeaderOutputTokens)}
			want := []any{tt.wantBlocks, tt.wantThinking, tt.wantText, tt.wantStop, tt.wantThinking + tt.wantText, strconv.Itoa(tt.wantThinking + tt.wantText)}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("blocks, thinking words, text words, stop, usage, header (-want +got):\n%s", d)
			}
			if m.Type != "message" || m.Role != "assistant" || !strings.HasPrefix(m.ID, "msg_bdrk_") {
				t.Errorf("not an Anthropic message: %+v", m)
			}
		})
	}

	a, _ := invoke(t, url, invokeBody(100, "same"))
	b, _ := invoke(t, url, invokeBody(100, "same"))
	c, _ := invoke(t, url, invokeBody(100, "other"))
	if d := cmp.Diff(a, b); d != "" {
		t.Errorf("the same request got different answers:\n%s", d)
	}
	if a.Content[0].Text == c.Content[0].Text {
		t.Error("different requests got the same text")
	}
	if !strings.HasPrefix(a.Content[0].Text, Opening+" ") {
		t.Errorf("answer %q does not start with the opening", a.Content[0].Text)
	}
}

// TestConverse: a Converse answer, and the model's own limit as the default
// max tokens.
func TestConverse(t *testing.T) {
	ts := newTestServer(t, oneRegion())
	body := []byte(`{"messages":[{"role":"user","content":[{"text":"hi"}]}],"additionalModelRequestFields":{"thinking":{"type":"enabled","budget_tokens":1024}}}`)
	resp := post(t, ts.url+"/model/"+sonnet4+"/converse", body, HeaderOutputTokens, "100000")
	defer resp.Body.Close()
	var out struct {
		Output struct {
			Message struct {
				Role    string `json:"role"`
				Content []struct {
					Text             *string `json:"text"`
					ReasoningContent *struct {
						ReasoningText struct{ Text, Signature string } `json:"reasoningText"`
					} `json:"reasoningContent"`
				} `json:"content"`
			} `json:"message"`
		} `json:"output"`
		StopReason string `json:"stopReason"`
		Usage      struct {
			InputTokens, OutputTokens, TotalTokens, CacheReadInputTokens, CacheWriteInputTokens int
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	r, _ := bedrock.ReadConverse(body)
	if got, want := []any{out.StopReason, out.Usage.InputTokens, out.Usage.OutputTokens, out.Usage.TotalTokens}, []any{"max_tokens", r.InputTokens, 64_000, r.InputTokens + 64_000}; !cmp.Equal(got, want) {
		t.Errorf("stop, input, output, total = %v, want %v", got, want)
	}
	c := out.Output.Message.Content
	if len(c) != 2 || c[0].ReasoningContent == nil || c[1].Text == nil || out.Output.Message.Role != "assistant" {
		t.Fatalf("content %+v, want reasoning then text", c)
	}
	if got := len(strings.Fields(c[0].ReasoningContent.ReasoningText.Text)); got != 1024 {
		t.Errorf("reasoning of %d tokens, want the 1,024 budget", got)
	}
}

func TestCountTokens(t *testing.T) {
	cfg := oneRegion(tpm(1000))
	cfg.Accounting.Profile = "aws"
	cfg.Generation.InputTokenScale = 1.5
	ts := newTestServer(t, cfg)
	inner := invokeBody(10, strings.Repeat("count these words ", 50))
	body := `{"input":{"invokeModel":{"body":"` + base64.StdEncoding.EncodeToString(inner) + `"}}}`
	resp := post(t, ts.url+"/model/"+sonnet4+"/count-tokens", []byte(body))
	defer resp.Body.Close()
	var out struct{ InputTokens int }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	_, ir := invoke(t, ts.url+"/model/"+sonnet4+"/invoke", inner, HeaderOutputTokens, "0")
	if got, want := strconv.Itoa(out.InputTokens), ir.Header.Get(bedrock.HeaderInputTokens); got != want || out.InputTokens == 0 {
		t.Errorf("count-tokens says %s, invoke charged %s", got, want)
	}
	if got, want := int64(out.InputTokens), (inputTokens(t, inner)*3+1)/2; got != want {
		t.Errorf("scaled input %d, want %d", got, want)
	}
	// Only the invoke was charged.
	if got := ts.state(t).bucket(t, "us-east-1", "tpm").Used; got != int64(out.InputTokens) {
		t.Errorf("used %d, want the invoke's %d", got, out.InputTokens)
	}
}

func TestInferenceProfiles(t *testing.T) {
	ts := newTestServer(t, config.DefaultEmulator())
	get := func(path string) (profiles []map[string]any) {
		resp, err := http.Get(ts.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get(bedrock.HeaderRequestID) == "" {
			t.Error("no x-amzn-RequestId")
		}
		var out struct {
			InferenceProfileSummaries []map[string]any `json:"inferenceProfileSummaries"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out.InferenceProfileSummaries
	}
	eu := get("/region/eu-west-1/inference-profiles?type=SYSTEM_DEFINED")
	var ids []string
	for _, p := range eu {
		ids = append(ids, p["inferenceProfileId"].(string))
		for _, k := range []string{"inferenceProfileArn", "inferenceProfileName", "description", "models", "createdAt", "updatedAt"} {
			if p[k] == nil {
				t.Errorf("%s has no %s", p["inferenceProfileId"], k)
			}
		}
		if p["status"] != "ACTIVE" || p["type"] != "SYSTEM_DEFINED" {
			t.Errorf("%v", p)
		}
	}
	for _, want := range []string{"eu.anthropic.claude-sonnet-4-20250514-v1:0", "global.anthropic.claude-sonnet-4-5-20250929-v1:0"} {
		if !strings.Contains(strings.Join(ids, " "), want) {
			t.Errorf("eu-west-1 lists %v, want %s", ids, want)
		}
	}
	if got := eu[0]["inferenceProfileArn"]; !strings.HasPrefix(got.(string), "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.") {
		t.Errorf("ARN %v", got)
	}
	if us := get("/inference-profiles"); !strings.HasPrefix(us[0]["inferenceProfileId"].(string), "us.") {
		t.Errorf("default region lists %v", us[0]["inferenceProfileId"])
	}
	if got := get("/inference-profiles?type=APPLICATION"); len(got) != 0 {
		t.Errorf("application profiles: %v", got)
	}
}

func TestStateAndReset(t *testing.T) {
	ts := newTestServer(t, oneRegion(tpm(1_000_000)))
	invoke(t, ts.url+"/model/"+sonnet4+"/invoke", invokeBody(100, "hi"), HeaderOutputTokens, "10")
	if ts.state(t).bucket(t, "us-east-1", "tpm").Used == 0 {
		t.Fatal("nothing used")
	}
	resp := post(t, ts.url+PathReset, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("reset: status %d", resp.StatusCode)
	}
	if got := ts.state(t).bucket(t, "us-east-1", "tpm"); got.Used != 0 || got.Available != 1_000_000 {
		t.Errorf("after reset: %+v", got)
	}
}
