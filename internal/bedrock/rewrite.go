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
//
// It scans body again; a caller that has just read it with ReadInvokeSpans
// rewrites with RewriteInvokeAt instead.
func RewriteInvoke(body []byte, maxTokens, budget int) ([]byte, error) {
	return rewrite(body, invokeBody, maxTokens, budget)
}

// RewriteConverse is RewriteInvoke for a Converse body: it sets
// inferenceConfig.maxTokens (creating inferenceConfig when needed) and
// additionalModelRequestFields.thinking.budget_tokens.
func RewriteConverse(body []byte, maxTokens, budget int) ([]byte, error) {
	return rewrite(body, converseBody, maxTokens, budget)
}

func rewrite(body []byte, kind bodyKind, maxTokens, budget int) ([]byte, error) {
	_, sp, err := readSpans(body, kind)
	if err != nil {
		return nil, err
	}
	edits, n, err := sp.edits(maxTokens, budget)
	if err != nil {
		return nil, err
	}
	return spliceCopy(body, edits[:n]), nil
}

// edit replaces body[start:end] with pre, the number n, and post; with
// text set, with pre alone.
type edit struct {
	start, end int
	pre, post  string
	n          int
	text       bool
}

// size is the length of the edit's replacement text.
func (e edit) size() int {
	if e.text {
		return len(e.pre)
	}
	var buf [20]byte
	return len(e.pre) + len(strconv.AppendInt(buf[:0], int64(e.n), 10)) + len(e.post)
}

func (e edit) appendTo(out []byte) []byte {
	out = append(out, e.pre...)
	if e.text {
		return out
	}
	out = strconv.AppendInt(out, int64(e.n), 10)
	return append(out, e.post...)
}

// edits plans the splices that set maxTokens and the thinking budget, in
// order of position, checking the values as RewriteInvoke documents.
func (sp Spans) edits(maxTokens, budget int) ([2]edit, int, error) {
	var edits [2]edit
	if maxTokens < 1 || maxTokens > MaxOutputLimit {
		return edits, 0, Errorf(ValidationException, "max_tokens %d is outside [1, %d]", maxTokens, MaxOutputLimit)
	}
	n := 0
	name := `"max_tokens":`
	if sp.kind == converseBody {
		name = `"maxTokens":`
	}
	switch {
	case sp.maxTokens.set:
		edits[n] = edit{start: sp.maxTokens.start, end: sp.maxTokens.end, n: maxTokens}
	case sp.kind == converseBody && sp.inference.set && !sp.inferenceNull:
		at := sp.inference.start + 1
		edits[n] = edit{start: at, end: at, pre: name, n: maxTokens, post: sep(sp.inferenceEmpty)}
	case sp.kind == converseBody && sp.inference.set: // null
		edits[n] = edit{start: sp.inference.start, end: sp.inference.end, pre: "{" + name, n: maxTokens, post: "}"}
	case sp.kind == converseBody:
		edits[n] = edit{start: sp.open + 1, end: sp.open + 1, pre: `"inferenceConfig":{` + name, n: maxTokens, post: "}" + sep(sp.empty)}
	default:
		edits[n] = edit{start: sp.open + 1, end: sp.open + 1, pre: name, n: maxTokens, post: sep(sp.empty)}
	}
	n++
	if sp.thinking {
		b := sp.curBudget
		if budget > 0 {
			b = budget
		}
		if b < MinThinkingBudget || b >= maxTokens {
			return edits, 0, Errorf(ValidationException, "thinking budget %d is outside [%d, max_tokens %d)", b, MinThinkingBudget, maxTokens)
		}
		edits[n] = edit{start: sp.budget.start, end: sp.budget.end, n: b}
		n++
		if edits[1].start < edits[0].start {
			edits[0], edits[1] = edits[1], edits[0]
		}
	}
	return edits, n, nil
}

// spliceCopy returns a new slice holding body with the edits (in order of
// position) applied.
func spliceCopy(body []byte, edits []edit) []byte {
	out := make([]byte, 0, len(body)+48)
	last := 0
	for _, e := range edits {
		out = append(out, body[last:e.start]...)
		out = e.appendTo(out)
		last = e.end
	}
	return append(out, body[last:]...)
}

// spliceInPlace applies the edits (in order of position) to body within its
// capacity, moving only the bytes after each edit, last edit first; it
// returns nil when the result, or a step on the way, would not fit.
func spliceInPlace(body []byte, edits []edit) []byte {
	// Applying the last edit first, the live bytes end at len(body) plus
	// the shifts applied so far; the buffer must hold the longest step.
	end, peak := len(body), len(body)
	for k := len(edits) - 1; k >= 0; k-- {
		end += edits[k].size() - (edits[k].end - edits[k].start)
		peak = max(peak, end)
	}
	if peak > cap(body) {
		return nil
	}
	out := body[:peak]
	end = len(body)
	var num [48]byte
	for k := len(edits) - 1; k >= 0; k-- {
		e := edits[k]
		rep := e.appendTo(num[:0])
		shift := len(rep) - (e.end - e.start)
		copy(out[e.end+shift:], out[e.end:end]) // copy is memmove: overlap is fine
		copy(out[e.start:], rep)
		end += shift
	}
	return out[:end]
}

// sep is what follows a member inserted first into an object.
func sep(empty bool) string {
	if empty {
		return ""
	}
	return ","
}
