package bedrock

import (
	"bytes"
	"encoding/json"
	"strings"
)

// ThinkingMode is the kind of extended thinking a request asks for.
type ThinkingMode int

const (
	ThinkingOff ThinkingMode = iota
	ThinkingEnabled
	ThinkingAdaptive
)

// Request is what admission needs from a request body: the output limit, the
// thinking budget and an estimate of the input tokens.
type Request struct {
	// MaxTokens is max_tokens (InvokeModel) or inferenceConfig.maxTokens
	// (Converse); 0 when HasMaxTokens is false.
	MaxTokens    int
	HasMaxTokens bool
	Thinking     ThinkingMode
	// ThinkingBudget is thinking.budget_tokens when Thinking is ThinkingEnabled.
	ThinkingBudget int
	// InputTokens is the estimated input tokens (see EstimateTokens).
	InputTokens int
	// Last is what the last message says, when it is the user's
	// (Anthropic bodies only).
	Last LastTurn
	// Effort is output_config.effort ("low", "medium", "high", "xhigh",
	// "max", or a newer level), "" when absent: Claude Code asks for one with
	// adaptive thinking, and a policy may weigh it.
	Effort string
}

// MessagesRequest is what the gateway needs from an Anthropic Messages API
// body (POST /v1/messages): the admission fields, the model, which the
// body names instead of the path, and whether the answer streams.
type MessagesRequest struct {
	Request
	// Model is the body's model member, decoded.
	Model  string
	Stream bool
}

// Limits on the admission fields. MaxOutputLimit is far above any model's
// output limit (128,000 today); a larger max_tokens is a client bug or an
// attempt to reserve an absurd amount, and is refused before admission.
const (
	MaxOutputLimit    = 1_000_000
	MinThinkingBudget = 1024
)

type bodyKind int

const (
	invokeBody bodyKind = iota
	converseBody
	messagesBody // an Anthropic Messages API body: invokeBody plus model and stream
)

// span is the byte range of one JSON value in a body; set is false when the
// member is absent.
type span struct {
	start, end int
	set        bool
}

func (s span) raw(b []byte) []byte { return b[s.start:s.end] }

// null reports whether the member is absent or JSON null.
func (s span) null(b []byte) bool { return !s.set || b[s.start] == 'n' }

// fields is what one scan of a request body finds: the spans of the
// admission members and the input-token estimate.
type fields struct {
	object bool // the document is an object
	open   int  // index of its '{'
	close  int  // index of its '}'
	empty  bool // it has no members

	maxTokens span // max_tokens, or inferenceConfig.maxTokens
	thinking  span // thinking, or additionalModelRequestFields.thinking
	thinkType span // thinking.type
	budget    span // thinking.budget_tokens
	messages  span
	lastMsg   span // the last element of messages, when it is an array

	inference      span // Converse inferenceConfig
	inferenceEmpty bool
	additional     span // Converse additionalModelRequestFields
	// extraMax: additionalModelRequestFields holds a max_tokens, which
	// the model would read past inferenceConfig.maxTokens and its cap.
	extraMax bool

	effort  span // output_config.effort
	model   span // Messages model
	stream  span // Messages stream
	version span // anthropic_version

	// dup is the first admission member that appears twice. Readers refuse
	// such bodies: Headroom and Bedrock might otherwise read different values.
	dup string

	tokens int
}

func (f *fields) record(sp *span, name string, start, end int) {
	if sp.set {
		if f.dup == "" {
			f.dup = name
		}
		return
	}
	*sp = span{start: start, end: end, set: true}
}

// scanRequest validates body as JSON in one pass and records the spans of
// the admission members of the given kind of body. Its error is a
// *syntaxError; the meaning of the members is checked by fields.request.
func scanRequest(body []byte, kind bodyKind) (fields, error) {
	s := scanner{b: body}
	var f fields
	err := s.request(&f, kind)
	f.tokens = s.tokens
	return f, err
}

