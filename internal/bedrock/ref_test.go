package bedrock

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// This file is a slow, obviously-correct model of the readers built on
// encoding/json. The table and fuzz tests compare the single-pass readers
// against it.

type refMember struct {
	key string
	raw json.RawMessage
}

// refMembers returns the members of the JSON object raw in order, with
// duplicates; ok is false when raw is not an object.
func refMembers(raw []byte) (ms []refMember, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		ms = append(ms, refMember{key: tok.(string), raw: v})
	}
	return ms, true
}

// refLookup returns the last value of key, how many times it occurs, and
// whether it is present.
func refLookup(ms []refMember, key string) (raw json.RawMessage, n int) {
	for _, m := range ms {
		if m.key == key {
			raw, n = m.raw, n+1
		}
	}
	return raw, n
}

func refIsNull(raw json.RawMessage) bool { return raw == nil || string(raw) == "null" }

// refInt parses an integer in [lo, hi] written without fraction or exponent.
func refInt(raw json.RawMessage, lo, hi int) (int, bool) {
	if len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return 0, false // json.Number would also take "100", a string
	}
	var num json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&num); err != nil || strings.ContainsAny(string(num), ".eE") {
		return 0, false
	}
	n, err := strconv.Atoi(string(num))
	if err != nil || n < lo || n > hi || num[0] == '-' {
		return 0, false
	}
	return n, true
}

// refRead is the model of ReadInvoke and ReadConverse (without InputTokens).
func refRead(body []byte, kind bodyKind) (Request, bool) {
	if !json.Valid(body) {
		return Request{}, false
	}
	top, ok := refMembers(body)
	if !ok {
		return Request{}, false
	}
	messages, n := refLookup(top, "messages")
	if n > 1 {
		return Request{}, false
	}
	var maxRaw, thinking json.RawMessage
	var effortOut string
	if kind == invokeBody {
		if n == 0 || messages[0] != '[' {
			return Request{}, false
		}
		var nm, nt int
		maxRaw, nm = refLookup(top, "max_tokens")
		thinking, nt = refLookup(top, "thinking")
		if nm > 1 || nt > 1 {
			return Request{}, false
		}
		if _, nv := refLookup(top, "anthropic_version"); nv > 1 {
			return Request{}, false
		}
		// output_config.effort, counted over every output_config object.
		var effort json.RawMessage
		ne := 0
		for _, m := range top {
			if m.key != "output_config" || len(m.raw) == 0 || m.raw[0] != '{' {
				continue
			}
			ms, _ := refMembers(m.raw)
			e, n := refLookup(ms, "effort")
			if n > 0 {
				effort = e
			}
			ne += n
		}
		if ne > 1 {
			return Request{}, false
		}
		if len(effort) > 0 && effort[0] == '"' {
			_ = json.Unmarshal(effort, &effortOut)
		}
	} else {
		inf, ni := refLookup(top, "inferenceConfig")
		add, na := refLookup(top, "additionalModelRequestFields")
		if ni > 1 || na > 1 {
			return Request{}, false
		}
		if !refIsNull(inf) {
			ms, ok := refMembers(inf)
			if !ok {
				return Request{}, false
			}
			var nm int
			if maxRaw, nm = refLookup(ms, "maxTokens"); nm > 1 {
				return Request{}, false
			}
		}
		if !refIsNull(add) {
			ms, ok := refMembers(add)
			if !ok {
				return Request{}, false
			}
			var nt int
			if thinking, nt = refLookup(ms, "thinking"); nt > 1 {
				return Request{}, false
			}
		}
	}
	r := Request{Effort: effortOut}
	if kind != converseBody {
		r.Last = refLastTurn(messages)
	}
	if !refIsNull(maxRaw) {
		if r.MaxTokens, ok = refInt(maxRaw, 1, MaxOutputLimit); !ok {
			return Request{}, false
		}
		r.HasMaxTokens = true
	}
	if refIsNull(thinking) {
		return r, true
	}
	ms, ok := refMembers(thinking)
	if !ok {
		return Request{}, false
	}
	typ, nt := refLookup(ms, "type")
	budget, nb := refLookup(ms, "budget_tokens")
	if nt != 1 || nb > 1 {
		return Request{}, false
	}
	var s string
	if err := json.Unmarshal(typ, &s); err != nil {
		return Request{}, false
	}
	switch s {
	case "enabled":
		b, ok := refInt(budget, MinThinkingBudget, MaxOutputLimit)
		if !ok || nb == 0 || r.HasMaxTokens && b >= r.MaxTokens {
			return Request{}, false
		}
		r.Thinking, r.ThinkingBudget = ThinkingEnabled, b
	case "adaptive":
		r.Thinking = ThinkingAdaptive
	}
	return r, true
}

