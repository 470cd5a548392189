package bedrock

import "encoding/json"

// ReadCountTokens reads a CountTokens body ({"input":{"invokeModel":{"body":
// "<base64>"}}} or {"input":{"converse":{...}}}) and returns the estimated
// input tokens of the request it wraps (see EstimateTokens). The wrapped
// request is checked as ReadInvoke or ReadConverse checks it. Unknown members
// are ignored and, as in encoding/json, the last of duplicated members wins.
// Errors are ValidationException *Error.
func ReadCountTokens(body []byte) (int, error) {
	s := scanner{b: body}
	var in countInput
	if err := s.countTokens(&in); err != nil {
		return 0, malformed(err)
	}
	switch {
	case in.invoke.set == in.conv.set:
		return 0, Errorf(ValidationException, "Malformed input request: #/input: exactly one of [invokeModel, converse] must be set, please reformat your input and try again.")
	case in.conv.set:
		if body[in.conv.start] != '{' {
			return 0, invalid("input/converse", "expected type: JSONObject, found: %s", jsonType(in.conv.raw(body)))
		}
		r, err := ReadConverse(in.conv.raw(body))
		return r.InputTokens, err
	}
	if body[in.invoke.start] != '{' {
		return 0, invalid("input/invokeModel", "expected type: JSONObject, found: %s", jsonType(in.invoke.raw(body)))
	}
	if !in.body.set {
		return 0, invalid("input/invokeModel", "required key [body] not found")
	}
	raw := in.body.raw(body)
	if raw[0] != '"' {
		return 0, invalid("input/invokeModel/body", "expected type: String, found: %s", jsonType(raw))
	}
	var inner []byte // encoding/json decodes a string into []byte as standard base64
	if err := json.Unmarshal(raw, &inner); err != nil {
		return 0, invalid("input/invokeModel/body", "not valid base64")
	}
	r, err := ReadInvoke(inner)
	return r.InputTokens, err
}

// countInput holds the spans of input.invokeModel, input.invokeModel.body
// and input.converse.
type countInput struct {
	invoke, body, conv span
}

// countTokens validates a CountTokens body and finds the members of input.
// As in encoding/json, the last of duplicated members wins.
func (s *scanner) countTokens(in *countInput) error {
	m, isObject, err := s.open()
	if err != nil || !isObject {
		return err
	}
	for {
		key, ok, err := m.next()
		if err != nil {
			return err
		}
		if !ok {
			return s.end(m.i)
		}
		switch {
		case string(key) != "input":
			m.i, err = s.walk(m.i, m.depth, false)
		case s.isObject(m.i):
			*in = countInput{}
			m.i, err = s.countInput(in, m.i, m.depth)
		default:
			*in = countInput{}
			m.i, err = s.walk(m.i, m.depth, false)
		}
		if err != nil {
			return err
		}
	}
}

// countInput scans the input object at b[i].
func (s *scanner) countInput(in *countInput, i, depth int) (int, error) {
	m, err := s.openObject(i, depth)
	if err != nil {
		return 0, err
	}
	for {
		key, more, err := m.next()
		if err != nil || !more {
			return m.i, err
		}
		start := m.i
		switch {
		case string(key) == "invokeModel" && s.isObject(start):
			in.body = span{}
			m.i, err = s.invokeModel(in, start, m.depth)
		default:
			m.i, err = s.walk(start, m.depth, false)
		}
		if err != nil {
			return 0, err
		}
		switch string(key) {
		case "invokeModel":
			in.invoke = span{start: start, end: m.i, set: true}
		case "converse":
			in.conv = span{start: start, end: m.i, set: true}
		}
	}
}

// invokeModel scans the invokeModel object at b[i] for its body.
func (s *scanner) invokeModel(in *countInput, i, depth int) (int, error) {
	m, err := s.openObject(i, depth)
	if err != nil {
		return 0, err
	}
	for {
		key, start, end, more, err := m.nextValue()
		if err != nil || !more {
			return m.i, err
		}
		if string(key) == "body" {
			in.body = span{start: start, end: end, set: true}
		}
	}
}