func (s *scanner) request(f *fields, kind bodyKind) error {
	m, isObject, err := s.open()
	if err != nil || !isObject {
		return err
	}
	f.object, f.open, f.empty = true, m.i-1, true
	for {
		key, ok, err := m.next()
		if err != nil {
			return err
		}
		if !ok {
			f.close = m.i - 1
			return s.end(m.i)
		}
		f.empty = false
		if m.i, err = s.topMember(f, kind, key, m.i, m.depth); err != nil {
			return err
		}
	}
}

// topMember scans the value of the top-level member key at b[i].
func (s *scanner) topMember(f *fields, kind bodyKind, key []byte, i, depth int) (int, error) {
	switch string(key) {
	case "messages":
		end, err := s.messages(f, i, depth)
		f.record(&f.messages, "messages", i, end)
		return end, err
	case "system", "tools", "tool_choice", "toolConfig":
		return s.walk(i, depth, true)
	}
	if kind == messagesBody {
		switch string(key) {
		case "model":
			end, err := s.walk(i, depth, false)
			f.record(&f.model, "model", i, end)
			return end, err
		case "stream":
			end, err := s.walk(i, depth, false)
			f.record(&f.stream, "stream", i, end)
			return end, err
		}
	}
	if kind != converseBody {
		switch string(key) {
		case "anthropic_version":
			end, err := s.walk(i, depth, false)
			f.record(&f.version, "anthropic_version", i, end)
			return end, err
		case "output_config":
			return s.outputConfig(f, i, depth)
		case "max_tokens":
			end, err := s.walk(i, depth, false)
			f.record(&f.maxTokens, "max_tokens", i, end)
			return end, err
		case "thinking":
			return s.thinking(f, i, depth)
		}
		return s.walk(i, depth, false)
	}
	switch string(key) {
	case "inferenceConfig":
		return s.inferenceConfig(f, i, depth)
	case "additionalModelRequestFields":
		return s.additionalFields(f, i, depth)
	}
	return s.walk(i, depth, false)
}

// messages scans the messages value like walk with count set (the same
// validation, the same token estimate) and records where its last element
// is, so that the last turn can be read without a second pass over the
// others.
func (s *scanner) messages(f *fields, i, depth int) (int, error) {
	if i >= len(s.b) || s.b[i] != '[' || f.messages.set {
		return s.walk(i, depth, true)
	}
	return s.array(i, depth, true, &f.lastMsg)
}

// outputConfig scans an output_config value for its effort.
func (s *scanner) outputConfig(f *fields, i, depth int) (int, error) {
	if !s.isObject(i) {
		return s.walk(i, depth, false)
	}
	end, _, err := s.recordMembers(f, i, depth, []string{"output_config.effort"}, []*span{&f.effort})
	return end, err
}

// thinking scans a thinking value ({"type":..., "budget_tokens":...}).
func (s *scanner) thinking(f *fields, i, depth int) (int, error) {
	if !s.isObject(i) {
		end, err := s.walk(i, depth, false)
		f.record(&f.thinking, "thinking", i, end)
		return end, err
	}
	end, _, err := s.recordMembers(f, i, depth,
		[]string{"thinking.type", "thinking.budget_tokens"}, []*span{&f.thinkType, &f.budget})
	if err != nil {
		return 0, err
	}
	f.record(&f.thinking, "thinking", i, end)
	return end, nil
}

func (s *scanner) inferenceConfig(f *fields, i, depth int) (int, error) {
	if !s.isObject(i) {
		end, err := s.walk(i, depth, false)
		f.record(&f.inference, "inferenceConfig", i, end)
		return end, err
	}
	end, empty, err := s.recordMembers(f, i, depth, []string{"inferenceConfig.maxTokens"}, []*span{&f.maxTokens})
	if err != nil {
		return 0, err
	}
	if !f.inference.set {
		f.inferenceEmpty = empty
	}
	f.record(&f.inference, "inferenceConfig", i, end)
	return end, nil
}

