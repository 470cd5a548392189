package eventstream

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// The Scanner and Meter.ObserveFrame are checked against the SDK-based
// path (Decoder, Parse, Meter.ObserveMessage) on the same bytes: same
// frames, same events, same usage after every frame, same errors.

// scanned is what the Scanner made of one frame.
type scanned struct {
	ev      Event
	evErr   bool
	payload []byte
}

// meterView is everything a Meter tells its user.
type meterView struct {
	Usage      bedrock.Usage
	Estimated  int
	Done       bool
	Exception  string
	StopReason string
	Metrics    InvocationMetrics
	HasMetrics bool
}

func viewOf(mt *Meter) meterView {
	m, ok := mt.Metrics()
	return meterView{mt.Usage(), mt.EstimatedOutput(), mt.Done(), mt.Exception(), mt.StopReason(), m, ok}
}

// meterStep is the meter after one frame, and whether observing it failed.
type meterStep struct {
	View meterView
	Err  bool
}

// scanAll feeds b to a Scanner in the given piece sizes (cycled), each
// piece in a buffer that is overwritten once the Scanner is drained (as the
// gateway reuses its read buffer), and meters every frame with ObserveFrame.
func scanAll(b []byte, sizes func() int) (frames []scanned, steps []meterStep, err error) {
	var s Scanner
	var mt Meter
	buf := make([]byte, 0, 64)
	for len(b) > 0 {
		n := min(max(sizes(), 1), len(b))
		buf = append(buf[:0], b[:n]...)
		b = b[n:]
		_, _ = s.Write(buf)
		for {
			f, ok, err := s.Next()
			if err != nil {
				return frames, steps, err
			}
			if !ok {
				break
			}
			ev, evErr := f.Event()
			frames = append(frames, scanned{ev, evErr != nil, append([]byte(nil), f.Payload...)})
			oerr := mt.ObserveFrame(&f)
			steps = append(steps, meterStep{viewOf(&mt), oerr != nil})
		}
		for i := range buf {
			buf[i] = 0xa5 // the Scanner must hold nothing of a drained piece
		}
	}
	return frames, steps, s.Close()
}

// sdkAll is the same through the SDK decoder, Parse and ObserveMessage.
func sdkAll(b []byte) (frames []scanned, steps []meterStep, err error) {
	ms, err := decodeAll(b)
	var mt Meter
	for _, m := range ms {
		ev, evErr := Parse(m)
		frames = append(frames, scanned{ev, evErr != nil, m.Payload})
		oerr := mt.ObserveMessage(m)
		steps = append(steps, meterStep{viewOf(&mt), oerr != nil})
	}
	return frames, steps, err
}

// errClass sorts the end of a stream: clean, truncated or corrupt.
func errClass(err error) string {
	switch {
	case err == nil || err == io.EOF:
		return "clean"
	case err == io.ErrUnexpectedEOF:
		return "truncated"
	case errors.Is(err, ErrCorrupt):
		return "corrupt"
	}
	return "unclassified: " + err.Error()
}

func compareScan(t *testing.T, b []byte, sizes func() int) {
	t.Helper()
	got, gotSteps, gotErr := scanAll(b, sizes)
	want, wantSteps, wantErr := sdkAll(b)
	opts := cmp.Options{cmp.AllowUnexported(scanned{}), cmp.Comparer(bytes.Equal)} // bytes.Equal: nil and empty alike, and fast
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Fatalf("frames (-sdk +scanner):\n%s", diff)
	}
	if diff := cmp.Diff(wantSteps, gotSteps); diff != "" {
		t.Fatalf("meter after each frame (-ObserveMessage +ObserveFrame):\n%s", diff)
	}
	if g, w := errClass(gotErr), errClass(wantErr); g != w {
		t.Fatalf("end of stream: scanner %s (%v), sdk %s (%v)", g, gotErr, w, wantErr)
	}
}

