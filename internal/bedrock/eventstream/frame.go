package eventstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// Message is one event-stream frame: headers and a payload.
type Message = eventstream.Message

// Limits of the event-stream format. AWS documents 16 MiB for a whole
// message and 128 KiB for its headers; a prelude that claims more is
// corrupt, and refusing it early keeps a broken upstream from making the
// gateway buffer gigabytes.
const (
	MaxFrameLen   = 16 << 20
	MaxHeadersLen = 128 << 10
)

const (
	preludeLen = 12 // total length, headers length, prelude CRC
	minFrame   = 16 // prelude + message CRC
)

// ErrCorrupt is wrapped by every error about bytes that are not a valid
// event stream: bad lengths, checksum mismatches, malformed headers.
// Truncation is reported as io.ErrUnexpectedEOF instead.
var ErrCorrupt = errors.New("eventstream: corrupt frame")

// checkPrelude validates the 12-byte prelude p and returns the frame's total
// length. It refuses lengths outside the format's limits and a prelude whose
// CRC does not match, so nothing is buffered on the word of a corrupt length.
func checkPrelude(p []byte) (int, error) {
	total := binary.BigEndian.Uint32(p[0:4])
	headers := binary.BigEndian.Uint32(p[4:8])
	if crc32.ChecksumIEEE(p[0:8]) != binary.BigEndian.Uint32(p[8:12]) {
		return 0, fmt.Errorf("%w: prelude checksum mismatch", ErrCorrupt)
	}
	if total < minFrame || total > MaxFrameLen {
		return 0, fmt.Errorf("%w: frame length %d outside [%d, %d]", ErrCorrupt, total, minFrame, MaxFrameLen)
	}
	if headers > MaxHeadersLen || headers > total-minFrame {
		return 0, fmt.Errorf("%w: headers length %d in a frame of %d", ErrCorrupt, headers, total)
	}
	return int(total), nil
}

// frameDecoder turns one complete, prelude-checked frame into a Message with
// the SDK's decoder, which checks the message CRC and parses the headers.
type frameDecoder struct {
	sdk *eventstream.Decoder
	r   bytes.Reader
}

func newFrameDecoder() frameDecoder { return frameDecoder{sdk: eventstream.NewDecoder()} }

// decode decodes frame, whose length checkPrelude has accepted. The returned
// payload is freshly allocated: callers may keep it after the next frame.
func (d *frameDecoder) decode(frame []byte) (Message, error) {
	headers := int(binary.BigEndian.Uint32(frame[4:8]))
	var payload []byte
	if n := len(frame) - minFrame - headers; n > 0 {
		payload = make([]byte, 0, n)
	}
	d.r.Reset(frame)
	m, err := d.sdk.Decode(&d.r, payload)
	if err != nil {
		// %v, not %w: an io.EOF from inside a complete frame is corruption,
		// and must not look like the end of the stream to errors.Is.
		return Message{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if d.r.Len() != 0 {
		return Message{}, fmt.Errorf("%w: %d bytes after the message checksum", ErrCorrupt, d.r.Len())
	}
	return m, nil
}
