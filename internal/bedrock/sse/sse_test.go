package sse

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// claudeStream is a Messages stream shaped like the ones Claude Code reads:
// thinking, text, a tool call, and the usage at start and end.
const claudeStream = "event: message_start\n" +
	`data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"anthropic.claude-opus-4-7","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3000,"cache_creation_input_tokens":1000,"cache_read_input_tokens":4000,"output_tokens":1}}}` + "\n\n" +
	"event: content_block_start\n" +
	`data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}` + "\n\n" +
	"event: ping\ndata: {\"type\": \"ping\"}\n\n" +
	"event: content_block_delta\n" +
	`data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me write the file."}}` + "\n\n" +
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
	"event: content_block_start\n" +
	`data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01XYZ","name":"Write","input":{}}}` + "\n\n" +
	"event: content_block_delta\n" +
	`data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"file_path\": \"/tmp/a.txt\", \"content\": \"word word"}}` + "\n\n" +
	"event: message_delta\n" +
	`data: {"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":4096}}` + "\n\n" +
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

func scanAll(t testing.TB, in []byte, cuts []byte) ([]string, error) {
	return scanAllBuffer(t, in, cuts, nil)
}

// scanAllBuffer is scanAll with the Scanner's Buffer set to buf (none when
// nil).
func scanAllBuffer(t testing.TB, in []byte, cuts []byte, buf []byte) ([]string, error) {
	var s Scanner
	if buf != nil {
		s.Buffer(buf)
	}
	var out []string
	var err error
	for len(in) > 0 {
		n := len(in)
		if len(cuts) > 0 {
			n = min(n, int(cuts[0])+1)
			cuts = cuts[1:]
		}
		_, _ = s.Write(in[:n])
		in = in[n:]
		for {
			ev, ok, e := s.Next()
			if e != nil {
				return out, e
			}
			if !ok {
				break
			}
			out = append(out, string(ev.Name)+"|"+string(ev.Data))
		}
	}
	return out, err
}

func TestScanner(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"lf", "event: a\ndata: 1\n\n", []string{"a|1"}},
		{"crlf", "event: a\r\ndata: 1\r\n\r\n", []string{"a|1"}},
		{"cr", "event: a\rdata: 1\r\r", []string{"a|1"}},
		{"default name, no space", "data:x\n\n", []string{"message|x"}},
		{"empty event name", "event:\ndata: x\n\n", []string{"message|x"}},
		{"two data lines", "data: a\ndata: b\n\n", []string{"message|a\nb"}},
		{"comment and no data", ": hi\n\nevent: e\n\n", nil},
		{"unfinished", "data: a\n", nil},
		{"bom", "\xEF\xBB\xBFdata: a\n\n", []string{"message|a"}},
		{"field without colon", "data\n\n", []string{"message|"}},
		{"two spaces", "data:  a\n\n", []string{"message| a"}},
		{"unknown field", "id: 7\nretry: 10\ndata: a\n\n", []string{"message|a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, cuts := range [][]byte{nil, {0}, {1, 0, 2}} {
				got, err := scanAll(t, []byte(tt.in), bytes.Repeat(cuts, 50))
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("cuts %v (-want +got)\n%s", cuts, diff)
				}
			}
		})
	}
}

func TestScannerTooLong(t *testing.T) {
	var s Scanner
	_, _ = s.Write([]byte("data: "))
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	var err error
	for i := 0; i < 20 && err == nil; i++ {
		_, _ = s.Write(chunk)
		_, _, err = s.Next()
	}
	if !errors.Is(err, ErrTooLong) {
		t.Fatalf("err = %v, want ErrTooLong", err)
	}
	if len(s.buf) > MaxEvent+2*len(chunk) {
		t.Errorf("buffer grew to %d bytes", len(s.buf))
	}
	// Many small events in one write are fine.
	var s2 Scanner
	_, _ = s2.Write(bytes.Repeat([]byte("data: 1\n\n"), 2*MaxEvent/9))
	n := 0
	for {
		_, ok, err := s2.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		n++
	}
	if n != 2*MaxEvent/9 {
		t.Errorf("%d events", n)
	}
}

