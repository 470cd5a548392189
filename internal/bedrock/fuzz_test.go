package bedrock

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/headroomhq/headroom/internal/bedrock/bedrocktest"
)

// The fuzz tests compare the single-pass readers with the encoding/json
// model in ref_test.go. `go test` runs their seeds; for a longer run:
//
//	go test ./internal/bedrock -run '^$' -fuzz FuzzReadInvoke -fuzztime 10m
//
// (one -fuzz target at a time).

func addSeeds(f *testing.F, cases []readCase) {
	for _, tt := range cases {
		f.Add([]byte(tt.body))
	}
	for _, doc := range validityCases {
		f.Add([]byte(doc))
	}
	f.Add(bedrocktest.ClaudeCodeBody(4000, 4096))
}

func fuzzRead(t *testing.T, body []byte, kind bodyKind, read func([]byte) (Request, error)) {
	// Syntax: exactly what json.Valid accepts.
	if _, err := scanRequest(body, kind); (err == nil) != json.Valid(body) {
		t.Fatalf("scan error %v, json.Valid = %v", err, json.Valid(body))
	}
	got, err := read(body)
	want, ok := refRead(body, kind)
	if (err == nil) != ok {
		t.Fatalf("error = %v, encoding/json model ok = %v (model %+v)", err, ok, want)
	}
	if err != nil {
		if be, isBE := err.(*Error); !isBE || be.Name != ValidationException {
			t.Fatalf("error %v is not a ValidationException *Error", err)
		}
		return
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Request{}, "InputTokens")); diff != "" {
		t.Fatalf("differs from the encoding/json model (-model +got):\n%s", diff)
	}
	if got.InputTokens < 0 || got.InputTokens != EstimateTokens(body) || got.InputTokens > len(body) {
		t.Fatalf("InputTokens = %d, EstimateTokens = %d, body %d bytes", got.InputTokens, EstimateTokens(body), len(body))
	}
}

func FuzzReadInvoke(f *testing.F) {
	addSeeds(f, invokeCases)
	for _, tt := range lastTurnCases {
		f.Add([]byte(tt.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) { fuzzRead(t, body, invokeBody, ReadInvoke) })
}

func FuzzReadConverse(f *testing.F) {
	addSeeds(f, converseCases)
	f.Fuzz(func(t *testing.T, body []byte) { fuzzRead(t, body, converseBody, ReadConverse) })
}

func fuzzRewrite(t *testing.T, body []byte, maxTokens, budget int, kind bodyKind) {
	read, rewrite := ReadInvoke, RewriteInvoke
	if kind == converseBody {
		read, rewrite = ReadConverse, RewriteConverse
	}
	r, err := read(body)
	out, rerr := rewrite(body, maxTokens, budget)
	if err != nil {
		if rerr == nil {
			t.Fatalf("rewrite accepted a body the reader refuses (%v)", err)
		}
		return
	}
	newBudget := r.ThinkingBudget
	if budget > 0 {
		newBudget = budget
	}
	wantOK := maxTokens >= 1 && maxTokens <= MaxOutputLimit &&
		(r.Thinking != ThinkingEnabled || newBudget >= MinThinkingBudget && newBudget < maxTokens)
	if (rerr == nil) != wantOK {
		t.Fatalf("rewrite(max %d, budget %d) of %+v: error %v, want ok = %v", maxTokens, budget, r, rerr, wantOK)
	}
	if rerr == nil {
		checkRewrite(t, kind, body, out, maxTokens, budget)
	}
}

func FuzzRewriteInvoke(f *testing.F) {
	for _, tt := range rewriteInvokeCases {
		f.Add([]byte(tt.body), tt.maxTokens, tt.budget)
	}
	for _, tt := range invokeCases {
		f.Add([]byte(tt.body), 8192, 4096)
	}
	f.Add(bedrocktest.ClaudeCodeBody(4000, 32000), 4096, 4095)
	f.Fuzz(func(t *testing.T, body []byte, maxTokens, budget int) {
		fuzzRewrite(t, body, maxTokens, budget, invokeBody)
	})
}

func FuzzRewriteConverse(f *testing.F) {
	for _, tt := range rewriteConverseCases {
		f.Add([]byte(tt.body), tt.maxTokens, tt.budget)
	}
	for _, tt := range converseCases {
		f.Add([]byte(tt.body), 8192, 4096)
	}
	f.Fuzz(func(t *testing.T, body []byte, maxTokens, budget int) {
		fuzzRewrite(t, body, maxTokens, budget, converseBody)
	})
}

func FuzzReadCountTokens(f *testing.F) {
	for _, tt := range invokeCases {
		f.Add([]byte(`{"input":{"invokeModel":{"body":"` + base64.StdEncoding.EncodeToString([]byte(tt.body)) + `"}}}`))
	}
	for _, tt := range converseCases {
		f.Add([]byte(`{"input":{"converse":` + tt.body + `}}`))
	}
	for _, s := range []string{`{}`, `{"input":{}}`, `{"input":{"invokeModel":{}}}`, `{"input":{"invokeModel":{"body":"!"}}}`,
		`{"input":{"converse":{}},"input":{"invokeModel":{"body":""}}}`, `{"input":{"invokeModel":{"body":"e30="},"converse":null}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := ReadCountTokens(body)
		want, ok := refCountTokens(body)
		if (err == nil) != ok {
			t.Fatalf("error = %v, encoding/json model ok = %v", err, ok)
		}
		if err != nil {
			if be, isBE := err.(*Error); !isBE || be.Name != ValidationException {
				t.Fatalf("error %v is not a ValidationException *Error", err)
			}
			return
		}
		if got != want {
			t.Fatalf("ReadCountTokens = %d, model = %d", got, want)
		}
	})
}

func FuzzReadUsage(f *testing.F) {
	for _, s := range []string{
		`{"usage":{"input_tokens":3000,"cache_creation_input_tokens":1000,"cache_read_input_tokens":4000,"output_tokens":1000,"cache_creation":{"ephemeral_5m_input_tokens":1}}}`,
		`{"usage":{"inputTokens":30,"outputTokens":10,"totalTokens":40,"cacheReadInputTokens":5,"cacheWriteInputTokens":2}}`,
		`{"usage":{"input_tokens":null,"output_tokens":-1}}`, `{"usage":{"output_tokens":1.5}}`, `{"usage":1}`,
		`{"usage":{"input_tokens":1},"usage":{"output_tokens":2}}`, `[]`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, c := range []struct {
			names [4]string
			read  func([]byte) (Usage, error)
		}{{invokeUsageNames, ReadInvokeUsage}, {converseUsageNames, ReadConverseUsage}} {
			got, err := c.read(body)
			want, ok := refUsage(body, c.names)
			if (err == nil) != ok {
				t.Fatalf("%v: error = %v, encoding/json model ok = %v", c.names, err, ok)
			}
			if diff := cmp.Diff(want, got); ok && diff != "" {
				t.Fatalf("%v (-model +got):\n%s", c.names, diff)
			}
		}
	})
}
