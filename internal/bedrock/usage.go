package bedrock

import (
	"errors"
	"fmt"
)

// errNoUsage is returned by the usage readers for a response without usage.
var errNoUsage = errors.New("response has no usage object")

// ReadInvokeUsage reads usage from a non-streaming InvokeModel response body
// (an Anthropic message: usage.input_tokens, output_tokens,
// cache_read_input_tokens, cache_creation_input_tokens). Other members are
// ignored, a missing or null count is 0, and as in encoding/json the last of
// duplicated members wins. The error is not a Bedrock exception: the body
// came from upstream.
func ReadInvokeUsage(body []byte) (Usage, error) {
	return readUsage(body, &[4]string{"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"})
}

// ReadConverseUsage reads usage from a non-streaming Converse response body
// (usage.inputTokens, outputTokens, cacheReadInputTokens,
// cacheWriteInputTokens), like ReadInvokeUsage.
func ReadConverseUsage(body []byte) (Usage, error) {
	return readUsage(body, &[4]string{"inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens"})
}

// readUsage reads the usage object; names are the keys of the input, output,
// cache-read and cache-write counts.
func readUsage(body []byte, names *[4]string) (Usage, error) {
	s := scanner{b: body}
	var (
		counts [4]int
		bad    [4][]byte // a value that is not a count, per name
		found  bool
	)
	m, isObject, err := s.open()
	for isObject && err == nil {
		var key []byte
		var ok bool
		if key, ok, err = m.next(); err != nil {
			break
		}
		if !ok {
			err = s.end(m.i)
			break
		}
		if string(key) != "usage" {
			m.i, err = s.walk(m.i, m.depth, false)
			continue
		}
		// As in encoding/json, the last usage wins.
		counts, bad, found = [4]int{}, [4][]byte{}, s.isObject(m.i)
		if !found {
			m.i, err = s.walk(m.i, m.depth, false)
			continue
		}
		m.i, err = s.usage(m.i, m.depth, names, &counts, &bad)
	}
	if err != nil {
		return Usage{}, fmt.Errorf("reading usage: %w", err)
	}
	if !found {
		return Usage{}, fmt.Errorf("reading usage: %w", errNoUsage)
	}
	for k, v := range bad {
		if v != nil {
			return Usage{}, fmt.Errorf("reading usage: usage.%s: %s is not a token count", names[k], v)
		}
	}
	return Usage{InputTokens: counts[0], OutputTokens: counts[1], CacheReadInputTokens: counts[2], CacheWriteInputTokens: counts[3]}, nil
}

// usage scans the usage object at b[i], storing the counts named by names.
func (s *scanner) usage(i, depth int, names *[4]string, counts *[4]int, bad *[4][]byte) (int, error) {
	m, err := s.openObject(i, depth)
	if err != nil {
		return 0, err
	}
	for {
		key, start, end, more, err := m.nextValue()
		if err != nil || !more {
			return m.i, err
		}
		for k, name := range names {
			if string(key) == name {
				raw := s.b[start:end]
				n, ok := tokenCount(raw)
				counts[k], bad[k] = n, nil
				if !ok {
					bad[k] = raw
				}
			}
		}
	}
}

// tokenCount parses a non-negative integer JSON value of at most 15 digits;
// null is 0.
func tokenCount(raw []byte) (int, bool) {
	if string(raw) == "null" {
		return 0, true
	}
	if len(raw) == 0 || len(raw) > 15 {
		return 0, false
	}
	n := 0
	for _, c := range raw {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
