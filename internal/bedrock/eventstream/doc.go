// Package eventstream speaks Bedrock's streaming wire format,
// application/vnd.amazon.eventstream (BEDROCK.md section 3 "Streaming
// responses"): it encodes the frames the emulator sends, decodes and splits
// the frames the gateway passes through, and turns them into typed events
// (InvokeModel chunks with their Anthropic stream event inside, ConverseStream
// events, mid-stream exceptions) that a Meter adds up into token usage.
//
// Framing and checksums are aws-sdk-go-v2's aws/protocol/eventstream codec;
// this package only reads the 12-byte prelude to know where a frame ends and
// to refuse absurd lengths before buffering them.
//
// It must not do I/O of its own (callers hand it readers, writers and byte
// slices), hold quota state, or know about HTTP: the gateway decides what to
// do with a usage figure or a broken stream. It imports only package bedrock
// of Headroom's.
package eventstream
