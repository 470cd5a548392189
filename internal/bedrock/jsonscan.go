package bedrock

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// This file is a small JSON scanner for the request path. It validates a
// whole document exactly as json.Valid does (same grammar, same nesting
// limit, no UTF-8 check inside strings) in one pass, without building values,
// and lets the readers in request.go pick out the few members they need by
// their byte spans. Nothing here allocates unless the input is malformed.

// maxDepth is encoding/json's nesting limit, so the scanner accepts exactly
// the documents json.Valid accepts.
const maxDepth = 10000

// syntaxError is a JSON syntax error at byte offset off.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at offset %d", e.msg, e.off) }

func syntaxErr(b []byte, i int, what string) error {
	if i >= len(b) {
		return &syntaxError{off: len(b), msg: "unexpected end of JSON input"}
	}
	return &syntaxError{off: i, msg: fmt.Sprintf("invalid character %q %s", b[i], what)}
}

// scanner walks one document. tokens accumulates the input-token estimate of
// the values walked with count set (see estimate.go).
type scanner struct {
	b      []byte
	tokens int
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// SWAR constants: one byte repeated in every lane.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// stringStop marks (in the high bit of each byte lane) the bytes of x that
// end a run of plain string content: '"', '\\' and control characters. The
// lowest marked lane is always a true match; lanes above it may be false
// positives, which is all scanString needs.
//
// Two tests instead of three: x ^ 0x02 maps '"' (0x22) to 0x20 and the
// control characters 0x00-0x1f onto themselves, and every other byte to
// 0x21 or above, so "below 0x21 after the xor" is "a quote or a control
// character"; the backslash has its own test.
func stringStop(x uint64) uint64 {
	y := x ^ (lanes01 * 0x02)
	bs := x ^ (lanes01 * '\\')
	return ((y-lanes01*0x21)&^y | (bs-lanes01)&^bs) & lanes80
}

// scanString reads the string whose opening quote is at b[i]. It returns the
// index just past the closing quote and whether the string contains escapes.
func scanString(b []byte, i int) (end int, esc bool, err error) {
	end, esc, _, err = scanStringHi(b, i, 0)
	return end, esc, err
}

// scanStringHi is scanString that also stops at the bytes of b whose lanes
// are set in hiMask: with lanes80 (every byte >= 0x80) hi reports whether
// the string holds such a byte; with 0 hi means nothing.
func scanStringHi(b []byte, i int, hiMask uint64) (end int, esc, hi bool, err error) {
	i++
	for {
		// Skip plain content eight bytes at a time.
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			if m := stringStop(x) | x&hiMask; m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			return 0, false, false, syntaxErr(b, i, "")
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, esc, hi, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return 0, false, false, syntaxErr(b, i+1, "")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(b) {
						return 0, false, false, syntaxErr(b, k, "")
					}
					if !isHex(b[k]) {
						return 0, false, false, syntaxErr(b, k, "in \\u hexadecimal character escape")
					}
				}
				i += 6
			default:
				return 0, false, false, syntaxErr(b, i+1, "in string escape code")
			}
		case c < 0x20:
			return 0, false, false, syntaxErr(b, i, "in string literal")
		default:
			hi = hi || c >= 0x80
			i++
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanNumber reads the number starting at b[i] with JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, syntaxErr(b, i, "")
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i++
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return 0, syntaxErr(b, i, "in numeric literal")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return 0, syntaxErr(b, i, "after decimal point in numeric literal")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return 0, syntaxErr(b, i, "in exponent of numeric literal")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, nil
}

func scanLiteral(b []byte, i int, lit string) (int, error) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(b) || b[i+k] != lit[k] {
			return 0, syntaxErr(b, i+k, "in literal "+lit)
		}
	}
	return i + len(lit), nil
}

// walk validates the value starting at b[i] and returns the index just past
// it. With count set it adds the value's estimated tokens to s.tokens.
// depth is the number of arrays and objects enclosing the value.
func (s *scanner) walk(i, depth int, count bool) (int, error) {
	b := s.b
	if i >= len(b) {
		return 0, syntaxErr(b, i, "")
	}
	switch c := b[i]; c {
	case '"':
		end, _, err := scanString(b, i)
		if count {
			s.tokens += textTokens(end - i - 2)
		}
		return end, err
	case '{':
		return s.object(i, depth, count)
	case '[':
		return s.array(i, depth, count, nil)
	case 't':
		s.countScalar(count)
		return scanLiteral(b, i, "true")
	case 'f':
		s.countScalar(count)
		return scanLiteral(b, i, "false")
	case 'n':
		s.countScalar(count)
		return scanLiteral(b, i, "null")
	default:
		if c == '-' || isDigit(c) {
			s.countScalar(count)
			return scanNumber(b, i)
		}
		return 0, syntaxErr(b, i, "looking for beginning of value")
	}
}

