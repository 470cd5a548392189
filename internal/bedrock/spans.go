package bedrock

import "strconv"

// Spans is where one read of a request body found the members a rewrite
// edits, so that RewriteInvokeAt and RewriteConverseAt splice the new
// numbers in without scanning the body again: on the gateway's request path
// an 86 KB body is then scanned once, not twice.
//
// A Spans describes exactly one body, the one it was read from; the zero
// Spans describes none.
type Spans struct {
	kind      bodyKind
	size      int // len of the body read; 0 for the zero Spans
	open      int // index of the body's '{'
	close     int // index of the body's '}'
	empty     bool
	maxTokens span
	budget    span
	inference span // Converse inferenceConfig
	// inferenceNull: inferenceConfig is null (it is an object otherwise).
	inferenceNull  bool
	inferenceEmpty bool
	// thinking: the request uses enabled thinking with budget curBudget.
	thinking  bool
	curBudget int
	// version is anthropic_version (InvokeModel and Messages bodies).
	version span
}

func (f *fields) spans(body []byte, kind bodyKind, r Request) Spans {
	return Spans{
		kind: kind, size: len(body), open: f.open, close: f.close, empty: f.empty,
		maxTokens: f.maxTokens, budget: f.budget,
		inference: f.inference, inferenceNull: f.inference.set && body[f.inference.start] != '{', inferenceEmpty: f.inferenceEmpty,
		thinking: r.Thinking == ThinkingEnabled, curBudget: r.ThinkingBudget,
		version: f.version,
	}
}

// ReadInvokeSpans is ReadInvoke that also returns where the members
// RewriteInvokeAt edits are.
func ReadInvokeSpans(body []byte) (Request, Spans, error) {
	return readSpans(body, invokeBody)
}

// ReadConverseSpans is ReadConverse that also returns where the members
// RewriteConverseAt edits are.
func ReadConverseSpans(body []byte) (Request, Spans, error) {
	return readSpans(body, converseBody)
}

// ReadMessagesSpans is ReadMessages that also returns where the members
// RewriteMessagesAt edits are.
func ReadMessagesSpans(body []byte) (MessagesRequest, Spans, error) {
	f, err := scanRequest(body, messagesBody)
	if err != nil {
		return MessagesRequest{}, Spans{}, malformed(err)
	}
	r, err := f.request(body, messagesBody)
	if err != nil {
		return MessagesRequest{}, Spans{}, err
	}
	m, err := f.messagesRequest(body, r)
	if err != nil {
		return MessagesRequest{}, Spans{}, err
	}
	return m, f.spans(body, messagesBody, r), nil
}

// RewriteMessagesAt is RewriteInvokeAt for a Messages body read by
// ReadMessagesSpans. When version is not empty and the body has no
// anthropic_version, it also inserts "anthropic_version":version (what
// bedrock-runtime's Messages API wants in the body); a version the client
// sent is kept. maxTokens 0 leaves max_tokens and the budget as they are
// (a body that only needs the version).
func RewriteMessagesAt(body []byte, sp Spans, maxTokens, budget int, version string) ([]byte, error) {
	if sp.size == 0 || sp.size != len(body) || sp.kind != messagesBody {
		return nil, Errorf(InternalServerException, "rewrite: the spans were not read from this %d-byte Messages body", len(body))
	}
	var edits [3]edit
	n := 0
	if maxTokens != 0 {
		var err error
		var e [2]edit
		var k int
		if e, k, err = sp.edits(maxTokens, budget); err != nil {
			return nil, err
		}
		n = copy(edits[:], e[:k])
	}
	if version != "" && !sp.version.set {
		// Inserted last, before the closing brace, so that splicing it in
		// moves one byte, not the whole body (an 86 KB memmove per request
		// at the front). A Messages body always has members (messages is
		// required), so the inserted one follows a comma.
		at := sp.close
		edits[n] = edit{start: at, end: at, pre: `,"anthropic_version":` + strconv.Quote(version), text: true}
		n++
		for k := n - 1; k > 0 && edits[k].start < edits[k-1].start; k-- {
			edits[k], edits[k-1] = edits[k-1], edits[k]
		}
	}
	if n == 0 {
		return body, nil
	}
	if out := spliceInPlace(body, edits[:n]); out != nil {
		return out, nil
	}
	return spliceCopy(body, edits[:n]), nil
}

func readSpans(body []byte, kind bodyKind) (Request, Spans, error) {
	f, err := scanRequest(body, kind)
	if err != nil {
		return Request{}, Spans{}, malformed(err)
	}
	r, err := f.request(body, kind)
	if err != nil {
		return Request{}, Spans{}, err
	}
	return r, f.spans(body, kind, r), nil
}

// RewriteInvokeAt is RewriteInvoke for a body just read by ReadInvokeSpans,
// with the Spans it returned: same result, same checks of maxTokens and
// budget, no second scan. It edits body in place when body's capacity has
// room for the result (the gateway reads bodies with a little spare
// capacity), moving only the bytes after each edit, and otherwise returns a
// new slice; either way the caller must use only the returned slice from
// then on. Spans read from another body, or from a Converse body, are
// refused.
func RewriteInvokeAt(body []byte, sp Spans, maxTokens, budget int) ([]byte, error) {
	return rewriteAt(body, sp, invokeBody, maxTokens, budget)
}

// RewriteConverseAt is RewriteConverse for a body just read by
// ReadConverseSpans, like RewriteInvokeAt.
func RewriteConverseAt(body []byte, sp Spans, maxTokens, budget int) ([]byte, error) {
	return rewriteAt(body, sp, converseBody, maxTokens, budget)
}

func rewriteAt(body []byte, sp Spans, kind bodyKind, maxTokens, budget int) ([]byte, error) {
	if sp.size == 0 || sp.size != len(body) || sp.kind != kind {
		// A programming error, not the client's: the spans say nothing
		// about these bytes.
		return nil, Errorf(InternalServerException, "rewrite: the spans were not read from this %d-byte body", len(body))
	}
	edits, n, err := sp.edits(maxTokens, budget)
	if err != nil {
		return nil, err
	}
	if out := spliceInPlace(body, edits[:n]); out != nil {
		return out, nil
	}
	return spliceCopy(body, edits[:n]), nil
}
