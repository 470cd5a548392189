package eventstream

import (
	"encoding/binary"
	"io"
)

// Splitter cuts a stream that arrives in arbitrary pieces back into
// messages, for metering a response the gateway passes through unchanged:
// Write each piece after forwarding it, then call Next until it reports no
// complete message. A partial frame is kept until the rest arrives.
//
// Write checks each frame's prelude as soon as its 12 bytes are in, so a
// corrupt or absurd length (over MaxFrameLen) is refused at once rather
// than buffered for. With Next drained after every Write, the Splitter holds
// at most one partial frame. It is for one goroutine.
type Splitter struct {
	buf  []byte
	off  int // start of the first frame not yet returned by Next
	scan int // start of the first frame whose prelude is not yet checked or that is incomplete
	next int // length of the frame at scan once its prelude is checked, else 0
	fd   frameDecoder
	err  error
}

// NewSplitter returns an empty Splitter. The zero Splitter is also ready to use.
func NewSplitter() *Splitter { return &Splitter{} }

// Write appends p to the stream. It returns an error, and from then on
// ignores its input, once the stream is known to be corrupt; frames that
// were complete before the corruption are still returned by Next.
func (s *Splitter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.off > 0 { // drop delivered frames; what remains is at most one partial frame when Next is drained
		n := copy(s.buf, s.buf[s.off:])
		s.buf = s.buf[:n]
		s.scan -= s.off
		s.off = 0
	}
	s.buf = append(s.buf, p...)
	for {
		avail := len(s.buf) - s.scan
		if s.next == 0 {
			if avail < preludeLen {
				return len(p), nil
			}
			total, err := checkPrelude(s.buf[s.scan : s.scan+preludeLen])
			if err != nil {
				s.fail(err)
				return 0, err
			}
			s.next = total
		}
		if avail < s.next {
			return len(p), nil
		}
		s.scan += s.next
		s.next = 0
	}
}

// Next returns the next complete message; ok is false when none is complete
// yet. After the frames complete before a corruption, it returns the error
// (wrapping ErrCorrupt). The returned payload is the caller's to keep.
func (s *Splitter) Next() (m Message, ok bool, err error) {
	if s.off == s.scan {
		return Message{}, false, s.err
	}
	if s.fd.sdk == nil {
		s.fd = newFrameDecoder()
	}
	total := int(binary.BigEndian.Uint32(s.buf[s.off:]))
	m, err = s.fd.decode(s.buf[s.off : s.off+total])
	if err != nil {
		s.fail(err)
		s.buf, s.off, s.scan = s.buf[:0], 0, 0
		return Message{}, false, err
	}
	s.off += total
	return m, true, nil
}

// Buffered is the number of bytes held: undelivered frames plus any partial one.
func (s *Splitter) Buffered() int { return len(s.buf) - s.off }

// Close reports how the stream ended: nil after whole frames only,
// io.ErrUnexpectedEOF if a partial frame is left, or the corruption error.
// Frames still undelivered by Next do not count as partial.
func (s *Splitter) Close() error {
	if s.err != nil {
		return s.err
	}
	if len(s.buf) > s.scan {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// fail makes err sticky and drops the bytes that can never become a frame.
func (s *Splitter) fail(err error) {
	s.err = err
	s.buf = s.buf[:s.scan]
	s.next = 0
}