func TestScannerPieceSizes(t *testing.T) {
	ms := mixedMessages()
	ms = append(ms, invokeMessages()...)
	ms = append(ms, converseMessages()...)
	ms = append(ms, ChunkMessage(bytes.Repeat([]byte("y"), 70_000)))
	b := encodeAll(t, ms)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tt := range []struct {
		name  string
		sizes func() int
	}{
		{"whole stream", func() int { return len(b) }},
		{"byte by byte", func() int { return 1 }},
		{"prelude size", func() int { return 12 }},
		{"random 1..64", func() int { return 1 + rng.IntN(64) }},
		{"random 1..8192", func() int { return 1 + rng.IntN(8192) }},
	} {
		t.Run(tt.name, func(t *testing.T) { compareScan(t, b, tt.sizes) })
	}
}

func TestScannerEnds(t *testing.T) {
	inv := encodeAll(t, invokeMessages())
	corruptCRC := bytes.Clone(inv)
	corruptCRC[len(corruptCRC)-1] ^= 1
	badHeader := encodeAll(t, invokeMessages()[:1])
	badHeader[preludeLen+1+len(HeaderEventType)] = 42 // an unknown value type
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"clean", inv, "clean"},
		{"empty", nil, "clean"},
		{"truncated in a prelude", inv[:len(inv)-len(invokeEvents[len(invokeEvents)-1])-200], "truncated"},
		{"truncated in a payload", inv[:len(inv)-7], "truncated"},
		{"message CRC", corruptCRC, "corrupt"},
		{"absurd length", withPrelude(make([]byte, 12), MaxFrameLen+1, 0), "corrupt"},
		{"unknown header type", reCRC(badHeader), "corrupt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := scanAll(tt.b, func() int { return 100 })
			if got := errClass(err); got != tt.want {
				t.Errorf("end = %s (%v), want %s", got, err, tt.want)
			}
			compareScan(t, tt.b, func() int { return 100 })
		})
	}
}

// TestScannerHeaderQuirks: header blocks the SDK reads in its own way.
func TestScannerHeaderQuirks(t *testing.T) {
	str := func(name, v string) []byte {
		b := []byte{byte(len(name))}
		b = append(b, name...)
		b = append(b, hvString, 0, byte(len(v)))
		return append(b, v...)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name    string
		headers []byte
	}{
		{"name length alone at the end", cat(str(":message-type", "event"), str(":event-type", "x"), []byte{5})},
		{"name cut short", cat(str(":message-type", "event"), []byte{5, 'a', 'b'})},
		{"empty name without value", cat(str(":message-type", "event"), []byte{0})},
		{"empty name", cat([]byte{0, hvTrue}, str(":message-type", "event"), str(":event-type", "chunk"))},
		{"repeated, last wins", cat(str(":message-type", "exception"), str(":exception-type", "a"), str(":message-type", "event"), str(":event-type", "b"))},
		{"last is not a string", cat(str(":message-type", "event"), []byte{13}, []byte(":message-type"), []byte{hvInt32, 0, 0, 0, 1})},
		{"every type", cat([]byte{1, 'a', hvFalse, 1, 'b', hvByte, 1, 1, 'c', hvInt16, 0, 1, 1, 'd', hvInt64, 0, 0, 0, 0, 0, 0, 0, 1,
			1, 'e', hvTimestamp, 0, 0, 0, 0, 0, 0, 0, 1, 1, 'f', hvUUID}, make([]byte, 16), []byte{1, 'g', hvBytes, 0, 1, 'x'},
			str(":message-type", "error"), str(":error-code", "E"))},
		{"uuid cut short", cat(str(":message-type", "event"), []byte{1, 'f', hvUUID, 1, 2})},
		{"string cut short", cat(str(":message-type", "event"), []byte{1, 'g', hvString, 0, 9, 'x'})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			compareScan(t, frameOf(tt.headers, []byte(`{"bytes":"e30="}`)), func() int { return 7 })
		})
	}
}

