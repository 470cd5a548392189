package eventstream

import (
	"errors"
	"io"
)

// Decoder reads frames one at a time from a reader, such as a response body.
// It is for one goroutine.
type Decoder struct {
	r     io.Reader
	frame []byte // reused: a frame is decoded before the next is read
	fd    frameDecoder
	err   error
}

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder { return &Decoder{r: r, fd: newFrameDecoder()} }

// Next returns the next message. At a clean end of stream (between frames)
// it returns io.EOF; a stream that ends inside a frame gives
// io.ErrUnexpectedEOF; bytes that are not a valid frame give an error
// wrapping ErrCorrupt. Errors are sticky. The returned payload is the
// caller's to keep.
func (d *Decoder) Next() (Message, error) {
	if d.err != nil {
		return Message{}, d.err
	}
	m, err := d.next()
	if err != nil {
		d.err = err
	}
	return m, err
}

func (d *Decoder) next() (Message, error) {
	if cap(d.frame) < preludeLen {
		d.frame = make([]byte, preludeLen, 256)
	}
	p := d.frame[:preludeLen]
	if _, err := io.ReadFull(d.r, p); err != nil {
		return Message{}, err // io.EOF if nothing was read, else io.ErrUnexpectedEOF
	}
	total, err := checkPrelude(p)
	if err != nil {
		return Message{}, err
	}
	if cap(d.frame) < total {
		grown := make([]byte, total)
		copy(grown, p)
		d.frame = grown
	}
	f := d.frame[:total]
	if _, err := io.ReadFull(d.r, f[preludeLen:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Message{}, err
	}
	return d.fd.decode(f)
}
