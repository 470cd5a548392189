// Package sse reads the Anthropic Messages API's server-sent events
// (text/event-stream) as they pass through the gateway, to meter them: a
// Scanner finds the events in the bytes forwarded, in place, and a Meter
// adds up their usage (message_start, message_delta), the stop reason, an
// error event and the last tool_use block started.
//
// It is written by hand because what it needs is narrow and hot: the
// standard library has no SSE reader, and the maintained Go ones read from
// an io.Reader they own (the gateway forwards the bytes first and meters a
// copy) and allocate per event. It follows the WHATWG HTML "event stream
// interpretation" rules (lines end in CRLF, LF or CR; a blank line ends an
// event; "data" lines are joined with LF; one space after the colon is
// dropped; a leading BOM is skipped).
//
// It must not hold more than MaxEvent bytes of one unfinished event, and it
// never changes the bytes: the client gets them whatever the meter thinks.
package sse

import (
	"bytes"
	"errors"
)

// MaxEvent bounds the bytes of one event (its lines up to the blank line);
// Anthropic's events are a few hundred bytes, a message_start with a long
// model name a few KB.
const MaxEvent = 1 << 20

// ErrTooLong is an event over MaxEvent bytes: the stream cannot be metered
// from there on.
var ErrTooLong = errors.New("sse: event over the size limit")

// Event is one dispatched event. Its slices point into the Scanner's
// buffers and are valid until the next Write or Next.
type Event struct {
	// Name is the "event" field, "message" when absent.
	Name []byte
	// Data is the "data" lines, joined with LF.
	Data []byte
}

var defaultName = []byte("message")

// Scanner splits bytes written to it into events. The zero Scanner is
// ready; it is for one goroutine.
type Scanner struct {
	buf []byte
	// off is where the unfinished event starts; line is where the next
	// line to read starts.
	off, line int
	// cr: the last line ended in CR, so an LF at line is its end, not an
	// empty line.
	cr      bool
	started bool // past a possible BOM

	name, data span
	multi      bool   // data has more than one line: it is in joined
	joined     []byte // data lines joined, when there are several
	hasData    bool
	err        error
}

type span struct{ start, end int }

// Buffer has the Scanner keep the bytes of unfinished events in buf's
// storage (it grows beyond it as needed): a caller that meters many
// streams can recycle it. Call it before the first Write.
func (s *Scanner) Buffer(buf []byte) { s.buf = buf[:0] }

// Write adds bytes from the stream. It never fails; an error surfaces in
// Next. Events returned before become invalid.
func (s *Scanner) Write(p []byte) (int, error) {
	if s.err != nil {
		return len(p), nil
	}
	if s.off > 0 {
		// Drop what earlier events used; the unfinished event's spans move
		// with its bytes.
		n := copy(s.buf, s.buf[s.off:])
		s.buf = s.buf[:n]
		s.line -= s.off
		s.name.start, s.name.end = s.name.start-s.off, s.name.end-s.off
		s.data.start, s.data.end = s.data.start-s.off, s.data.end-s.off
		s.off = 0
	}
	s.buf = append(s.buf, p...)
	return len(p), nil
}

// Next returns the next complete event. ok is false when the bytes so far
// end inside an event (write more); err is ErrTooLong once an event grew
// over MaxEvent, and stays.
func (s *Scanner) Next() (ev Event, ok bool, err error) {
	if s.err != nil {
		return Event{}, false, s.err
	}
	if !s.started {
		if len(s.buf) < 3 && bytes.HasPrefix([]byte("\xEF\xBB\xBF"), s.buf) {
			return Event{}, false, nil // maybe a BOM, not all here yet
		}
		if bytes.HasPrefix(s.buf, []byte("\xEF\xBB\xBF")) {
			s.off, s.line = 3, 3
		}
		s.started = true
	}
	for {
		if s.cr && s.line < len(s.buf) {
			if s.buf[s.line] == '\n' {
				s.line++
			}
			s.cr = false
		}
		rest := s.buf[s.line:]
		i := lineEnd(rest)
		if i < 0 {
			if len(s.buf)-s.off > MaxEvent {
				s.err = ErrTooLong
				return Event{}, false, s.err
			}
			return Event{}, false, nil
		}
		start, end := s.line, s.line+i
		s.line = end + 1
		if rest[i] == '\r' {
			s.cr = true
		}
		if end-s.off > MaxEvent {
			s.err = ErrTooLong
			return Event{}, false, s.err
		}
		if start == end {
			ev, ok := s.dispatch()
			if ok {
				return ev, true, nil
			}
			continue
		}
		s.field(start, end)
		if s.err != nil {
			return Event{}, false, s.err
		}
	}
}

// lineEnd is the index of the first CR or LF in b, or -1: two vectorised
// searches instead of bytes.IndexAny's byte loop.
func lineEnd(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	lim := b
	if i >= 0 {
		lim = b[:i]
	}
	if j := bytes.IndexByte(lim, '\r'); j >= 0 {
		return j
	}
	return i
}

// field takes in the line buf[start:end].
func (s *Scanner) field(start, end int) {
	line := s.buf[start:end]
	if line[0] == ':' {
		return // a comment
	}
	name, value := line, start+len(line)
	if c := bytes.IndexByte(line, ':'); c >= 0 {
		name, value = line[:c], start+c+1
		if value < end && s.buf[value] == ' ' {
			value++
		}
	}
	switch string(name) {
	case "event":
		s.name = span{value, end}
	case "data":
		if !s.hasData {
			s.data, s.hasData = span{value, end}, true
			return
		}
		if !s.multi {
			s.joined = append(s.joined[:0], s.buf[s.data.start:s.data.end]...)
			s.multi = true
		}
		if len(s.joined) > MaxEvent {
			s.err = ErrTooLong
			return
		}
		s.joined = append(s.joined, '\n')
		s.joined = append(s.joined, s.buf[value:end]...)
	}
}

// dispatch ends the event at a blank line: an event without data is
// dropped, as the standard says.
func (s *Scanner) dispatch() (Event, bool) {
	name, data, hasData, multi := s.name, s.data, s.hasData, s.multi
	s.name, s.data, s.hasData, s.multi = span{}, span{}, false, false
	s.off = s.line
	if s.cr && s.line < len(s.buf) && s.buf[s.line] == '\n' {
		s.off++ // the blank line's LF belongs to it
	}
	if !hasData {
		return Event{}, false
	}
	ev := Event{Name: defaultName, Data: s.buf[data.start:data.end]}
	if name.end > name.start {
		ev.Name = s.buf[name.start:name.end]
	}
	if multi {
		ev.Data = s.joined
	}
	return ev, true
}
