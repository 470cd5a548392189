package eventstream

import (
	"bytes"
	"errors"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// This file reads the few members metering needs out of a small JSON
// document exactly as json.Unmarshal would read them into a struct, without
// building anything: the same grammar and nesting limit (a document
// json.Unmarshal refuses is refused), member names matched as encoding/json
// matches them (escapes decoded, then case-insensitively, bytes.EqualFold),
// strings measured as encoding/json decodes them (escapes, invalid UTF-8
// replaced by U+FFFD), integers parsed as strconv.ParseInt parses them, and
// a value of the wrong JSON type refused. FuzzChunkFast holds it to
// json.Unmarshal. The grammar itself (strings, numbers, literals, skipping
// a value) is package bedrock's request scanner, through SkipJSON and
// ScanJSONString, so one piece of code holds it.

// errJSON is every refusal of the reader: what went wrong does not matter
// to a meter, which skips an event it cannot read.
var errJSON = errors.New("eventstream: malformed or mistyped JSON")

// jsonString is a string value or key: its raw bytes between the quotes,
// whether they hold escapes, and whether they hold bytes >= 0x80.
type jsonString struct {
	raw     []byte
	esc, hi bool
}

// plain reports whether the decoded string is raw itself.
func (s jsonString) plain() bool { return !s.esc && (!s.hi || utf8.Valid(s.raw)) }

// decodedLen is the length of the string as encoding/json decodes it.
func (s jsonString) decodedLen() int {
	if s.plain() {
		return len(s.raw)
	}
	return unquotedLen(s.raw)
}

// decoded is the string as encoding/json decodes it; it copies only when
// that differs from the raw bytes.
func (s jsonString) decoded() []byte {
	if s.plain() {
		return s.raw
	}
	return unquoteAppend(nil, s.raw)
}

// is reports whether the key s names the member name as encoding/json
// matches keys to struct fields; name is ASCII.
func (s jsonString) is(name string) bool {
	if !s.esc && !s.hi {
		return len(s.raw) == len(name) && bytes.EqualFold(s.raw, []byte(name))
	}
	// A name matches through bytes.EqualFold's folds at most 3 bytes per
	// ASCII letter (U+212A KELVIN SIGN folds to k).
	var buf [3 * 40]byte
	d := s.raw
	if s.esc {
		if len(s.raw) > 6*len(buf) {
			return false
		}
		d = unquoteAppend(buf[:0], s.raw)
	}
	return len(d) <= 3*len(name) && bytes.EqualFold(d, []byte(name))
}

// unquoteAppend appends the string body raw (already validated) to dst
// decoded as encoding/json's unquote decodes it.
func unquoteAppend(dst, raw []byte) []byte {
	for r := 0; r < len(raw); {
		rr, size, verbatim := unquoteNext(raw[r:])
		if verbatim {
			dst = append(dst, raw[r:r+size]...)
		} else {
			dst = utf8.AppendRune(dst, rr)
		}
		r += size
	}
	return dst
}

// unquotedLen is len(unquoteAppend(nil, raw)), without building it.
func unquotedLen(raw []byte) int {
	n := 0
	for r := 0; r < len(raw); {
		rr, size, verbatim := unquoteNext(raw[r:])
		if verbatim {
			n += size
		} else {
			n += utf8.RuneLen(rr)
		}
		r += size
	}
	return n
}

// unquoteNext decodes the first character of the string body s: an escape,
// an ASCII byte, or a UTF-8 sequence. It returns the rune and the bytes of s
// it took; verbatim means the decoded form is those bytes themselves. As in
// encoding/json, an invalid UTF-8 byte and a broken surrogate escape become
// U+FFFD.
func unquoteNext(s []byte) (r rune, size int, verbatim bool) {
	c := s[0]
	switch {
	case c == '\\':
		switch s[1] {
		case 'b':
			return '\b', 2, false
		case 'f':
			return '\f', 2, false
		case 'n':
			return '\n', 2, false
		case 'r':
			return '\r', 2, false
		case 't':
			return '\t', 2, false
		case 'u':
			rr := getu4(s)
			if utf16.IsSurrogate(rr) {
				if dec := utf16.DecodeRune(rr, getu4(s[6:])); dec != utf8.RuneError {
					return dec, 12, false
				}
				return utf8.RuneError, 6, false
			}
			return rr, 6, false
		}
		return rune(s[1]), 2, false // '"', '\\', '/'
	case c < utf8.RuneSelf:
		return rune(c), 1, true
	}
	rr, size := utf8.DecodeRune(s)
	if rr == utf8.RuneError && size == 1 {
		return utf8.RuneError, 1, false
	}
	return rr, size, true
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// jsonReader walks one document held in b.
type jsonReader struct {
	b []byte
}

func (r *jsonReader) ws(i int) int {
	b := r.b
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// str reads the string whose opening quote is at b[i] and returns the index
// past its closing quote.
func (r *jsonReader) str(i int) (jsonString, int, error) {
	end, esc, hi, err := bedrock.ScanJSONString(r.b, i)
	if err != nil {
		return jsonString{}, 0, errJSON
	}
	return jsonString{raw: r.b[i+1 : end-1], esc: esc, hi: hi}, end, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skip validates the value at b[i] (after whitespace), enclosed in depth
// containers, and returns the index past it.
func (r *jsonReader) skip(i, depth int) (int, error) {
	end, err := bedrock.SkipJSON(r.b, i, depth)
	if err != nil {
		return 0, errJSON
	}
	return end, nil
}

// members iterates over an object's members; after next returns a key, i
// is the start of its value (whitespace skipped), and the caller stores in
// i the index past the value.
type members struct {
	r     *jsonReader
	i     int
	depth int // depth of the member values
	first bool
}

// object starts iterating over the object at b[i], enclosed in depth
// containers.
func (r *jsonReader) object(i, depth int) (members, error) {
	if depth+1 > bedrock.MaxJSONDepth {
		return members{}, errJSON
	}
	return members{r: r, i: i + 1, depth: depth + 1, first: true}, nil
}

func (m *members) next() (key jsonString, ok bool, err error) {
	r := m.r
	b := r.b
	i := r.ws(m.i)
	if i < len(b) && b[i] == '}' && m.first {
		m.i = i + 1
		return key, false, nil
	}
	if !m.first {
		if i >= len(b) {
			return key, false, errJSON
		}
		switch b[i] {
		case '}':
			m.i = i + 1
			return key, false, nil
		case ',':
			i = r.ws(i + 1)
		default:
			return key, false, errJSON
		}
	}
	m.first = false
	if i >= len(b) || b[i] != '"' {
		return key, false, errJSON
	}
	key, i, err = r.str(i)
	if err != nil {
		return key, false, err
	}
	i = r.ws(i)
	if i >= len(b) || b[i] != ':' {
		return key, false, errJSON
	}
	m.i = r.ws(i + 1)
	return key, true, nil
}

// The typed readers below store one member value as json.Unmarshal stores
// it into a Go field of that type: null leaves a string or int unchanged,
// and any other JSON type than the field's is an error.

// stringField reads a string member into *dst (set reports a value was
// stored).
func (r *jsonReader) stringField(i int, dst *jsonString, set *bool) (int, error) {
	b := r.b
	if i < len(b) && b[i] == 'n' {
		return r.skip(i, 0)
	}
	if i >= len(b) || b[i] != '"' {
		return 0, errJSON
	}
	s, end, err := r.str(i)
	if err != nil {
		return 0, err
	}
	*dst, *set = s, true
	return end, nil
}

// intField reads an integer member into *dst as strconv.ParseInt(s, 10, 64).
func (r *jsonReader) intField(i int, dst *int) (int, error) {
	b := r.b
	if i < len(b) && b[i] == 'n' {
		return r.skip(i, 0)
	}
	if i >= len(b) || b[i] != '-' && !isDigit(b[i]) {
		return 0, errJSON
	}
	end, err := r.skip(i, 0)
	if err != nil {
		return 0, err
	}
	n, ok := parseInt64(b[i:end])
	if !ok {
		return 0, errJSON
	}
	*dst = n
	return end, nil
}

// parseInt64 parses -?[0-9]+ within int64's range.
func parseInt64(s []byte) (int, bool) {
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range s {
		if !isDigit(c) || n > (1<<63)/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return int(-n), true // -(1<<63) wraps to itself, as it should
	case !neg && n < 1<<63:
		return int(n), true
	}
	return 0, false
}

// objectField starts reading a member that json.Unmarshal stores in a
// pointer to a struct: null makes it nil (isNull), an object is read into
// it (ok, with m iterating over it), anything else is an error.
func (r *jsonReader) objectField(i, depth int) (m members, isNull bool, end int, err error) {
	b := r.b
	if i < len(b) && b[i] == 'n' {
		end, err = r.skip(i, 0)
		return m, true, end, err
	}
	if i >= len(b) || b[i] != '{' {
		return m, false, 0, errJSON
	}
	m, err = r.object(i, depth)
	return m, false, 0, err
}

// end checks that only whitespace follows the top-level value ending at i.
func (r *jsonReader) end(i int) error {
	if r.ws(i) != len(r.b) {
		return errJSON
	}
	return nil
}
