package eventstream

import (
	"bytes"
	"io"
	"testing"
)

// typicalDelta is a content_block_delta of a few words: its chunk frame is
// about 200 bytes, the common case on the streaming hot path.
var typicalDelta = []byte(`{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Here are the files in the"}}`)

func BenchmarkEncodeChunk(b *testing.B) {
	enc := NewEncoder()
	frame := encodeAll(b, []Message{ChunkMessage(typicalDelta)})
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if err := enc.Encode(io.Discard, ChunkMessage(typicalDelta)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(frame)), "frame-bytes")
}

// BenchmarkSplitterChunk is the gateway's per-frame cost of cutting a
// passed-through stream back into messages: one Write and one Next.
func BenchmarkSplitterChunk(b *testing.B) {
	frame := encodeAll(b, []Message{ChunkMessage(typicalDelta)})
	var s Splitter
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Write(frame); err != nil {
			b.Fatal(err)
		}
		if _, ok, err := s.Next(); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
	b.ReportMetric(float64(len(frame)), "frame-bytes")
}

func BenchmarkDecoderChunk(b *testing.B) {
	frame := encodeAll(b, []Message{ChunkMessage(typicalDelta)})
	stream := bytes.Repeat(frame, 1000)
	r := bytes.NewReader(stream)
	d := NewDecoder(r)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Next(); err != nil {
			r.Reset(stream)
			d = NewDecoder(r)
		}
	}
}

func BenchmarkParseChunk(b *testing.B) {
	payload := ChunkMessage(typicalDelta).Payload
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseChunk(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMeterFrame is the whole metering path per frame: split, parse
// headers, parse the chunk, update the usage.
func BenchmarkMeterFrame(b *testing.B) {
	frame := encodeAll(b, []Message{ChunkMessage(typicalDelta)})
	var s Splitter
	var m Meter
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = s.Write(frame)
		msg, _, _ := s.Next()
		if err := m.ObserveMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseChunkFast is ParseChunk's one-pass path, as the Meter uses
// it for frames found by a Scanner.
func BenchmarkParseChunkFast(b *testing.B) {
	payload := ChunkMessage(typicalDelta).Payload
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseChunkInto(payload, &buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanFrame is the zero-copy frame path alone: find the frame,
// check both checksums, read its string headers.
func BenchmarkScanFrame(b *testing.B) {
	frame := encodeAll(b, []Message{ChunkMessage(typicalDelta)})
	var s Scanner
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = s.Write(frame)
		if _, ok, err := s.Next(); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkScanMeterFrame is BenchmarkMeterFrame on the gateway's path:
// Scanner and Meter.ObserveFrame.
func BenchmarkScanMeterFrame(b *testing.B) {
	frame := encodeAll(b, []Message{ChunkMessage(typicalDelta)})
	var s Scanner
	var m Meter
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = s.Write(frame)
		f, _, _ := s.Next()
		if err := m.ObserveFrame(&f); err != nil {
			b.Fatal(err)
		}
	}
}
