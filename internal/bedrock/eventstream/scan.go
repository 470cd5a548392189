package eventstream

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// Frame is one event-stream message seen in place, for metering a stream
// the gateway passes through: its payload and the string headers that say
// what it is, all pointing into the bytes the Scanner was given (or into its
// own buffer for a frame that arrived in pieces). A Frame is valid until the
// next call of the Scanner's Write or Next; nothing in it is a copy.
//
// Decoding a message to re-encode or keep it is the SDK's job (Decoder,
// Splitter); Frame only serves readers that look and forget.
type Frame struct {
	Payload []byte
	strs    [numFrameHeaders][]byte
	have    uint8 // bit h set: header h is present with a string value
}

// The headers a Frame keeps.
const (
	fhMessageType = iota
	fhEventType
	fhExceptionType
	fhErrorCode
	fhErrorMessage
	numFrameHeaders
)

var frameHeaderNames = [numFrameHeaders]string{HeaderMessageType, HeaderEventType, HeaderExceptionType, HeaderErrorCode, HeaderErrorMessage}

func (f *Frame) header(h int) ([]byte, bool) { return f.strs[h], f.have&(1<<h) != 0 }

// MessageType is the :message-type header; ok is false when the frame has
// none with a string value.
func (f *Frame) MessageType() (v []byte, ok bool) { return f.header(fhMessageType) }

// EventType is the :event-type header, like MessageType.
func (f *Frame) EventType() (v []byte, ok bool) { return f.header(fhEventType) }

// ExceptionType is the :exception-type header, like MessageType.
func (f *Frame) ExceptionType() (v []byte, ok bool) { return f.header(fhExceptionType) }

// Event is Parse of the same frame decoded by the SDK: the same Event and
// the same error, with its strings copied out of the frame.
func (f *Frame) Event() (Event, error) {
	var m Message
	for h, name := range frameHeaderNames {
		if v, ok := f.header(h); ok {
			m.Headers = append(m.Headers, eventstream.Header{Name: name, Value: eventstream.StringValue(v)})
		}
	}
	if len(f.Payload) > 0 {
		m.Payload = append([]byte(nil), f.Payload...)
	}
	return Parse(m)
}

// Scanner finds the frames of an event stream that arrives in arbitrary
// pieces, without copying them: Write a piece, then call Next until it
// reports no complete frame, and only then reuse the piece's memory. Only a
// frame cut across pieces is copied, into a buffer the Scanner keeps. Every
// frame is checked as the SDK's decoder checks it: lengths within the
// format's limits, both CRC-32 checksums (IEEE, with hash/crc32), and
// headers well-formed; only the string headers a Frame exposes are kept.
// Scanner and the SDK-based Splitter agree on every input (FuzzScanner).
// It is for one goroutine; the zero Scanner is ready.
type Scanner struct {
	in    []byte // the unscanned rest of the last Write
	carry []byte // a frame cut across Writes, being completed
	err   error
}

// Write hands the Scanner the next piece of the stream. The Scanner reads
// p until Next reports no complete frame; the caller must not change p
// before that. Write never fails; a corrupt stream is reported by Next.
func (s *Scanner) Write(p []byte) (int, error) {
	if s.err == nil && len(s.in) > 0 {
		// The previous piece was not drained: keep its rest.
		s.carry = append(s.carry, s.in...)
	}
	s.in = p
	return len(p), nil
}

// Next returns the next complete frame; ok is false when none is complete
// yet. Once the stream is known to be corrupt it returns an error wrapping
// ErrCorrupt, from then on.
func (s *Scanner) Next() (f Frame, ok bool, err error) {
	if s.err != nil {
		return Frame{}, false, s.err
	}
	var frame []byte
	if len(s.carry) > 0 {
		frame, ok, err = s.completeCarry()
	} else {
		frame, ok, err = s.cut()
	}
	if err != nil || !ok {
		s.fail(err)
		return Frame{}, false, err
	}
	if err := scanFrame(frame, &f); err != nil {
		s.fail(err)
		return Frame{}, false, err
	}
	return f, true, nil
}

// cut returns the frame at the start of s.in if it is complete, else keeps
// the rest of s.in as the carry.
func (s *Scanner) cut() ([]byte, bool, error) {
	if len(s.in) >= preludeLen {
		total, err := checkPrelude(s.in[:preludeLen])
		if err != nil {
			return nil, false, err
		}
		if len(s.in) >= total {
			frame := s.in[:total]
			s.in = s.in[total:]
			return frame, true, nil
		}
	}
	s.carry = append(s.carry[:0], s.in...)
	s.in = nil
	return nil, false, nil
}