// frameOf wraps a header block and a payload in a frame with valid lengths
// and checksums.
func frameOf(headers, payload []byte) []byte {
	frame := make([]byte, preludeLen, minFrame+len(headers)+len(payload))
	withPrelude(frame, uint32(minFrame+len(headers)+len(payload)), uint32(len(headers)))
	frame = append(frame, headers...)
	frame = append(frame, payload...)
	return reCRC(append(frame, 0, 0, 0, 0))
}

// TestObserveFrameAllocations: metering a chunk frame allocates nothing
// once the Meter's buffer has grown.
func TestObserveFrameAllocations(t *testing.T) {
	stream := encodeAll(t, invokeMessages())
	var s Scanner
	var mt Meter
	run := func() {
		_, _ = s.Write(stream)
		for {
			f, ok, err := s.Next()
			if err != nil || !ok {
				break
			}
			if err := mt.ObserveFrame(&f); err != nil {
				t.Fatal(err)
			}
		}
	}
	run()
	if a := testing.AllocsPerRun(20, run); a != 0 {
		t.Errorf("%v allocations per %d frames, want 0", a, len(invokeEvents))
	}
}

// FuzzScanner: arbitrary bytes in arbitrary pieces give what the SDK path
// gives.
func FuzzScanner(f *testing.F) {
	addStreamSeeds(f, func(b []byte) { f.Add(b, uint8(1)); f.Add(b, uint8(13)) })
	f.Fuzz(func(t *testing.T, b []byte, piece uint8) {
		compareScan(t, b, func() int { return int(piece) })
	})
}

// FuzzScanFrameBody reaches past the checksums, as FuzzFrameBody does:
// arbitrary headers and payload in a frame with valid lengths and CRCs, and
// the payload as every kind of metered event.
func FuzzScanFrameBody(f *testing.F) {
	for _, m := range mixedMessages() {
		var h bytes.Buffer
		if err := eventstream.EncodeHeaders(&h, m.Headers); err != nil {
			f.Fatal(err)
		}
		f.Add(h.Bytes(), m.Payload)
	}
	f.Fuzz(func(t *testing.T, headers, payload []byte) {
		if len(headers) > MaxHeadersLen {
			return
		}
		compareScan(t, frameOf(headers, payload), func() int { return 9 })
		var ms []Message
		for _, typ := range []string{EventTypeChunk, EventContentBlockDelta, EventMessageStop, EventMetadata} {
			ms = append(ms, EventMessage(typ, payload))
		}
		ms = append(ms, ChunkMessage(payload))
		compareScan(t, encodeAll(t, ms), func() int { return 64 })
	})
}

// TestScannerUndrainedWrites: Write before Next has drained the previous
// piece keeps every byte, in order.
func TestScannerUndrainedWrites(t *testing.T) {
	ms := append(invokeMessages(), converseMessages()...)
	b := encodeAll(t, ms)
	want, _, _ := sdkAll(b)
	for _, pieces := range []int{1, 2, 3, 7} {
		var s Scanner
		var got []scanned
		size := len(b)/pieces + 1
		for i, rest := 0, b; len(rest) > 0; i++ {
			n := min(size, len(rest))
			_, _ = s.Write(bytes.Clone(rest[:n])) // each piece stays untouched
			rest = rest[n:]
			if i%2 == 0 && len(rest) > 0 {
				continue // the next Write comes before draining
			}
			for {
				f, ok, err := s.Next()
				if err != nil {
					t.Fatalf("%d pieces: %v", pieces, err)
				}
				if !ok {
					break
				}
				ev, evErr := f.Event()
				got = append(got, scanned{ev, evErr != nil, bytes.Clone(f.Payload)})
			}
		}
		if err := s.Close(); err != nil {
			t.Errorf("%d pieces: Close = %v", pieces, err)
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(scanned{}), cmp.Comparer(bytes.Equal)); diff != "" {
			t.Errorf("%d pieces (-sdk +scanner):\n%s", pieces, diff)
		}
	}
}