// refLastTurn is the model of lastTurn: messages is a valid JSON array.
func refLastTurn(messages json.RawMessage) LastTurn {
	var lt LastTurn
	var all []json.RawMessage
	if json.Unmarshal(messages, &all) != nil || len(all) == 0 {
		return lt
	}
	ms, ok := refMembers(all[len(all)-1])
	if !ok {
		return lt
	}
	role, _ := refLookup(ms, "role")
	content, _ := refLookup(ms, "content")
	var r string
	if json.Unmarshal(role, &r) != nil || r != "user" || content == nil {
		return lt
	}
	recovery := func(raw json.RawMessage) bool {
		if len(raw) == 0 || raw[0] != '"' {
			return false
		}
		i := strings.Index(string(raw[1:]), RecoveryPrefix)
		return i >= 0 && i <= recoveryLead
	}
	if content[0] == '"' {
		lt.Recovery = recovery(content)
		return lt
	}
	var blocks []json.RawMessage
	if json.Unmarshal(content, &blocks) != nil {
		return lt
	}
	for _, raw := range blocks {
		bm, ok := refMembers(raw)
		if !ok {
			continue
		}
		typ, _ := refLookup(bm, "type")
		var t string
		if json.Unmarshal(typ, &t) != nil {
			continue
		}
		switch t {
		case "tool_result":
			id, _ := refLookup(bm, "tool_use_id")
			if len(id) > 0 && id[0] == '"' && lt.NToolResults < MaxToolResults {
				lt.ToolResults[lt.NToolResults] = ToolUseKeyString(string(id[1 : len(id)-1]))
				lt.NToolResults++
			}
		case "text":
			text, _ := refLookup(bm, "text")
			lt.Recovery = lt.Recovery || recovery(text)
		}
	}
	return lt
}

// refCountTokens is the model of ReadCountTokens.
func refCountTokens(body []byte) (int, bool) {
	if !json.Valid(body) {
		return 0, false
	}
	top, ok := refMembers(body)
	if !ok {
		return 0, false
	}
	input, _ := refLookup(top, "input")
	in, ok := refMembers(input)
	if !ok {
		return 0, false
	}
	inv, ni := refLookup(in, "invokeModel")
	conv, nc := refLookup(in, "converse")
	switch {
	case (ni > 0) == (nc > 0):
		return 0, false
	case nc > 0:
		if _, ok := refMembers(conv); !ok {
			return 0, false
		}
		r, err := ReadConverse(conv)
		return r.InputTokens, err == nil
	}
	ms, ok := refMembers(inv)
	if !ok {
		return 0, false
	}
	raw, nb := refLookup(ms, "body")
	var inner []byte
	if nb == 0 || raw[0] != '"' || json.Unmarshal(raw, &inner) != nil {
		return 0, false
	}
	r, err := ReadInvoke(inner)
	return r.InputTokens, err == nil
}

// refUsage is the model of the usage readers.
func refUsage(body []byte, names [4]string) (Usage, bool) {
	if !json.Valid(body) {
		return Usage{}, false
	}
	top, ok := refMembers(body)
	if !ok {
		return Usage{}, false
	}
	raw, _ := refLookup(top, "usage")
	ms, ok := refMembers(raw)
	if !ok {
		return Usage{}, false
	}
	var counts [4]int
	for k, name := range names {
		v, n := refLookup(ms, name)
		if n == 0 || refIsNull(v) {
			continue
		}
		if len(v) > 15 {
			return Usage{}, false
		}
		if counts[k], ok = refInt(v, 0, 1e15); !ok || v[0] == '-' {
			return Usage{}, false
		}
	}
	return Usage{InputTokens: counts[0], OutputTokens: counts[1], CacheReadInputTokens: counts[2], CacheWriteInputTokens: counts[3]}, true
}