func (s *scanner) countScalar(count bool) {
	if count {
		s.tokens += scalarTokens
	}
}

// array validates the array at b[i] (b[i] == '['); when last is not nil it
// also records there the span of the array's last element.
func (s *scanner) array(i, depth int, count bool, last *span) (int, error) {
	depth++
	if depth > maxDepth {
		return 0, &syntaxError{off: i, msg: "exceeded max depth"}
	}
	b := s.b
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		start := i
		var err error
		if i, err = s.walk(i, depth, count); err != nil {
			return 0, err
		}
		if last != nil {
			*last = span{start: start, end: i, set: true}
		}
		i = skipWS(b, i)
		if i < len(b) {
			switch b[i] {
			case ',':
				i = skipWS(b, i+1)
				continue
			case ']':
				return i + 1, nil
			}
		}
		return 0, syntaxErr(b, i, "after array element")
	}
}

func (s *scanner) object(i, depth int, count bool) (int, error) {
	depth++
	if depth > maxDepth {
		return 0, &syntaxError{off: i, msg: "exceeded max depth"}
	}
	b := s.b
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	// base64 is set once this object said "type":"base64": its "data" is
	// then an encoded image or document, estimated by binaryTokens.
	base64 := false
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, syntaxErr(b, i, "looking for beginning of object key string")
		}
		ks := i
		ke, kesc, err := scanString(b, i)
		if err != nil {
			return 0, err
		}
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return 0, syntaxErr(b, i, "after object key")
		}
		i = skipWS(b, i+1)
		if count && i < len(b) && b[i] == '"' {
			ve, _, err := scanString(b, i)
			if err != nil {
				return 0, err
			}
			key, n := b[ks+1:ke-1], ve-i-2
			switch {
			case !kesc && (string(key) == "bytes" || base64 && string(key) == "data"):
				s.tokens += textTokens(len(key)) + binaryTokens(n)
			default:
				if !kesc && string(key) == "type" && string(b[i+1:ve-1]) == "base64" {
					base64 = true
				}
				s.tokens += textTokens(len(key)) + textTokens(n)
			}
			i = ve
		} else {
			if count {
				s.tokens += textTokens(ke - ks - 2)
			}
			if i, err = s.walk(i, depth, count); err != nil {
				return 0, err
			}
		}
		i = skipWS(b, i)
		if i < len(b) {
			switch b[i] {
			case ',':
				i = skipWS(b, i+1)
				continue
			case '}':
				return i + 1, nil
			}
		}
		return 0, syntaxErr(b, i, "after object key:value pair")
	}
}

// members iterates over the members of one object for the readers that
// look for particular keys. After next returns a key, i is the start of its
// value; the caller scans the value and stores the index past it in i.
type members struct {
	s     *scanner
	i     int
	depth int // depth of the values
	first bool
	name  [32]byte // a key with escapes, decoded
}

// openObject starts iterating over the object at b[i] (b[i] == '{'), which
// has depth enclosing containers.
func (s *scanner) openObject(i, depth int) (members, error) {
	if depth+1 > maxDepth {
		return members{}, &syntaxError{off: i, msg: "exceeded max depth"}
	}
	return members{s: s, i: i + 1, depth: depth + 1, first: true}, nil
}

// next returns the next member's key, decoded when it has escapes (nil
// when it cannot be one of the ASCII names the readers look for). ok is
// false after the closing brace, with m.i just past it.
func (m *members) next() (key []byte, ok bool, err error) {
	b := m.s.b
	i := skipWS(b, m.i)
	if i < len(b) && b[i] == '}' {
		m.i = i + 1
		return nil, false, nil
	}
	if !m.first {
		if i >= len(b) || b[i] != ',' {
			return nil, false, syntaxErr(b, i, "after object key:value pair")
		}
		i = skipWS(b, i+1)
	}
	m.first = false
	if i >= len(b) || b[i] != '"' {
		return nil, false, syntaxErr(b, i, "looking for beginning of object key string")
	}
	ke, esc, err := scanString(b, i)
	if err != nil {
		return nil, false, err
	}
	key = b[i+1 : ke-1]
	if esc {
		key = unescapeASCII(key, m.name[:0])
	}
	i = skipWS(b, ke)
	if i >= len(b) || b[i] != ':' {
		return nil, false, syntaxErr(b, i, "after object key")
	}
	m.i = skipWS(b, i+1)
	return key, true, nil
}