func TestMeter(t *testing.T) {
	for _, cut := range []int{0, 1, 7, 100} {
		var s Scanner
		var mt Meter
		in := []byte(claudeStream)
		for len(in) > 0 {
			n := len(in)
			if cut > 0 {
				n = min(n, cut)
			}
			_, _ = s.Write(in[:n])
			in = in[n:]
			for {
				ev, ok, err := s.Next()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				if err := mt.Observe(ev); err != nil {
					t.Fatalf("%s: %v", ev.Data, err)
				}
			}
		}
		want := bedrock.Usage{InputTokens: 3000, CacheWriteInputTokens: 1000, CacheReadInputTokens: 4000, OutputTokens: 4096}
		if diff := cmp.Diff(want, mt.Usage()); diff != "" {
			t.Errorf("cut %d: usage (-want +got)\n%s", cut, diff)
		}
		if !mt.Done() || mt.StopReason() != "max_tokens" || mt.LastToolUseID() != "toolu_01XYZ" || mt.Error() != "" {
			t.Errorf("cut %d: done %v stop %q tool %q error %q", cut, mt.Done(), mt.StopReason(), mt.LastToolUseID(), mt.Error())
		}
	}
}

func TestMeterError(t *testing.T) {
	in := claudeStream[:strings.Index(claudeStream, "event: message_delta")] +
		"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
	var s Scanner
	var mt Meter
	_, _ = s.Write([]byte(in))
	for {
		ev, ok, err := s.Next()
		if err != nil || !ok {
			break
		}
		_ = mt.Observe(ev)
	}
	if mt.Error() != "overloaded_error" || mt.Done() {
		t.Errorf("error %q done %v", mt.Error(), mt.Done())
	}
	// Cut mid-answer: input as reported, output estimated from the bytes.
	u := mt.Usage()
	if u.InputTokens != 3000 || u.OutputTokens < 10 {
		t.Errorf("usage %+v", u)
	}
}

// reference parses a whole stream the simple way: normalise line ends, split.
func reference(in string) []string {
	in = strings.TrimPrefix(in, "\xEF\xBB\xBF")
	in = strings.ReplaceAll(in, "\r\n", "\n")
	in = strings.ReplaceAll(in, "\r", "\n")
	lines := strings.Split(in, "\n")
	lines = lines[:len(lines)-1] // the last is unfinished
	var out []string
	name, data, has := "", "", false
	for _, l := range lines {
		if l == "" {
			if has {
				if name == "" {
					name = "message"
				}
				out = append(out, name+"|"+data)
			}
			name, data, has = "", "", false
			continue
		}
		if l[0] == ':' {
			continue
		}
		f, v, _ := strings.Cut(l, ":")
		v = strings.TrimPrefix(v, " ")
		switch f {
		case "event":
			name = v
		case "data":
			if has {
				data += "\n" + v
			} else {
				data, has = v, true
			}
		}
	}
	return out
}

// FuzzScanner: any bytes, written in any pieces, give the events the
// simple whole-stream parse gives.
func FuzzScanner(f *testing.F) {
	f.Add([]byte(claudeStream), []byte{3, 200, 17})
	f.Add([]byte("event: a\r\ndata: 1\r\n\r\ndata:2\r\rdata: x\ndata: y\n\n"), []byte{0})
	f.Add([]byte("\xEF\xBB\xBF: c\n\nevent:\ndata\n\n"), []byte{1})
	f.Fuzz(func(t *testing.T, in, cuts []byte) {
		got, err := scanAll(t, in, cuts)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(reference(string(in)), got); diff != "" {
			t.Errorf("(-reference +scanner)\n%s", diff)
		}
		// A recycled buffer, small and holding an earlier stream's bytes,
		// changes nothing.
		dirty := bytes.Repeat([]byte("data: stale\n\n"), 2)
		withBuf, err := scanAllBuffer(t, in, cuts, dirty[:16])
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, withBuf); diff != "" {
			t.Errorf("with a recycled buffer (-without +with)\n%s", diff)
		}
	})
}

// FuzzMeter: the meter never fails on the scanner's output in a way that
// panics, and its usage never goes negative.
func FuzzMeter(f *testing.F) {
	f.Add([]byte(claudeStream))
	f.Add([]byte("event: error\ndata: {\"error\":7}\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var s Scanner
		var mt Meter
		_, _ = s.Write(in)
		for {
			ev, ok, err := s.Next()
			if err != nil || !ok {
				break
			}
			_ = mt.Observe(ev)
		}
		u := mt.Usage()
		if u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadInputTokens < 0 || u.CacheWriteInputTokens < 0 {
			t.Errorf("usage %+v", u)
		}
	})
}
