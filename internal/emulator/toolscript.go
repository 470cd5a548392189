package emulator

import (
	"encoding/json"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// The tool script (generation.tool_use) plays a model in an agent loop: it
// calls the configured tool, calls it again when the client sends back an
// error, and ends the turn once the call succeeded. It keeps no state: the
// conversation the client sends holds the calls made and their results.

// HeaderToolInputTokens overrides, for one request, the size of a scripted
// tool call's input (generation.tool_use.input_tokens).
const HeaderToolInputTokens = "X-Headroom-Emulator-Tool-Input-Tokens"

// maxToolRetries is how many times the script calls the tool again after an
// error result before it gives up.
const maxToolRetries = 3

// turn is what the tool script makes of a request.
type turn uint8

const (
	turnFree   turn = iota // the script does not apply: a generated answer
	turnCall               // call the tool (first call or a retry)
	turnDone               // the call succeeded: a short text ends the turn
	turnGiveUp             // the call failed more than maxToolRetries times
)

// The scripted texts, one token per word.
var (
	toolDoneWords   = splitWords("Done: the file is written.")
	toolGiveUpWords = splitWords("I give up: the tool call failed four times in a row, so the file is not written.")
)

// toolRequest is what the script reads of a request body, in the Anthropic
// Messages shape (InvokeModel, Messages) and the Converse shape at once:
// their field names differ.
type toolRequest struct {
	Tools      []toolSpec `json:"tools"` // Anthropic
	ToolConfig struct {
		Tools []toolSpec `json:"tools"`
	} `json:"toolConfig"` // Converse
	Messages []toolMessage `json:"messages"`
}

type toolMessage struct {
	Role    string        `json:"role"`
	Content toolBlockList `json:"content"`
}

// hasResults reports whether m returns any tool result.
func (m toolMessage) hasResults() bool {
	for _, b := range m.Content {
		if _, _, ok := b.result(); ok {
			return true
		}
	}
	return false
}

type toolSpec struct {
	Name     string `json:"name"` // Anthropic
	ToolSpec struct {
		Name string `json:"name"`
	} `json:"toolSpec"` // Converse
}

// toolBlock is a content block, with only the fields of tool calls and
// results; other blocks decode to a Type the script ignores.
type toolBlock struct {
	Type      string `json:"type"`
	ID        string `json:"id"`          // tool_use
	Name      string `json:"name"`        // tool_use
	ToolUseID string `json:"tool_use_id"` // tool_result
	IsError   bool   `json:"is_error"`    // tool_result
	ToolUse   *struct {
		ToolUseID string `json:"toolUseId"`
		Name      string `json:"name"`
	} `json:"toolUse"` // Converse
	ToolResult *struct {
		ToolUseID string `json:"toolUseId"`
		Status    string `json:"status"`
	} `json:"toolResult"` // Converse
}

// toolBlockList is a message's content: a list of blocks, or a string (no
// blocks).
type toolBlockList []toolBlock

func (l *toolBlockList) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		*l = nil
		return nil
	}
	return json.Unmarshal(data, (*[]toolBlock)(l))
}

// call returns the tool call a block makes: its id and tool name.
func (b *toolBlock) call() (id, name string, ok bool) {
	switch {
	case b.Type == "tool_use":
		return b.ID, b.Name, true
	case b.ToolUse != nil:
		return b.ToolUse.ToolUseID, b.ToolUse.Name, true
	}
	return "", "", false
}

// result returns the tool result a block carries: the id of its call and
// whether it is an error.
func (b *toolBlock) result() (id string, isError, ok bool) {
	switch {
	case b.Type == "tool_result":
		return b.ToolUseID, b.IsError, true
	case b.ToolResult != nil:
		return b.ToolResult.ToolUseID, b.ToolResult.Status == "error", true
	}
	return "", false, false
}

// scriptTurn decides what the script answers to body for the tool name. It
// decodes body once; the body is bounded by maxBodyBytes.
func scriptTurn(body []byte, name string) (turn, error) {
	var req toolRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return turnFree, bedrock.Errorf(bedrock.ValidationException, "Malformed input request: %v", err)
	}
	offered := false
	for _, t := range append(req.Tools, req.ToolConfig.Tools...) {
		offered = offered || t.Name == name || t.ToolSpec.Name == name
	}
	ms := req.Messages
	// outcome reads message i (the user's) against the calls of message
	// i-1 (the assistant's): whether it returns results for the tool, and
	// whether any of them is an error.
	outcome := func(i int) (results, failed bool) {
		if i < 1 {
			return false, false
		}
		calls := map[string]bool{}
		for _, b := range ms[i-1].Content {
			if id, n, ok := b.call(); ok && n == name {
				calls[id] = true
			}
		}
		for _, b := range ms[i].Content {
			if id, isError, ok := b.result(); ok && calls[id] {
				results = true
				failed = failed || isError
			}
		}
		return results, failed
	}
	last := len(ms) - 1
	results, failed := outcome(last)
	switch {
	case !results && offered && (last < 0 || !ms[last].hasResults()):
		return turnCall, nil
	case !results:
		// Not offered, or a result for another tool: left to the generator.
		return turnFree, nil
	case !failed:
		return turnDone, nil
	}
	// Count the failed calls in a row, back from the last.
	fails := 0
	for i := last; i >= 1; i -= 2 {
		if r, f := outcome(i); !r || !f {
			break
		}
		fails++
	}
	if fails > maxToolRetries {
		return turnGiveUp, nil
	}
	return turnCall, nil
}
