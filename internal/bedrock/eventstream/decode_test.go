package eventstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecoderReadsWholeStream(t *testing.T) {
	want := mixedMessages()
	got, err := decodeAll(encodeAll(t, want))
	if err != io.EOF {
		t.Fatalf("end of stream: err = %v, want io.EOF", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDecoderEmptyStreamIsEOF(t *testing.T) {
	if _, err := NewDecoder(bytes.NewReader(nil)).Next(); err != io.EOF {
		t.Errorf("err = %v, want io.EOF", err)
	}
}

// Cutting the stream at every byte gives the whole frames before the cut,
// then io.EOF when the cut is between frames and io.ErrUnexpectedEOF inside one.
func TestDecoderTruncatedStream(t *testing.T) {
	ms := invokeMessages()[:4]
	b := encodeAll(t, ms)
	ends := map[int]int{0: 0} // frame end offset -> frames complete
	off := 0
	for i, m := range ms {
		off += len(encodeAll(t, []Message{m}))
		ends[off] = i + 1
	}
	for cut := 0; cut <= len(b); cut++ {
		got, err := decodeAll(b[:cut])
		n, boundary := ends[cut]
		wantErr := io.ErrUnexpectedEOF
		if boundary {
			wantErr = io.EOF
		} else {
			for end, k := range ends {
				if end < cut && k > n {
					n = k
				}
			}
		}
		if err != wantErr || len(got) != n {
			t.Fatalf("cut at %d: %d messages, err %v; want %d, %v", cut, len(got), err, n, wantErr)
		}
	}
}

func TestDecoderRejectsCorruptFrames(t *testing.T) {
	good := encodeAll(t, invokeMessages()[:1])
	tests := []struct {
		name   string
		mutate func(b []byte) []byte
	}{
		{"prelude crc", func(b []byte) []byte { b[9] ^= 1; return b }},
		{"message crc", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{"payload byte", func(b []byte) []byte { b[len(b)-10] ^= 1; return b }},
		{"length over 16 MiB", func(b []byte) []byte { return withPrelude(b, MaxFrameLen+1, 0) }},
		{"length 4 GiB", func(b []byte) []byte { return withPrelude(b, 1<<32-1, 0) }},
		{"length below minimum", func(b []byte) []byte { return withPrelude(b, 15, 0) }},
		{"headers longer than frame", func(b []byte) []byte { return withPrelude(b, uint32(len(b)), uint32(len(b)-15)) }},
		{"headers over 128 KiB", func(b []byte) []byte { return withPrelude(b, MaxFrameLen, MaxHeadersLen+1) }},
		{"unknown header value type", func(b []byte) []byte {
			// The first header is ":event-type": 1 length byte, 11 name bytes, then its type.
			b[preludeLen+1+len(HeaderEventType)] = 99
			return reCRC(b)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.mutate(bytes.Clone(good))
			d := NewDecoder(bytes.NewReader(b))
			_, err := d.Next()
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("corruption %v must not look like the end of the stream", err)
			}
			if _, again := d.Next(); again != err {
				t.Errorf("second Next = %v, want the same sticky error", again)
			}
		})
	}
}

// withPrelude rewrites b's prelude with the given lengths and a valid
// prelude CRC, leaving the rest (and the message CRC) alone.
func withPrelude(b []byte, total, headers uint32) []byte {
	binary.BigEndian.PutUint32(b[0:], total)
	binary.BigEndian.PutUint32(b[4:], headers)
	binary.BigEndian.PutUint32(b[8:], crc32.ChecksumIEEE(b[:8]))
	return b
}

// reCRC makes b's message CRC valid again after an edit.
func reCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
	return b
}

// A corrupt length is refused from the prelude alone: the Decoder must not
// try to read (or allocate) the 16 MiB it claims.
func TestDecoderDoesNotReadPastBadPrelude(t *testing.T) {
	b := withPrelude(make([]byte, 12), MaxFrameLen+1, 0)
	r := &countingReader{r: io.MultiReader(bytes.NewReader(b), endless{})}
	if _, err := NewDecoder(r).Next(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	if r.n != 12 {
		t.Errorf("read %d bytes, want only the 12-byte prelude", r.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

// Payloads belong to the caller: decoding the next frame must not change them.
func TestDecoderPayloadsAreIndependent(t *testing.T) {
	d := NewDecoder(bytes.NewReader(encodeAll(t, invokeMessages()[:3])))
	first, err := d.Next()
	if err != nil {
		t.Fatal(err)
	}
	keep := bytes.Clone(first.Payload)
	for range 2 {
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(first.Payload, keep) {
		t.Error("first payload changed after decoding later frames")
	}
}
