package emulator

import (
	"hash/crc32"
	"math"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
)

// answer is what the emulator will generate for one request: its content
// blocks in order, and why it stops.
type answer struct {
	blocks []block
	stop   string // "end_turn", "tool_use", or "max_tokens" when max_tokens cut the answer
	seed   uint64 // keys the words and the ids
}

// blockKind is what a content block holds.
type blockKind uint8

const (
	blockThinking blockKind = iota // a thinking block, with a signature
	blockText                      // a text block
	blockToolUse                   // a tool call; its content is the input JSON
)

// block is one content block of an answer.
type block struct {
	kind   blockKind
	tokens int       // output tokens generated in the block
	tool   *toolCall // the call of a blockToolUse
	text   []string  // a scripted text's words (else generated ones)
}

// toolCall is a tool_use block's call: its input is
// {"file_path": filePath, "content": "<size words>"}, one token per word.
type toolCall struct {
	id       string // toolu_bdrk_..., fresh for every answer
	name     string
	filePath string
	size     int // tokens of the whole input; the block is cut when it has fewer
}

// output is the answer's output tokens, all blocks together.
func (a answer) output() int {
	n := 0
	for _, b := range a.blocks {
		n += b.tokens
	}
	return n
}

// content returns the writer of block i's content.
func (a answer) content(i int) content {
	b := a.blocks[i]
	c := content{tool: b.tool}
	switch b.kind {
	case blockThinking:
		c.words = newWords(a.seed^0x7468696e6b, nil)
	case blockText:
		c.words = newWords(a.seed, openingWords)
		if b.text != nil {
			c.words = newWords(a.seed, b.text)
		}
	case blockToolUse:
		c.words = newWords(a.seed^0x746f6f6c, nil)
	}
	return c
}

// content writes a block's content k tokens at a time: words for thinking
// and text; for a tool call, its input JSON as raw JSON text, which is
// complete once all of the call's size tokens are written (before that it
// is a prefix that does not parse).
type content struct {
	words words
	tool  *toolCall
	done  int // tokens written
}

func (c *content) appendTokens(dst []byte, k int) []byte {
	if k <= 0 {
		return dst
	}
	if c.tool != nil && c.done == 0 {
		dst = append(dst, `{"file_path":"`...)
		dst = appendJSONText(dst, c.tool.filePath)
		dst = append(dst, `","content":"`...)
	}
	dst = c.words.appendWords(dst, k)
	c.done += k
	if c.tool != nil && c.done >= c.tool.size {
		dst = append(dst, `"}`...)
	}
	return dst
}

// appendInput appends a tool call's input as a JSON object for a
// non-streaming answer. A call cut by max_tokens is closed where it was cut,
// as a lenient parse of the streamed partial JSON reads it: its content is
// the words generated, and an input cut before its first token is {}.
func (c *content) appendInput(dst []byte, tokens int) []byte {
	if tokens == 0 {
		return append(dst, `{}`...)
	}
	dst = c.appendTokens(dst, tokens)
	if c.done < c.tool.size {
		dst = append(dst, `"}`...)
	}
	return dst
}

// lognormalSigma is the spread of lognormal output lengths: with sigma 1 the
// median is 0.6 × the mean and one answer in twenty is above 2.9 × the mean.
const lognormalSigma = 1.0

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// plan decides the answer to a request with body, the thinking settings of
// req and the effective maxTokens. want >= 0 overrides the configured length
// distribution (the x-headroom-emulator-output-tokens header). t is what the
// tool script makes of the request, and toolSize the size of a scripted
// call's input.
func plan(g config.Generation, body []byte, req bedrock.Request, maxTokens, want int, t turn, toolSize int) answer {
	seed := g.Seed ^ uint64(crc32.Checksum(body, castagnoli))<<16 ^ uint64(len(body))
	rng := prng(seed)
	switch t {
	case turnCall:
		a := answer{stop: "tool_use", seed: rng.next()}
		n := toolSize
		if n > maxTokens {
			n, a.stop = maxTokens, "max_tokens"
		}
		call := &toolCall{id: string(appendID(nil, "toolu_bdrk_", a.seed^0x6964)), name: g.ToolUse.Name, filePath: g.ToolUse.FilePath, size: toolSize}
		a.blocks = []block{{kind: blockToolUse, tokens: n, tool: call}}
		return a
	case turnDone, turnGiveUp:
		a := answer{stop: "end_turn", seed: rng.next()}
		text := toolDoneWords
		if t == turnGiveUp {
			text = toolGiveUpWords
		}
		n := len(text)
		if n > maxTokens {
			n, a.stop = maxTokens, "max_tokens"
		}
		a.blocks = []block{{kind: blockText, tokens: n, text: text}}
		return a
	}
	if want < 0 {
		want = drawLength(g.OutputTokens, &rng)
	}
	a := answer{stop: "end_turn", seed: rng.next()}
	if want > maxTokens {
		want, a.stop = maxTokens, "max_tokens"
	}
	thinking := 0
	if req.Thinking != bedrock.ThinkingOff && want >= 2 {
		thinking = int(float64(want) * g.ThinkingShare)
		if req.Thinking == bedrock.ThinkingEnabled && req.ThinkingBudget > 0 {
			thinking = min(thinking, req.ThinkingBudget)
		}
	}
	if thinking > 0 {
		a.blocks = append(a.blocks, block{kind: blockThinking, tokens: thinking})
	}
	a.blocks = append(a.blocks, block{kind: blockText, tokens: want - thinking})
	return a
}

