package eventstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// split feeds b to a Splitter in the given piece sizes (cycled), draining
// Next after every Write as the gateway does, and returns the messages and
// the first error. It also checks that a drained Splitter holds at most one
// partial frame.
func split(tb testing.TB, b []byte, sizes func() int) ([]Message, error) {
	tb.Helper()
	var s Splitter
	var got []Message
	for len(b) > 0 {
		n := min(max(sizes(), 1), len(b))
		if _, err := s.Write(b[:n]); err != nil {
			for { // frames complete before the corruption still come out
				m, ok, _ := s.Next()
				if !ok {
					break
				}
				got = append(got, m)
			}
			return got, err
		}
		b = b[n:]
		for {
			m, ok, err := s.Next()
			if err != nil {
				return got, err
			}
			if !ok {
				break
			}
			got = append(got, m)
		}
		// Drained, it holds one partial frame at most: fewer bytes than a
		// prelude, or fewer than the (bounded) length its prelude declares.
		if n := s.Buffered(); n >= preludeLen {
			rest := s.buf[s.off:]
			if total := int(binary.BigEndian.Uint32(rest)); n >= total || total > MaxFrameLen {
				tb.Fatalf("drained Splitter holds %d bytes, frame length %d", n, total)
			}
		}
	}
	return got, s.Close()
}

func TestSplitterPieceSizesGiveSameMessages(t *testing.T) {
	want := mixedMessages()
	want = append(want, invokeMessages()...)
	want = append(want, ChunkMessage(bytes.Repeat([]byte("y"), 70_000)))
	b := encodeAll(t, want)

	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name  string
		sizes func() int
	}{
		{"whole stream", func() int { return len(b) }},
		{"byte by byte", func() int { return 1 }},
		{"3 bytes", func() int { return 3 }},
		{"prelude size", func() int { return 12 }},
		{"random 1..64", func() int { return 1 + rng.IntN(64) }},
		{"random 1..4096", func() int { return 1 + rng.IntN(4096) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := split(t, b, tt.sizes)
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			// bytes.Equal: cmp's element-wise diff of the 70 KB payload is slow.
			if diff := cmp.Diff(want, got, cmp.Comparer(bytes.Equal)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSplitterHoldsPartialFrameUntilComplete(t *testing.T) {
	frame := encodeAll(t, invokeMessages()[:1])
	var s Splitter
	for i := range len(frame) - 1 {
		if _, err := s.Write(frame[i : i+1]); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.Next(); ok || err != nil {
			t.Fatalf("after %d of %d bytes: Next = ok %v, err %v; want nothing yet", i+1, len(frame), ok, err)
		}
	}
	if got, want := s.Close(), io.ErrUnexpectedEOF; got != want {
		t.Errorf("Close with a partial frame = %v, want %v", got, want)
	}
	if _, err := s.Write(frame[len(frame)-1:]); err != nil {
		t.Fatal(err)
	}
	m, ok, err := s.Next()
	if !ok || err != nil {
		t.Fatalf("Next = ok %v, err %v; want the message", ok, err)
	}
	if diff := cmp.Diff(invokeMessages()[0], m); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if s.Buffered() != 0 || s.Close() != nil {
		t.Errorf("after the last frame: Buffered %d, Close %v; want 0, nil", s.Buffered(), s.Close())
	}
}

// An absurd length is refused as soon as its prelude is in, with nothing
// buffered for it; frames before it are still delivered; later writes fail.
func TestSplitterRejectsAbsurdLengthAtOnce(t *testing.T) {
	good := encodeAll(t, invokeMessages()[:2])
	bad := withPrelude(make([]byte, 12), MaxFrameLen+1, 0)

	var s Splitter
	if _, err := s.Write(good); err != nil {
		t.Fatal(err)
	}
	_, err := s.Write(bad)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Write(bad prelude) = %v, want ErrCorrupt", err)
	}
	if got, want := s.Buffered(), len(good); got != want {
		t.Errorf("Buffered() = %d, want %d (the bad frame dropped)", got, want)
	}
	var got []Message
	for {
		m, ok, nerr := s.Next()
		if !ok {
			if !errors.Is(nerr, ErrCorrupt) {
				t.Errorf("Next after good frames = %v, want ErrCorrupt", nerr)
			}
			break
		}
		got = append(got, m)
	}
	if diff := cmp.Diff(invokeMessages()[:2], got); diff != "" {
		t.Errorf("frames before the corruption (-want +got):\n%s", diff)
	}
	if n, err := s.Write(good); n != 0 || !errors.Is(err, ErrCorrupt) {
		t.Errorf("Write after corruption = %d, %v; want 0, ErrCorrupt", n, err)
	}
	if s.Buffered() != 0 {
		t.Errorf("Buffered() = %d after the error, want 0", s.Buffered())
	}
}

// A message CRC mismatch is found by the SDK when the frame is complete.
func TestSplitterMessageChecksum(t *testing.T) {
	b := encodeAll(t, invokeMessages()[:2])
	b[len(b)-1] ^= 0xff
	got, err := split(t, b, func() int { return 7 })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	if len(got) != 1 {
		t.Errorf("got %d messages before the bad one, want 1", len(got))
	}
}

// The Splitter and the Decoder agree on every truncation of a stream.
func TestSplitterAgreesWithDecoderOnTruncation(t *testing.T) {
	b := encodeAll(t, mixedMessages())
	for cut := 0; cut <= len(b); cut++ {
		wantMs, wantErr := decodeAll(b[:cut])
		if wantErr == io.EOF {
			wantErr = nil
		}
		gotMs, gotErr := split(t, b[:cut], func() int { return 5 })
		if gotErr != wantErr || len(gotMs) != len(wantMs) {
			t.Fatalf("cut %d: splitter %d msgs, %v; decoder %d msgs, %v", cut, len(gotMs), gotErr, len(wantMs), wantErr)
		}
	}
}
