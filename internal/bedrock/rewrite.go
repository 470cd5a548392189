package bedrock

import "strconv"

// RewriteInvoke returns a copy of body with max_tokens set to maxTokens
// (inserted when absent) and, when the request uses enabled thinking and
// budget > 0, thinking.budget_tokens set to budget. It splices the new
// numbers into the original bytes, so every other byte, anthropic_beta and
// anthropic_version included, is unchanged. It refuses (ValidationException)
// a body ReadInvoke refuses and values that would make the result invalid:
// maxTokens outside [1, MaxOutputLimit], or an enabled thinking budget not
// in [MinThinkingBudget, maxTokens).
func RewriteInvoke(body []byte, maxTokens, budget int) ([]byte, error) {
	return rewrite(body, invokeBody, maxTokens, budget)
}

// RewriteConverse is RewriteInvoke for a Converse body: it sets
// inferenceConfig.maxTokens (creating inferenceConfig when needed) and
// additionalModelRequestFields.thinking.budget_tokens.
func RewriteConverse(body []byte, maxTokens, budget int) ([]byte, error) {
	return rewrite(body, converseBody, maxTokens, budget)
}

// edit replaces body[start:end] with pre, the number n, and post.
type edit struct {
	start, end int
	pre, post  string
	n          int
}

func rewrite(body []byte, kind bodyKind, maxTokens, budget int) ([]byte, error) {
	f, err := scanRequest(body, kind)
	if err != nil {
		return nil, malformed(err)
	}
	cur, err := f.request(body, kind)
	if err != nil {
		return nil, err
	}
	if maxTokens < 1 || maxTokens > MaxOutputLimit {
		return nil, Errorf(ValidationException, "max_tokens %d is outside [1, %d]", maxTokens, MaxOutputLimit)
	}
	var edits [2]edit
	n := 0
	name := `"max_tokens":`
	if kind == converseBody {
		name = `"maxTokens":`
	}
	switch {
	case f.maxTokens.set:
		edits[n] = edit{start: f.maxTokens.start, end: f.maxTokens.end, n: maxTokens}
	case kind == converseBody && f.inference.set && body[f.inference.start] == '{':
		at := f.inference.start + 1
		edits[n] = edit{start: at, end: at, pre: name, n: maxTokens, post: sep(f.inferenceEmpty)}
	case kind == converseBody && f.inference.set: // null
		edits[n] = edit{start: f.inference.start, end: f.inference.end, pre: "{" + name, n: maxTokens, post: "}"}
	case kind == converseBody:
		edits[n] = edit{start: f.open + 1, end: f.open + 1, pre: `"inferenceConfig":{` + name, n: maxTokens, post: "}" + sep(f.empty)}
	default:
		edits[n] = edit{start: f.open + 1, end: f.open + 1, pre: name, n: maxTokens, post: sep(f.empty)}
	}
	n++
	if cur.Thinking == ThinkingEnabled {
		b := cur.ThinkingBudget
		if budget > 0 {
			b = budget
		}
		if b < MinThinkingBudget || b >= maxTokens {
			return nil, Errorf(ValidationException, "thinking budget %d is outside [%d, max_tokens %d)", b, MinThinkingBudget, maxTokens)
		}
		edits[n] = edit{start: f.budget.start, end: f.budget.end, n: b}
		n++
		if edits[1].start < edits[0].start {
			edits[0], edits[1] = edits[1], edits[0]
		}
	}
	out := make([]byte, 0, len(body)+48)
	last := 0
	for _, e := range edits[:n] {
		out = append(out, body[last:e.start]...)
		out = append(out, e.pre...)
		out = strconv.AppendInt(out, int64(e.n), 10)
		out = append(out, e.post...)
		last = e.end
	}
	return append(out, body[last:]...), nil
}

// sep is what follows a member inserted first into an object.
func sep(empty bool) string {
	if empty {
		return ""
	}
	return ","
}
