package bedrock

import (
	"encoding/json"
)

// ThinkingMode is the kind of extended thinking a request asks for.
type ThinkingMode int

const (
	ThinkingOff ThinkingMode = iota
	ThinkingEnabled
	ThinkingAdaptive
)

// Request is what admission needs from a request body: the output limit, the
// thinking budget and an estimate of the input tokens.
type Request struct {
	// MaxTokens is max_tokens (InvokeModel) or inferenceConfig.maxTokens
	// (Converse); 0 when HasMaxTokens is false.
	MaxTokens    int
	HasMaxTokens bool
	Thinking     ThinkingMode
	// ThinkingBudget is thinking.budget_tokens when Thinking is ThinkingEnabled.
	ThinkingBudget int
	// InputTokens is the estimated input tokens (see EstimateTokens).
	InputTokens int
}

// ReadInvoke reads the admission fields of an InvokeModel Anthropic body.
// Malformed bodies give a ValidationException *Error.
//
// TEMPORARY implementation by the lead: to be replaced by a single-pass reader.
func ReadInvoke(body []byte) (Request, error) {
	var v struct {
		MaxTokens *int `json:"max_tokens"`
		Thinking  *struct {
			Type   string `json:"type"`
			Budget int    `json:"budget_tokens"`
		} `json:"thinking"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return Request{}, Errorf(ValidationException, "Malformed input request: %v", err)
	}
	var r Request
	if v.MaxTokens != nil {
		r.MaxTokens, r.HasMaxTokens = *v.MaxTokens, true
	}
	if v.Thinking != nil {
		switch v.Thinking.Type {
		case "enabled":
			r.Thinking, r.ThinkingBudget = ThinkingEnabled, v.Thinking.Budget
		case "adaptive":
			r.Thinking = ThinkingAdaptive
		}
	}
	r.InputTokens = len(body) / 4
	return r, nil
}

// ReadConverse reads the admission fields of a Converse body.
//
// TEMPORARY implementation by the lead: to be replaced by a single-pass reader.
func ReadConverse(body []byte) (Request, error) {
	var v struct {
		InferenceConfig *struct {
			MaxTokens *int `json:"maxTokens"`
		} `json:"inferenceConfig"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return Request{}, Errorf(ValidationException, "Malformed input request: %v", err)
	}
	var r Request
	if v.InferenceConfig != nil && v.InferenceConfig.MaxTokens != nil {
		r.MaxTokens, r.HasMaxTokens = *v.InferenceConfig.MaxTokens, true
	}
	r.InputTokens = len(body) / 4
	return r, nil
}

// RewriteInvoke returns body with max_tokens set to maxTokens and, when the
// request uses enabled thinking, thinking.budget_tokens set to budget. Every
// other byte keeps its meaning.
//
// TEMPORARY implementation by the lead: to be replaced by a byte splice.
func RewriteInvoke(body []byte, maxTokens, budget int) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, Errorf(ValidationException, "Malformed input request: %v", err)
	}
	m["max_tokens"], _ = json.Marshal(maxTokens)
	return json.Marshal(m)
}

// RewriteConverse sets inferenceConfig.maxTokens (and the thinking budget in
// additionalModelRequestFields, when present).
//
// TEMPORARY implementation by the lead.
func RewriteConverse(body []byte, maxTokens, budget int) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, Errorf(ValidationException, "Malformed input request: %v", err)
	}
	var ic map[string]json.RawMessage
	_ = json.Unmarshal(m["inferenceConfig"], &ic)
	if ic == nil {
		ic = map[string]json.RawMessage{}
	}
	ic["maxTokens"], _ = json.Marshal(maxTokens)
	m["inferenceConfig"], _ = json.Marshal(ic)
	return json.Marshal(m)
}

// ReadCountTokens reads a CountTokens body ({"input":{"invokeModel":{"body":
// "<base64>"}}} or {"input":{"converse":{...}}}) and returns the estimated
// input tokens.
//
// TEMPORARY implementation by the lead.
func ReadCountTokens(body []byte) (int, error) {
	var v struct {
		Input struct {
			InvokeModel *struct {
				Body []byte `json:"body"`
			} `json:"invokeModel"`
			Converse json.RawMessage `json:"converse"`
		} `json:"input"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return 0, Errorf(ValidationException, "Malformed input request: %v", err)
	}
	switch {
	case v.Input.InvokeModel != nil:
		r, err := ReadInvoke(v.Input.InvokeModel.Body)
		return r.InputTokens, err
	case v.Input.Converse != nil:
		r, err := ReadConverse(v.Input.Converse)
		return r.InputTokens, err
	}
	return 0, Errorf(ValidationException, "input must contain invokeModel or converse")
}

// ReadInvokeUsage reads usage from a non-streaming InvokeModel response body.
//
// TEMPORARY implementation by the lead.
func ReadInvokeUsage(body []byte) (Usage, error) {
	var v struct {
		Usage Usage `json:"usage"`
	}
	err := json.Unmarshal(body, &v)
	return v.Usage, err
}

// ReadConverseUsage reads usage from a non-streaming Converse response body.
//
// TEMPORARY implementation by the lead.
func ReadConverseUsage(body []byte) (Usage, error) {
	var v struct {
		Usage struct {
			InputTokens           int `json:"inputTokens"`
			OutputTokens          int `json:"outputTokens"`
			CacheReadInputTokens  int `json:"cacheReadInputTokens"`
			CacheWriteInputTokens int `json:"cacheWriteInputTokens"`
		} `json:"usage"`
	}
	err := json.Unmarshal(body, &v)
	u := v.Usage
	return Usage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CacheReadInputTokens: u.CacheReadInputTokens, CacheWriteInputTokens: u.CacheWriteInputTokens}, err
}
