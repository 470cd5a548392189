package bedrock

import "bytes"

// lastTurn reads what the output policy needs from the last message of an
// Anthropic body, msg (already validated by the scan that found it): when
// its role is "user", the tool_use_id of each tool_result block and
// whether a text begins with RecoveryPrefix. Only this one message is
// scanned again, once: Claude Code's last message is its prompt, a
// recovery turn or tool results, a small part of an 86 KB body (5 KB of
// the benchmark's), and its values are skipped without validating them
// again (skipValid), at memchr speed.
func lastTurn(b []byte, msg span) LastTurn {
	s := scanner{b: b}
	if !s.isObject(msg.start) {
		return LastTurn{}
	}
	// The depths passed below are at most the true ones, so a value the
	// first scan accepted is accepted again.
	m, err := s.openObject(msg.start, 1)
	if err != nil {
		return LastTurn{}
	}
	// A member named twice counts as its last, as encoding/json reads it;
	// content is read where it is, and kept only if the role is "user".
	var lt LastTurn
	user := false
	for {
		key, ok, err := m.next()
		if err != nil || !ok {
			break
		}
		start := m.i
		switch string(key) {
		case "role":
			m.i = skipValid(b, start)
			user = stringIs(b[start:m.i], "user")
		case "content":
			lt = LastTurn{}
			m.i, err = s.content(start, m.depth, &lt)
		default:
			m.i = skipValid(b, start)
		}
		if err != nil {
			return LastTurn{}
		}
	}
	if !user {
		return LastTurn{}
	}
	return lt
}

// content reads a message's content at b[i]: a string (a recovery turn?)
// or an array of blocks. It returns the index past it.
func (s *scanner) content(i, depth int, lt *LastTurn) (int, error) {
	b := s.b
	if i >= len(b) || b[i] != '[' {
		end := skipValid(b, i)
		if b[i] == '"' {
			lt.Recovery = isRecovery(b[i:end])
		}
		return end, nil
	}
	depth++
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if s.isObject(i) {
			i, err = s.block(i, depth, lt)
		} else {
			i = skipValid(b, i)
		}
		if err != nil {
			return 0, err
		}
		i = skipWS(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
			continue
		}
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		return 0, syntaxErr(b, i, "after array element")
	}
}

// block reads one content block at b[i]: a tool_result's tool_use_id, or
// a text. It returns the index past it.
func (s *scanner) block(i, depth int, lt *LastTurn) (int, error) {
	m, err := s.openObject(i, depth)
	if err != nil {
		return 0, err
	}
	var typ, id, text span
	for {
		key, ok, err := m.next()
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		start := m.i
		m.i = skipValid(s.b, start)
		sp := span{start: start, end: m.i, set: true}
		switch string(key) {
		case "type":
			typ = sp
		case "tool_use_id":
			id = sp
		case "text":
			text = sp
		}
	}
	if !typ.set {
		return m.i, nil
	}
	switch t := typ.raw(s.b); {
	case stringIs(t, "tool_result"):
		raw := id.raw(s.b)
		if id.set && len(raw) >= 2 && raw[0] == '"' && lt.NToolResults < MaxToolResults {
			lt.ToolResults[lt.NToolResults] = ToolUseKey(raw[1 : len(raw)-1])
			lt.NToolResults++
		}
	case stringIs(t, "text"):
		if text.set && isRecovery(text.raw(s.b)) {
			lt.Recovery = true
		}
	}
	return m.i, nil
}

// isRecovery reports whether the JSON string raw begins with
// RecoveryPrefix, byte for byte, after at most recoveryLead bytes:
// Claude Code 2.1.332 wraps it as "<system-reminder>\nOutput token limit
// hit. ..." (2.1.197 sent it bare). It does not escape the prefix; an
// escaped spelling is not recognised.
func isRecovery(raw []byte) bool {
	if len(raw) < 2 || raw[0] != '"' {
		return false
	}
	head := raw[1:min(len(raw), 1+recoveryLead+len(RecoveryPrefix))]
	return bytes.Contains(head, []byte(RecoveryPrefix))
}

// recoveryLead is how far into a text the recovery prefix may start:
// room for a wrapper such as <system-reminder> and an escaped newline.
const recoveryLead = 32

// skipValid returns the index just past the JSON value at b[i], which a
// scan has already validated: it only matches brackets and finds the ends
// of strings with bytes.IndexByte, and must never see unvalidated input.
func skipValid(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipValidString(b, i)
	case '{', '[':
		depth := 0
		for {
			switch b[i] {
			case '"':
				i = skipValidString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// skipValidString returns the index past the valid JSON string at b[i]:
// the first quote not escaped by an odd run of backslashes.
func skipValidString(b []byte, i int) int {
	i++
	for {
		i += bytes.IndexByte(b[i:], '"')
		n := 0
		for b[i-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return i + 1
		}
		i++
	}
}