// recordMembers scans the object at b[i] (b[i] == '{'), validating every
// value, and records with f.record into spans[k] the span of the member
// named by the last part of paths[k] (paths are as error messages give
// them: "thinking.type" looks for "type"). It returns the index just past
// the closing brace and whether the object has no members. Paths and spans
// are two slices, not one of structs, so that escape analysis sees the
// spans do not escape and the scan stays free of allocations.
func (s *scanner) recordMembers(f *fields, i, depth int, paths []string, spans []*span) (end int, empty bool, err error) {
	m, err := s.openObject(i, depth)
	if err != nil {
		return 0, false, err
	}
	empty = true
	for {
		key, start, end, ok, err := m.nextValue()
		if err != nil {
			return 0, false, err
		}
		if !ok {
			return m.i, empty, nil
		}
		empty = false
		for k, path := range paths {
			if string(key) == path[strings.LastIndexByte(path, '.')+1:] {
				f.record(spans[k], path, start, end)
			}
		}
	}
}

func (s *scanner) additionalFields(f *fields, i, depth int) (int, error) {
	if !s.isObject(i) {
		end, err := s.walk(i, depth, false)
		f.record(&f.additional, "additionalModelRequestFields", i, end)
		return end, err
	}
	m, err := s.openObject(i, depth)
	if err != nil {
		return 0, err
	}
	for {
		key, ok, err := m.next()
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "thinking":
			m.i, err = s.thinking(f, m.i, m.depth)
		case "max_tokens", "maxTokens":
			f.extraMax = true
			m.i, err = s.walk(m.i, m.depth, false)
		default:
			m.i, err = s.walk(m.i, m.depth, false)
		}
		if err != nil {
			return 0, err
		}
	}
	f.record(&f.additional, "additionalModelRequestFields", i, m.i)
	return m.i, nil
}

// ReadInvoke reads the admission fields of an InvokeModel Anthropic body in
// one pass over its bytes, validating the whole document as JSON. It reads
// max_tokens (absent is allowed: HasMaxTokens is false and the gateway fills
// it in), thinking ({"type":"enabled","budget_tokens":N} or
// {"type":"adaptive"}) and estimates the input tokens; anthropic_version may
// hold any value. A body that Bedrock would refuse gives a
// ValidationException *Error, as does a body that names an admission member
// twice (Headroom and Bedrock might read different copies).
//
// Without max_tokens an enabled budget is checked only against
// MinThinkingBudget: whoever fills max_tokens in must make it larger than
// ThinkingBudget (RewriteInvoke refuses otherwise).
func ReadInvoke(body []byte) (Request, error) {
	f, err := scanRequest(body, invokeBody)
	if err != nil {
		return Request{}, malformed(err)
	}
	return f.request(body, invokeBody)
}

// ReadConverse reads the admission fields of a Converse body like
// ReadInvoke: inferenceConfig.maxTokens and
// additionalModelRequestFields.thinking.
func ReadConverse(body []byte) (Request, error) {
	f, err := scanRequest(body, converseBody)
	if err != nil {
		return Request{}, malformed(err)
	}
	return f.request(body, converseBody)
}

func malformed(err error) *Error {
	return Errorf(ValidationException, "Malformed input request: %v, please reformat your input and try again.", err)
}

// invalid is a ValidationException about one member, worded like Bedrock's
// schema errors ("#/max_tokens: ...").
func invalid(path, format string, args ...any) *Error {
	return Errorf(ValidationException, "Malformed input request: #/"+path+": "+format+", please reformat your input and try again.", args...)
}

