package bedrock

// Response headers Bedrock sets on InvokeModel and Converse responses
// (BEDROCK.md section 3).
const (
	HeaderRequestID        = "X-Amzn-Requestid"
	HeaderErrorType        = "X-Amzn-Errortype"
	HeaderInputTokens      = "X-Amzn-Bedrock-Input-Token-Count"
	HeaderOutputTokens     = "X-Amzn-Bedrock-Output-Token-Count"
	HeaderLatency          = "X-Amzn-Bedrock-Invocation-Latency"
	HeaderCacheReadTokens  = "X-Amzn-Bedrock-Cache-Read-Input-Token-Count"
	HeaderCacheWriteTokens = "X-Amzn-Bedrock-Cache-Write-Input-Token-Count"
	ContentTypeEventStream = "application/vnd.amazon.eventstream"
)

// Operation is one of the Bedrock Runtime operations Headroom serves.
type Operation int

const (
	OpInvoke Operation = iota + 1
	OpInvokeStream
	OpConverse
	OpConverseStream
	OpCountTokens
	// OpMessages is the Anthropic Messages API (POST /v1/messages, and
	// /anthropic/v1/messages on both endpoints); whether it streams is the
	// body's "stream" member, not the operation.
	OpMessages
	// OpCountMessageTokens is POST /v1/messages/count_tokens: free, like
	// OpCountTokens.
	OpCountMessageTokens
)

func (o Operation) String() string {
	switch o {
	case OpInvoke:
		return "InvokeModel"
	case OpInvokeStream:
		return "InvokeModelWithResponseStream"
	case OpConverse:
		return "Converse"
	case OpConverseStream:
		return "ConverseStream"
	case OpCountTokens:
		return "CountTokens"
	case OpMessages:
		return "Messages"
	case OpCountMessageTokens:
		return "CountMessageTokens"
	}
	return "Unknown"
}

// Streaming reports whether the operation answers with an event stream.
func (o Operation) Streaming() bool { return o == OpInvokeStream || o == OpConverseStream }

// Anthropic reports whether the operation is one of the Anthropic Messages
// API's, whose clients read Anthropic-shaped errors and server-sent events.
func (o Operation) Anthropic() bool { return o == OpMessages || o == OpCountMessageTokens }

// Free reports whether the operation costs no quota (token counting).
func (o Operation) Free() bool { return o == OpCountTokens || o == OpCountMessageTokens }

// ParseMessagesPath recognises the Messages API paths: /v1/messages and
// /anthropic/v1/messages (the base URL Bedrock documents ends in
// /anthropic; Claude Code appends /v1/messages to whatever base it is
// given), each with /count_tokens. ok is false for any other path.
func ParseMessagesPath(path string) (op Operation, ok bool) {
	if len(path) > len("/anthropic") && path[:len("/anthropic")] == "/anthropic" {
		path = path[len("/anthropic"):]
	}
	switch path {
	case "/v1/messages":
		return OpMessages, true
	case "/v1/messages/count_tokens":
		return OpCountMessageTokens, true
	}
	return 0, false
}

// Converse reports whether the operation takes a Converse body.
func (o Operation) Converse() bool { return o == OpConverse || o == OpConverseStream }

// ParsePath splits a runtime path "/model/{modelId}/{action}" into the raw
// (still escaped) model segment and the operation. ok is false for any other path.
func ParsePath(path string) (rawModel string, op Operation, ok bool) {
	const prefix = "/model/"
	if len(path) <= len(prefix) || path[:len(prefix)] != prefix {
		return "", 0, false
	}
	rest := path[len(prefix):]
	// The action is the last segment; the model ID may itself contain '/'
	// when a client sends an ARN unescaped.
	i := len(rest) - 1
	for i >= 0 && rest[i] != '/' {
		i--
	}
	if i <= 0 {
		return "", 0, false
	}
	rawModel, action := rest[:i], rest[i+1:]
	switch action {
	case "invoke":
		op = OpInvoke
	case "invoke-with-response-stream":
		op = OpInvokeStream
	case "converse":
		op = OpConverse
	case "converse-stream":
		op = OpConverseStream
	case "count-tokens":
		op = OpCountTokens
	default:
		return "", 0, false
	}
	return rawModel, op, true
}
