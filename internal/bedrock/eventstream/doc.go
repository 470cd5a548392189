// Package eventstream speaks Bedrock's streaming wire format,
// application/vnd.amazon.eventstream (BEDROCK.md section 3 "Streaming
// responses"): it encodes the frames the emulator sends, decodes and splits
// the frames the gateway passes through, and turns them into typed events
// (InvokeModel chunks with their Anthropic stream event inside, ConverseStream
// events, mid-stream exceptions) that a Meter adds up into token usage.
//
// Encoding and decoding whole messages is aws-sdk-go-v2's
// aws/protocol/eventstream codec; this package only reads the 12-byte
// prelude to know where a frame ends and to refuse absurd lengths before
// buffering them. The one exception is the gateway's metering path, which
// must cost a few hundred nanoseconds per frame, not microseconds: Scanner
// finds frames in place and checks lengths and both CRC-32s with hash/crc32,
// parsing only string headers, and Meter.ObserveFrame reads an Anthropic
// chunk in one pass into a reused buffer. Both are held to the SDK-based path
// (Splitter, Parse, ParseChunk) by equivalence tests and fuzzing: same
// frames, events, usage and errors on every input.
//
// It must not do I/O of its own (callers hand it readers, writers and byte
// slices), hold quota state, or know about HTTP: the gateway decides what to
// do with a usage figure or a broken stream. It imports only package bedrock
// of Headroom's.
package eventstream