// request checks the meaning of the members found by scanRequest.
func (f *fields) request(b []byte, kind bodyKind) (Request, error) {
	if !f.object {
		return Request{}, Errorf(ValidationException, "Malformed input request: expected type: JSONObject, found: %s, please reformat your input and try again.", jsonType(trimWS(b)))
	}
	if f.dup != "" {
		return Request{}, Errorf(ValidationException, "Malformed input request: #: duplicate key [%s], please reformat your input and try again.", f.dup)
	}
	maxPath, thinkPath := "max_tokens", "thinking"
	if kind == converseBody {
		maxPath, thinkPath = "inferenceConfig/maxTokens", "additionalModelRequestFields/thinking"
		if !f.inference.null(b) && b[f.inference.start] != '{' {
			return Request{}, invalid("inferenceConfig", "expected type: JSONObject, found: %s", jsonType(f.inference.raw(b)))
		}
		if !f.additional.null(b) && b[f.additional.start] != '{' {
			return Request{}, invalid("additionalModelRequestFields", "expected type: JSONObject, found: %s", jsonType(f.additional.raw(b)))
		}
		if f.extraMax {
			return Request{}, Errorf(ValidationException,
				"Headroom does not accept max_tokens inside additionalModelRequestFields, where its max_tokens policy cannot see it; set inferenceConfig.maxTokens instead")
		}
	}
	if kind != converseBody {
		if !f.messages.set {
			return Request{}, Errorf(ValidationException, "Malformed input request: #: required key [messages] not found, please reformat your input and try again.")
		}
		if b[f.messages.start] != '[' {
			return Request{}, invalid("messages", "expected type: JSONArray, found: %s", jsonType(f.messages.raw(b)))
		}
	}
	r := Request{InputTokens: f.tokens}
	if kind != converseBody && f.lastMsg.set {
		r.Last = lastTurn(b, f.lastMsg)
	}
	if f.effort.set && b[f.effort.start] == '"' {
		r.Effort = internName(stringValue(f.effort.raw(b)), efforts[:])
	}
	if !f.maxTokens.null(b) {
		n, err := count(f.maxTokens.raw(b), maxPath, 1, MaxOutputLimit)
		if err != nil {
			return Request{}, err
		}
		r.MaxTokens, r.HasMaxTokens = n, true
	}
	if f.thinking.null(b) {
		return r, nil
	}
	if b[f.thinking.start] != '{' {
		return Request{}, invalid(thinkPath, "expected type: JSONObject, found: %s", jsonType(f.thinking.raw(b)))
	}
	if !f.thinkType.set {
		return Request{}, invalid(thinkPath, "required key [type] not found")
	}
	typ := f.thinkType.raw(b)
	switch {
	case stringIs(typ, "enabled"):
		if !f.budget.set {
			return Request{}, invalid(thinkPath, "required key [budget_tokens] not found")
		}
		n, err := count(f.budget.raw(b), thinkPath+"/budget_tokens", MinThinkingBudget, MaxOutputLimit)
		if err != nil {
			return Request{}, err
		}
		if r.HasMaxTokens && n >= r.MaxTokens {
			return Request{}, Errorf(ValidationException, "`max_tokens` must be greater than `thinking.budget_tokens` (%d >= %d).", n, r.MaxTokens)
		}
		r.Thinking, r.ThinkingBudget = ThinkingEnabled, n
	case stringIs(typ, "adaptive"):
		r.Thinking = ThinkingAdaptive
	case typ[0] != '"':
		return Request{}, invalid(thinkPath+"/type", "expected type: String, found: %s", jsonType(typ))
	default:
		// "disabled", or a kind of thinking newer than this code: nothing to
		// reserve for it; Bedrock judges whether it is valid.
	}
	return r, nil
}

// efforts are the output_config.effort levels known today; others are
// kept too, at the price of an allocation.
var efforts = [...]string{"low", "medium", "high", "xhigh", "max"}

// internName returns b as a string, without allocating when it is one of
// the known names.
func internName(b []byte, known []string) string {
	for _, s := range known {
		if string(b) == s {
			return s
		}
	}
	return string(b)
}