// drawLength draws an output length from d.
func drawLength(d config.Distribution, rng *prng) int {
	var v float64
	switch d.Distribution {
	case config.DistUniform:
		v = float64(d.Min) + rng.float()*float64(d.Max-d.Min+1)
	case config.DistLognormal:
		if d.Mean <= 0 {
			return d.Min
		}
		mu := math.Log(float64(d.Mean)) - lognormalSigma*lognormalSigma/2
		v = math.Exp(mu + lognormalSigma*rng.norm())
	default:
		v = float64(d.Mean)
	}
	return min(max(int(v), d.Min), d.Max)
}

// prng is splitmix64: tiny, fast, and the same sequence on every platform,
// so that answers and faults are repeatable.
type prng uint64

func (p *prng) next() uint64 {
	*p += 0x9e3779b97f4a7c15
	z := uint64(*p)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// float is uniform in [0, 1).
func (p *prng) float() float64 { return float64(p.next()>>11) / (1 << 53) }

// norm is standard normal (Box-Muller).
func (p *prng) norm() float64 {
	u := 1 - p.float() // (0, 1]
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*p.float())
}

// Opening is how every answer starts: an answer of k <= 7 text tokens is its
// first k words, whatever the request, so a client's output can be checked.
const Opening = "Hello from headroom emulate, an offline Bedrock."

var openingWords = splitWords(Opening)

var lorem = splitWords("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor " +
	"incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation " +
	"ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit " +
	"voluptate velit esse cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non " +
	"proident sunt culpa qui officia deserunt mollit anim id est laborum quota token bucket " +
	"reserve settle minute day region stream")

func splitWords(s string) []string {
	var ws []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if i > start {
				ws = append(ws, s[start:i])
			}
			start = i + 1
		}
	}
	return ws
}

// words writes deterministic text, one token per word: the opening words
// (for text blocks) and then lorem-like sentences drawn from its PRNG. Its
// output is plain ASCII with no character JSON would escape.
type words struct {
	rng      prng
	opening  []string
	n        int // words written
	sentence int // words left in the current lorem sentence
}

func newWords(seed uint64, opening []string) words { return words{rng: prng(seed), opening: opening} }

// appendWords appends k more words to dst, each but the very first preceded
// by a space, so that consecutive chunks concatenate to the whole text.
func (w *words) appendWords(dst []byte, k int) []byte {
	for ; k > 0; k-- {
		if w.n > 0 {
			dst = append(dst, ' ')
		}
		if w.n < len(w.opening) {
			dst = append(dst, w.opening[w.n]...)
			w.n++
			continue
		}
		word := lorem[w.rng.next()%uint64(len(lorem))]
		if w.sentence == 0 {
			w.sentence = 6 + int(w.rng.next()%9)
			dst = append(dst, word[0]-'a'+'A')
			word = word[1:]
		}
		dst = append(dst, word...)
		if w.sentence--; w.sentence == 0 {
			dst = append(dst, '.')
		}
		w.n++
	}
	return dst
}

// modelName is the model as an Anthropic response names it:
// "claude-sonnet-4-20250514" for "anthropic.claude-sonnet-4-20250514-v1:0".
func modelName(m bedrock.Model) string {
	s := m.Base
	if len(s) > len("anthropic.") && s[:len("anthropic.")] == "anthropic." {
		s = s[len("anthropic."):]
	}
	for i := len(s) - 1; i > 0; i-- {
		if s[i] == '-' {
			if len(s)-i > 1 && s[i+1] == 'v' {
				s = s[:i]
			}
			break
		}
	}
	return s
}
