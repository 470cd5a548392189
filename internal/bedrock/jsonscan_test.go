package bedrock

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// validityCases are documents on both sides of JSON's grammar; the scanner
// must agree with json.Valid on each.
var validityCases = []string{
	``, ` `, `{}`, ` {} `, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.5e+3`, `"x"`,
	`{"a":1}`, `{"a":[1,2,{"b":null}]}`, "{\"a\":\"\\u00e9\\n\\t\\\"\\\\\\/\\b\\f\\r\"}",
	"{\t\"a\"\r\n:\n1 }", `{"a":"` + strings.Repeat("long string ", 50) + `"}`,
	"{\"a\":\"\xff\xfe invalid utf-8 is allowed\"}",
	// invalid
	`{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `{,}`, `{"a":1 "b":2}`, `{a:1}`, `{'a':1}`,
	`01`, `1.`, `.5`, `1e`, `1e+`, `+1`, `-`, `--1`, `0x10`, `NaN`, `Infinity`, `tru`, `nul`, `truex`,
	`"abc`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"a\x01b\"", "\"tab\tinside\"", `{} {}`, `{}x`, `[1] 2`,
	"\xef\xbb\xbf{}", `{"a":1}}`, `[[]]]`, `"\`, `"\u`,
	strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth),
	strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
	strings.Repeat(`{"a":`, maxDepth) + "1" + strings.Repeat("}", maxDepth),
	strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1),
	`{"messages":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + "}",
	`{"messages":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + "}",
	`{"thinking":{"x":` + strings.Repeat("[", maxDepth-2) + strings.Repeat("]", maxDepth-2) + "}}",
	`{"thinking":{"x":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + "}}",
}

func TestScanAgreesWithJSONValid(t *testing.T) {
	for _, doc := range validityCases {
		for _, kind := range []bodyKind{invokeBody, converseBody} {
			_, err := scanRequest([]byte(doc), kind)
			if got, want := err == nil, json.Valid([]byte(doc)); got != want {
				t.Errorf("scanRequest(%.60q, %v) valid = %v (err %v), json.Valid = %v", doc, kind, got, err, want)
			}
		}
	}
}

// TestStringStop checks the eight-bytes-at-a-time detector against every
// byte value in every lane: it must flag exactly the bytes that end plain
// string content, and its lowest flagged lane must be the first such byte.
func TestStringStop(t *testing.T) {
	special := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 }
	for c := 0; c < 256; c++ {
		for lane := 0; lane < 8; lane++ {
			for _, fill := range []byte{'a', 0xff, 0x20, 0x80} {
				var buf [8]byte
				for i := range buf {
					buf[i] = fill
				}
				buf[lane] = byte(c)
				m := stringStop(binary.LittleEndian.Uint64(buf[:]))
				if got, want := m != 0, special(byte(c)); got != want {
					t.Fatalf("byte %#x in lane %d (fill %#x): flagged = %v, want %v", c, lane, fill, got, want)
				}
				if m != 0 {
					first := 0
					for m&(0x80<<(8*first)) == 0 {
						first++
					}
					if first != lane {
						t.Fatalf("byte %#x in lane %d: lowest flagged lane %d", c, lane, first)
					}
				}
			}
		}
	}
}

func TestScanStringEnds(t *testing.T) {
	// Closing quotes and escapes at every offset around the 8-byte blocks.
	for n := 0; n < 20; n++ {
		for _, tail := range []string{``, `\"`, `\\`, `\n`, `\u0041`, `é`} {
			s := `"` + strings.Repeat("x", n) + tail + `"` + "rest"
			end, esc, err := scanString([]byte(s), 0)
			if err != nil {
				t.Fatalf("scanString(%q): %v", s, err)
			}
			if got, want := s[end:], "rest"; got != want {
				t.Errorf("scanString(%q) stopped before %q, want %q", s, got, want)
			}
			if got, want := esc, strings.HasPrefix(tail, `\`); got != want {
				t.Errorf("scanString(%q) esc = %v, want %v", s, got, want)
			}
		}
	}
}

func TestUnescapeASCII(t *testing.T) {
	tests := []struct {
		raw  string
		want string // "<nil>" when it cannot be a name
	}{
		{`max\u005ftokens`, "max_tokens"},
		{`\u006d\u0061x_tokens`, "max_tokens"},
		{`a\/b\\c\"d`, `a/b\c"d`},
		{`\n\t\r\b\f`, "\n\t\r\b\f"},
		{`caf\u00e9`, "<nil>"},
		{"caf\xc3\xa9", "<nil>"},
		{strings.Repeat("a", 32), strings.Repeat("a", 32)},
		{strings.Repeat("a", 33), "<nil>"},
	}
	for _, tt := range tests {
		var buf [32]byte
		got := "<nil>"
		if dec := unescapeASCII([]byte(tt.raw), buf[:0]); dec != nil {
			got = string(dec)
		}
		if got != tt.want {
			t.Errorf("unescapeASCII(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestSyntaxErrorOffset(t *testing.T) {
	tests := []struct {
		doc  string
		want int
	}{
		{`{"messages":[1,]}`, 15},
		{`{"a":1`, 6},
		{`{"a":"\q"}`, 7},
		{`{} x`, 3},
	}
	for _, tt := range tests {
		_, err := scanRequest([]byte(tt.doc), invokeBody)
		se, ok := err.(*syntaxError)
		if !ok {
			t.Errorf("scanRequest(%q) error = %v, want a *syntaxError", tt.doc, err)
			continue
		}
		if diff := cmp.Diff(tt.want, se.off); diff != "" {
			t.Errorf("scanRequest(%q) offset (-want +got):\n%s", tt.doc, diff)
		}
	}
}