// stringValue returns the contents of the JSON string raw (quotes
// included), decoding escapes when there are any.
func stringValue(raw []byte) []byte {
	in := raw[1 : len(raw)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return in
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil
	}
	return []byte(s)
}

// ReadMessages reads an Anthropic Messages API body like ReadInvoke, in
// the same one pass, and also its model (required, a string) and stream
// (a boolean, false when absent).
func ReadMessages(body []byte) (MessagesRequest, error) {
	m, _, err := ReadMessagesSpans(body)
	return m, err
}

// messages checks the members only a Messages body has.
func (f *fields) messagesRequest(b []byte, r Request) (MessagesRequest, error) {
	m := MessagesRequest{Request: r}
	if !f.model.set {
		return MessagesRequest{}, Errorf(ValidationException, "model: Field required")
	}
	raw := f.model.raw(b)
	if raw[0] != '"' {
		return MessagesRequest{}, Errorf(ValidationException, "model: Input should be a valid string, found %s", jsonType(raw))
	}
	m.Model = string(stringValue(raw))
	if m.Model == "" {
		return MessagesRequest{}, Errorf(ValidationException, "model: String should have at least 1 character")
	}
	if !f.stream.null(b) {
		switch raw := f.stream.raw(b); string(raw) {
		case "true":
			m.Stream = true
		case "false":
		default:
			return MessagesRequest{}, Errorf(ValidationException, "stream: Input should be a valid boolean, found %s", jsonType(raw))
		}
	}
	return m, nil
}

// count parses the JSON value raw as an integer in [lo, hi].
func count(raw []byte, path string, lo, hi int) (int, error) {
	if t := jsonType(raw); t != "Number" {
		return 0, invalid(path, "expected type: Integer, found: %s", t)
	}
	digits := raw
	neg := raw[0] == '-'
	if neg {
		digits = raw[1:]
	}
	n := 0
	for _, c := range digits {
		if !isDigit(c) {
			return 0, invalid(path, "expected type: Integer, found: Number (%s)", raw)
		}
		if n <= hi {
			n = n*10 + int(c-'0')
		}
	}
	switch {
	case neg || n < lo:
		return 0, invalid(path, "%s is not greater or equal to %d", raw, lo)
	case n > hi:
		return 0, invalid(path, "%s is not less or equal to %d", raw, hi)
	}
	return n, nil
}

func trimWS(b []byte) []byte {
	i := skipWS(b, 0)
	return b[i:]
}

// MaxToolResults bounds the tool_result ids read from a request's last
// message.
const MaxToolResults = 8

// LastTurn is what the output policy needs from a request's last message
// when it is the user's: whom its tool results answer, and whether it is
// Claude Code's recovery turn after an answer cut at max_tokens.
type LastTurn struct {
	// ToolResults holds ToolUseKey of the tool_use_id of each tool_result
	// block (the first MaxToolResults), NToolResults of them.
	ToolResults  [MaxToolResults]uint64
	NToolResults int
	// Recovery is set when a text of the message begins with
	// RecoveryPrefix (perhaps inside a <system-reminder>).
	Recovery bool
}

// RecoveryPrefix begins the user message Claude Code sends after an answer
// was cut at max_tokens (BEDROCK.md section 6): "Output token limit hit.
// Resume directly — no apology, no recap ...".
const RecoveryPrefix = "Output token limit hit."

// ToolUseKey is the 64-bit FNV-1a hash of a tool_use id, the form in which
// tool ids are compared and remembered (no allocation, no copy of the
// id). An id is read as its JSON bytes between the quotes: ids are
// [A-Za-z0-9_-], never escaped.
func ToolUseKey(id []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range id {
		h ^= uint64(c)
		h *= 1099511628211
	}
	if h == 0 {
		h = 1 // 0 means "none"
	}
	return h
}

// ToolUseKeyString is ToolUseKey of a string id.
func ToolUseKeyString(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	if h == 0 {
		h = 1
	}
	return h
}
