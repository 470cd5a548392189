package eventstream

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Seeds: whole streams of every kind, a truncated one and a corrupt one.
func addStreamSeeds(f *testing.F, add func([]byte)) {
	inv := encodeAll(f, invokeMessages())
	add(inv)
	add(encodeAll(f, converseMessages()))
	add(encodeAll(f, mixedMessages()))
	add(inv[:len(inv)-7])
	add(withPrelude(encodeAll(f, invokeMessages()[:1]), MaxFrameLen+1, 0))
	add(nil)
}

// FuzzSplitter: arbitrary bytes in arbitrary pieces never panic, never
// leave more than one partial frame buffered once Next is drained, and give
// exactly what the Decoder gives on the same bytes.
func FuzzSplitter(f *testing.F) {
	addStreamSeeds(f, func(b []byte) { f.Add(b, uint8(1)); f.Add(b, uint8(13)) })
	f.Fuzz(func(t *testing.T, b []byte, piece uint8) {
		sizes := func() int { return int(piece) }
		got, gotErr := split(t, b, sizes)
		want, wantErr := decodeAll(b)
		if !sameMessages(want, got) {
			t.Fatalf("splitter vs decoder (-decoder +splitter):\n%s", cmp.Diff(want, got, cmpopts.EquateEmpty()))
		}
		switch {
		case wantErr == io.EOF:
			if gotErr != nil {
				t.Fatalf("decoder ended cleanly, splitter: %v", gotErr)
			}
		case wantErr == io.ErrUnexpectedEOF:
			if gotErr != io.ErrUnexpectedEOF {
				t.Fatalf("decoder: truncated, splitter: %v", gotErr)
			}
		case errors.Is(wantErr, ErrCorrupt):
			if !errors.Is(gotErr, ErrCorrupt) {
				t.Fatalf("decoder: %v, splitter: %v", wantErr, gotErr)
			}
		default:
			t.Fatalf("decoder returned an unclassified error: %v", wantErr)
		}
	})
}

// sameMessages is cmp.Equal with EquateEmpty, fast enough for fuzzing
// (cmp walks payloads byte by byte through reflection).
func sameMessages(a, b []Message) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].Payload, b[i].Payload) || len(a[i].Headers) != len(b[i].Headers) {
			return false
		}
		for j, h := range a[i].Headers {
			if !reflect.DeepEqual(h, b[i].Headers[j]) {
				return false
			}
		}
	}
	return true
}

// FuzzDecoder: arbitrary bytes never panic; errors are only the three
// documented kinds; anything decoded re-encodes to a frame that decodes to
// the same message, and parses and meters without panicking.
func FuzzDecoder(f *testing.F) {
	addStreamSeeds(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := decodeAll(b)
		if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("unclassified error %v", err)
		}
		var meter Meter
		for _, m := range ms {
			again, err := decodeAll(encodeAll(t, []Message{m}))
			if err != io.EOF || len(again) != 1 {
				t.Fatalf("re-decoding %+v: %d messages, %v", m, len(again), err)
			}
			if !sameMessages([]Message{m}, again) {
				t.Fatalf("re-encode round trip (-first +second):\n%s", cmp.Diff(m, again[0], cmpopts.EquateEmpty()))
			}
			_ = meter.ObserveMessage(m)
		}
		u := meter.Usage()
		if u.InputTokens < 0 || u.OutputTokens < 0 {
			t.Fatalf("negative usage %+v", u)
		}
	})
}

// FuzzParseChunk: arbitrary payloads never panic; a chunk built from any
// event parses like the event itself.
func FuzzParseChunk(f *testing.F) {
	for _, e := range invokeEvents {
		f.Add([]byte(e))
		f.Add(ChunkMessage([]byte(e)).Payload)
	}
	f.Add([]byte(`{"bytes":"!!"}`))
	f.Add([]byte(`{"bytes":"e30=","p":"abc"}`))
	f.Add([]byte(`{"bytes":"e30=","p":"ab\\c"}`))
	f.Add([]byte(`{"bytes":"e3\n0="}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, fastErr := chunkBytes(b)
		slow, slowErr := chunkBytesJSON(b)
		if (fastErr == nil) != (slowErr == nil) || !bytes.Equal(fast, slow) {
			t.Fatalf("chunkBytes(%q) = %q, %v; encoding/json gives %q, %v", b, fast, fastErr, slow, slowErr)
		}
		if ev, err := ParseChunk(b); err == nil {
			if ev.Type == "" || ev.DeltaBytes < 0 || ev.DeltaBytes > len(b) {
				t.Fatalf("ParseChunk accepted %q as %+v", b, ev)
			}
		}
		want, wantErr := ParseAnthropicEvent(b)
		got, gotErr := ParseChunk(ChunkMessage(b).Payload)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("event err %v, chunk err %v", wantErr, gotErr)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("chunk vs event (-event +chunk):\n%s", diff)
		}
	})
}

// FuzzFrameBody reaches past the checksums, which random bytes almost never
// satisfy: it wraps arbitrary header bytes and payload in a frame with valid
// lengths and CRCs, so the SDK's header decoder, Parse and the Meter see
// arbitrary content. Decoder and Splitter must agree and never panic, and
// metered usage is never negative.
func FuzzFrameBody(f *testing.F) {
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
		frame := make([]byte, preludeLen, minFrame+len(headers)+len(payload))
		withPrelude(frame, uint32(minFrame+len(headers)+len(payload)), uint32(len(headers)))
		frame = append(frame, headers...)
		frame = append(frame, payload...)
		frame = reCRC(append(frame, 0, 0, 0, 0))

		want, wantErr := decodeAll(frame)
		got, gotErr := split(t, frame, func() int { return 9 })
		if !sameMessages(want, got) || (wantErr == io.EOF) != (gotErr == nil) {
			t.Fatalf("decoder %d msgs %v; splitter %d msgs %v", len(want), wantErr, len(got), gotErr)
		}
		if wantErr != io.EOF && !errors.Is(wantErr, ErrCorrupt) {
			t.Fatalf("unclassified error %v", wantErr)
		}
		var meter Meter
		for _, m := range want {
			_ = meter.ObserveMessage(m)
		}
		// The same payload as every kind of metered event.
		for _, typ := range []string{EventTypeChunk, EventContentBlockDelta, EventMessageStop, EventMetadata} {
			_ = meter.ObserveMessage(EventMessage(typ, payload))
		}
		_ = meter.ObserveMessage(ChunkMessage(payload))
		u := meter.Usage()
		if u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadInputTokens < 0 || u.CacheWriteInputTokens < 0 {
			t.Fatalf("negative usage %+v", u)
		}
	})
}