// nextValue is next followed by skipping (and validating) the member's
// value, whose span b[start:end] it returns, for readers that only record
// where a value is.
func (m *members) nextValue() (key []byte, start, end int, ok bool, err error) {
	if key, ok, err = m.next(); err != nil || !ok {
		return nil, 0, 0, ok, err
	}
	start = m.i
	if m.i, err = m.s.walk(m.i, m.depth, false); err != nil {
		return nil, 0, 0, false, err
	}
	return key, start, m.i, true, nil
}

// unescapeASCII decodes the escapes of a valid JSON string body into dst
// (without growing it). It returns nil when the result does not fit or is
// not plain ASCII: such a string cannot equal any name the readers match.
func unescapeASCII(raw, dst []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' {
			i++
			switch raw[i] {
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'u':
				var r rune
				for _, h := range raw[i+1 : i+5] {
					r = r<<4 | rune(hexVal(h))
				}
				if r >= 0x80 {
					return nil
				}
				c = byte(r)
				i += 4
			default: // '"', '\\', '/'
				c = raw[i]
			}
		}
		if c >= 0x80 || len(dst) == cap(dst) {
			return nil
		}
		dst = append(dst, c)
	}
	return dst
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// stringIs reports whether the JSON value raw is a string equal to lit,
// decoding escapes.
func stringIs(raw []byte, lit string) bool {
	if len(raw) < 2 || raw[0] != '"' {
		return false
	}
	body := raw[1 : len(raw)-1]
	if string(body) == lit {
		return true
	}
	var buf [32]byte
	dec := unescapeASCII(body, buf[:0])
	return dec != nil && string(dec) == lit
}

// jsonType names the type of the JSON value raw, for error messages.
func jsonType(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "String"
	case '{':
		return "JSONObject"
	case '[':
		return "JSONArray"
	case 't', 'f':
		return "Boolean"
	case 'n':
		return "Null"
	}
	return "Number"
}

// open starts scanning the document. When its top-level value is an object
// it returns an iterator over the members (isObject true), and the caller
// finishes with s.end(m.i); any other value it validates to the end.
func (s *scanner) open() (m members, isObject bool, err error) {
	i := skipWS(s.b, 0)
	if i < len(s.b) && s.b[i] == '{' {
		m, err = s.openObject(i, 0)
		return m, true, err
	}
	if i, err = s.walk(i, 0, false); err != nil {
		return members{}, false, err
	}
	return members{}, false, s.end(i)
}

// end checks that nothing but whitespace follows the top-level value,
// which ends at i.
func (s *scanner) end(i int) error {
	if i = skipWS(s.b, i); i != len(s.b) {
		return syntaxErr(s.b, i, "after top-level value")
	}
	return nil
}

// isObject reports whether the value at b[i] is an object.
func (s *scanner) isObject(i int) bool { return i < len(s.b) && s.b[i] == '{' }

// The functions below lend the scanner to the stream-chunk reader in
// package eventstream, so that one piece of code holds JSON's grammar.

// SkipJSON validates the JSON value starting at b[i] (no whitespace before
// it), enclosed in depth arrays and objects, exactly as json.Valid would
// (same grammar, nesting limit MaxJSONDepth, no UTF-8 check), and returns
// the index just past it. It allocates only for the error.
func SkipJSON(b []byte, i, depth int) (int, error) {
	s := scanner{b: b}
	return s.walk(i, depth, false)
}

// MaxJSONDepth is encoding/json's nesting limit, which SkipJSON enforces.
const MaxJSONDepth = maxDepth

// ScanJSONString reads the JSON string whose opening quote is at b[i]. It
// returns the index just past the closing quote, whether the string holds
// escapes (esc) and whether it holds bytes >= 0x80 (hi).
func ScanJSONString(b []byte, i int) (end int, esc, hi bool, err error) {
	return scanStringHi(b, i, lanes80)
}

// JSONStringStop is stringStop: it marks, in the high bit of each byte lane
// of x (eight bytes read little-endian), the bytes that end a run of plain
// JSON string content ('"', '\\' and control characters); the lowest marked
// lane is always a true match.
func JSONStringStop(x uint64) uint64 { return stringStop(x) }
