package bedrock

// Input-token estimation.
//
// Admission must charge a request's input tokens before Bedrock has counted
// them, so Headroom estimates them while the request readers scan the body.
// The rule is deliberately simple, so that it is cheap (it looks only at the
// length of each string, which the scanner knows anyway), deterministic and
// identical in the gateway and the emulator:
//
//   - Only the members the model reads are counted: system, messages, tools
//     and tool_choice (InvokeModel), system, messages and toolConfig
//     (Converse). Fields such as anthropic_version, anthropic_beta,
//     max_tokens, thinking, metadata and inferenceConfig count nothing.
//   - Inside them, every string, key or value, counts one token per
//     bytesPerToken bytes of its raw JSON text (escapes included), rounded
//     up, and every number, true, false and null counts one token. Counting
//     keys and the short type strings ("role", "user", "type", "text")
//     stands in for the few tokens of framing the model sees per message
//     and per content block.
//   - Base64 payloads (a "data" string in an object whose "type" is
//     "base64", or a Converse "bytes" string) count one token per
//     binaryBytesPerToken encoded bytes, at most maxBinaryTokens per payload.
//     Claude charges an image about width×height/750 tokens after scaling
//     it to at most about 1.15 megapixels, so about 1,600 at most; counting
//     base64 as text would instead give a 1 MB screenshot 330,000 tokens.
//
// Expected error, measured against Anthropic's public legacy tokenizer
// (npm @anthropic-ai/tokenizer) on the text of each body: +9% on the
// 85.5 KB body Claude Code 2.1 really sends on its first call (21,018 vs
// 19,254), +1% on bedrocktest's generated 86 KB body, and from -13% (Go
// source, Markdown) to +20% (licence prose) on 40 KB samples of single
// files; so about ±20% on English, code and JSON schemas. It errs low on
// text dominated by non-Latin scripts (CJK: 3 UTF-8 bytes per character,
// often a token or more each, so up to about 2x low). Small images are
// counted high (a 100×100 icon costs Claude about 13 tokens, a few hundred
// here) and multi-page PDFs low (roughly 1,500–3,000 tokens per page).
// Claude 3 and later models use tokenizers that are not public, so their
// true error can only be measured against Bedrock's own counts
// (CountTokens, usage).
// Settlement charges Bedrock's reported usage, so the estimate only moves
// how much of a reservation is given back at the end.
const (
	bytesPerToken       = 4
	scalarTokens        = 1
	binaryBytesPerToken = 32
	maxBinaryTokens     = 1600
)

// textTokens is the estimate for a string of n raw bytes.
func textTokens(n int) int { return (n + bytesPerToken - 1) / bytesPerToken }

// binaryTokens is the estimate for a base64 payload of n bytes.
func binaryTokens(n int) int {
	return min((n+binaryBytesPerToken-1)/binaryBytesPerToken, maxBinaryTokens)
}

// EstimateTokens estimates the input tokens of an InvokeModel Anthropic body
// or a Converse body with the rule described above; it is the InputTokens
// that ReadInvoke and ReadConverse return. It does not validate: for
// malformed JSON it returns the estimate of the part before the first error.
func EstimateTokens(body []byte) int {
	f, _ := scanRequest(body, invokeBody)
	return f.tokens
}
