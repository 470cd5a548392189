package emulator

import (
	"encoding/json"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// messagesFields is what the Messages API paths read of a body beyond what
// bedrock.ReadInvoke reads (the same body, with the model and stream
// members that InvokeModel takes from its path instead).
type messagesFields struct {
	model      string // "model": a string, required
	stream     bool   // "stream": true
	structured bool   // "output_config.format" is set (structured outputs)
}

// errMessagesBody is a body whose model, stream or output_config member has
// the wrong type; the message is the client's.
type errMessagesBody struct{ msg string }

func (e *errMessagesBody) Error() string { return e.msg }

// readMessagesFields reads model, stream and output_config.format from the
// top level of body, a JSON object. It walks each member once with the
// bedrock scanner rather than decoding the whole body (Claude Code's are
// 50-90 KB), and decodes only the model string. A syntax error or a member
// of the wrong type is an error; the first of duplicated members wins, as
// bedrock.ReadInvoke refuses duplicated admission members anyway.
func readMessagesFields(body []byte) (messagesFields, error) {
	var f messagesFields
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return f, &errMessagesBody{"the body is not a JSON object"}
	}
	var seenModel, seenStream, seenOutput bool
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		if skipSpace(body, i+1) != len(body) {
			return f, &errMessagesBody{"malformed JSON: data after the object"}
		}
		return f, &errMessagesBody{"model: Field required"}
	}
	for {
		if i >= len(body) || body[i] != '"' {
			return f, &errMessagesBody{"malformed JSON: expected a member name"}
		}
		end, esc, _, err := bedrock.ScanJSONString(body, i)
		if err != nil {
			return f, err
		}
		key := body[i+1 : end-1]
		if esc {
			// A name written with escapes ("mod\u0065l") is still that name.
			var s string
			if err := json.Unmarshal(body[i:end], &s); err != nil {
				return f, err
			}
			key = []byte(s)
		}
		i = skipSpace(body, end)
		if i >= len(body) || body[i] != ':' {
			return f, &errMessagesBody{"malformed JSON: expected ':'"}
		}
		i = skipSpace(body, i+1)
		start := i
		if i, err = bedrock.SkipJSON(body, i, 1); err != nil {
			return f, err
		}
		v := body[start:i]
		switch string(key) {
		case "model":
			if seenModel {
				break
			}
			seenModel = true
			if v[0] != '"' || json.Unmarshal(v, &f.model) != nil {
				return f, &errMessagesBody{"model: Input should be a valid string"}
			}
		case "stream":
			if seenStream {
				break
			}
			seenStream = true
			switch v[0] {
			case 't':
				f.stream = true
			case 'f', 'n':
			default:
				return f, &errMessagesBody{"stream: Input should be a valid boolean"}
			}
		case "output_config":
			if seenOutput {
				break
			}
			seenOutput = true
			if f.structured, err = hasFormat(v); err != nil {
				return f, err
			}
		}
		i = skipSpace(body, i)
		if i < len(body) && body[i] == ',' {
			i = skipSpace(body, i+1)
			continue
		}
		if i < len(body) && body[i] == '}' {
			break
		}
		return f, &errMessagesBody{"malformed JSON: expected ',' or '}'"}
	}
	if skipSpace(body, i+1) != len(body) {
		return f, &errMessagesBody{"malformed JSON: data after the object"}
	}
	if !seenModel {
		return f, &errMessagesBody{"model: Field required"}
	}
	return f, nil
}

// hasFormat reports whether the output_config value v (valid JSON) holds a
// non-null "format" member.
func hasFormat(v []byte) (bool, error) {
	switch v[0] {
	case 'n':
		return false, nil
	case '{':
	default:
		return false, &errMessagesBody{"output_config: Input should be a valid object"}
	}
	// output_config is small ({"effort": ...}); a full decode is cheap.
	var oc map[string]json.RawMessage
	if err := json.Unmarshal(v, &oc); err != nil {
		return false, err
	}
	format, ok := oc["format"]
	return ok && string(format) != "null", nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