// completeCarry moves bytes from s.in to the carried partial frame until it
// is complete.
func (s *Scanner) completeCarry() ([]byte, bool, error) {
	if len(s.carry) < preludeLen {
		n := min(preludeLen-len(s.carry), len(s.in))
		s.carry, s.in = append(s.carry, s.in[:n]...), s.in[n:]
		if len(s.carry) < preludeLen {
			return nil, false, nil
		}
	}
	total, err := checkPrelude(s.carry[:preludeLen])
	if err != nil {
		return nil, false, err
	}
	if len(s.carry) < total {
		n := min(total-len(s.carry), len(s.in))
		s.carry, s.in = append(s.carry, s.in[:n]...), s.in[n:]
		if len(s.carry) < total {
			return nil, false, nil
		}
	}
	frame := s.carry[:total:total]
	if len(s.carry) == total {
		// Reused from the next call on, when the frame is no longer valid.
		s.carry = s.carry[:0]
	} else {
		// More frames were carried (Write before Next drained): they stay,
		// after the frame returned.
		s.carry = s.carry[total:]
	}
	return frame, true, nil
}

func (s *Scanner) fail(err error) {
	if err != nil {
		s.err, s.in, s.carry = err, nil, nil
	}
}

// Close reports how the stream ended: nil after whole frames only,
// io.ErrUnexpectedEOF if a partial frame is left, or the corruption error.
// Bytes written but not yet scanned by Next count as partial.
func (s *Scanner) Close() error {
	if s.err != nil {
		return s.err
	}
	if len(s.carry) > 0 || len(s.in) > 0 {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// Header value types of the event-stream format, and the sizes of the
// fixed-size ones.
const (
	hvTrue = iota
	hvFalse
	hvByte
	hvInt16
	hvInt32
	hvInt64
	hvBytes
	hvString
	hvTimestamp
	hvUUID
)

var fixedValueLen = [...]int{hvTrue: 0, hvFalse: 0, hvByte: 1, hvInt16: 2, hvInt32: 4, hvInt64: 8, hvTimestamp: 8, hvUUID: 16}

// scanFrame checks a whole frame, whose prelude checkPrelude accepted, and
// fills f. It accepts and refuses exactly what the SDK's decoder does.
func scanFrame(frame []byte, f *Frame) error {
	total := len(frame)
	crc := crc32.ChecksumIEEE(frame[:total-4])
	if crc != binary.BigEndian.Uint32(frame[total-4:]) {
		return fmt.Errorf("%w: message checksum mismatch", ErrCorrupt)
	}
	hlen := int(binary.BigEndian.Uint32(frame[4:8]))
	if err := scanHeaders(frame[preludeLen:preludeLen+hlen], f); err != nil {
		return err
	}
	if p := frame[preludeLen+hlen : total-4]; len(p) > 0 {
		f.Payload = p
	}
	return nil
}

// scanHeaders reads the header block h like the SDK: a name cut short
// before its first byte ends the block quietly, anything else cut short or
// of an unknown type is corrupt, and of repeated names the last counts.
func scanHeaders(h []byte, f *Frame) error {
	for i := 0; i < len(h); {
		nlen := int(h[i])
		i++
		if nlen > 0 && i == len(h) {
			return nil // the SDK reads this as io.EOF: the end of the headers
		}
		if i+nlen > len(h) {
			return fmt.Errorf("%w: header name cut short", ErrCorrupt)
		}
		name := h[i : i+nlen]
		i += nlen
		if i == len(h) {
			return fmt.Errorf("%w: header %q has no value", ErrCorrupt, name)
		}
		typ := h[i]
		i++
		var val []byte
		switch typ {
		case hvBytes, hvString:
			if i+2 > len(h) {
				return fmt.Errorf("%w: header %q cut short", ErrCorrupt, name)
			}
			n := int(binary.BigEndian.Uint16(h[i:]))
			i += 2
			if i+n > len(h) {
				return fmt.Errorf("%w: header %q cut short", ErrCorrupt, name)
			}
			val = h[i : i+n]
			i += n
		case hvTrue, hvFalse, hvByte, hvInt16, hvInt32, hvInt64, hvTimestamp, hvUUID:
			n := fixedValueLen[typ]
			if i+n > len(h) {
				return fmt.Errorf("%w: header %q cut short", ErrCorrupt, name)
			}
			i += n
		default:
			return fmt.Errorf("%w: header %q of unknown value type %d", ErrCorrupt, name, typ)
		}
		for k, want := range frameHeaderNames {
			if string(name) == want {
				if typ == hvString {
					f.strs[k], f.have = val, f.have|1<<k
				} else {
					f.strs[k], f.have = nil, f.have&^(1<<k)
				}
				break
			}
		}
	}
	return nil
}
