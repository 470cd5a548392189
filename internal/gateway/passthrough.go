package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/bedrock/eventstream"
	"github.com/headroomhq/headroom/internal/bedrock/sse"
)

// hopHeaders are connection-level headers a proxy must not pass on (RFC 9110
// section 7.6.1).
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Proxy-Connection": true,
}

// copyHeader adds the upstream's end-to-end headers to the response,
// x-amzn-RequestId included, which replaces the gateway's own.
func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		if hopHeaders[k] {
			continue
		}
		dst[k] = vs
	}
}

// Copy buffers: 32 KiB for whole answers; 8 KiB for streams, whose frames
// are small and which may be open by the thousand.
var (
	bufPool    = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	streamPool = sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}
)

// result is what a passed-through answer told us about usage.
type result struct {
	usage bedrock.Usage
	// known: usage came from Bedrock (headers, body, or stream metrics),
	// not an estimate.
	known bool
	// started: the answer began (the model ran), so input was consumed.
	started    bool
	stopReason string
	// lastToolUseID is the id of the last tool_use block the answer
	// started, read only when it stopped at max_tokens: the tool call that
	// was cut (every protocol: event stream, SSE, whole answer).
	lastToolUseID string
	exception     string // a mid-stream exception's name, or an SSE error event's type
	clientGone    bool
	err           error // reading upstream failed mid-answer
}

// maxKeptBody bounds the copy of a non-streaming answer kept for reading
// usage and stop_reason. Anthropic answers are far smaller; a bigger one is
// passed through whole, and settled from headers or at its reservation.
const maxKeptBody = 8 << 20

// passBody copies a non-streaming answer to the client, keeping a copy to
// read usage from when the headers lack it and the stop reason when asked.
func passBody(w http.ResponseWriter, resp *http.Response, converse, wantStop bool) result {
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	var kept bytes.Buffer
	hu, hok := usageFromHeader(resp.Header)
	keep := !hok || wantStop
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	res := result{started: true}
	for {
		n, err := resp.Body.Read(*bp)
		if n > 0 {
			if !res.clientGone {
				if _, werr := w.Write((*bp)[:n]); werr != nil {
					res.clientGone = true
				}
			}
			if keep && kept.Len()+n <= maxKeptBody {
				kept.Write((*bp)[:n])
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			res.err = err
			break
		}
	}
	if hok {
		res.usage, res.known = hu, true
	} else if res.err == nil {
		read := bedrock.ReadInvokeUsage
		if converse {
			read = bedrock.ReadConverseUsage
		}
		if u, err := read(kept.Bytes()); err == nil {
			res.usage, res.known = u, true
		}
	}
	if wantStop {
		res.stopReason = stopReason(kept.Bytes())
		if res.stopReason == "max_tokens" && !converse {
			res.lastToolUseID = lastToolUseID(kept.Bytes())
		}
	}
	return res
}

// lastToolUseID is the id of the last tool_use block of an InvokeModel
// answer, "" if none. It decodes the whole answer, so it runs only for an
// answer the policy's cap cut (rare, and small: at most the cap).
func lastToolUseID(body []byte) string {
	var v struct {
		Content []struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		} `json:"content"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	for i := len(v.Content) - 1; i >= 0; i-- {
		if v.Content[i].Type == "tool_use" {
			return v.Content[i].ID
		}
	}
	return ""
}

// usageFromHeader reads the X-Amzn-Bedrock-*-Token-Count headers InvokeModel
// answers carry.
func usageFromHeader(h http.Header) (bedrock.Usage, bool) {
	in, ok1 := headerInt(h, bedrock.HeaderInputTokens)
	out, ok2 := headerInt(h, bedrock.HeaderOutputTokens)
	if !ok1 || !ok2 {
		return bedrock.Usage{}, false
	}
	cr, _ := headerInt(h, bedrock.HeaderCacheReadTokens)
	cw, _ := headerInt(h, bedrock.HeaderCacheWriteTokens)
	return bedrock.Usage{InputTokens: in, OutputTokens: out, CacheReadInputTokens: cr, CacheWriteInputTokens: cw}, true
}

func headerInt(h http.Header, k string) (int, bool) {
	v := h[k]
	if len(v) == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(v[0])
	return n, err == nil && n >= 0
}

// stopReason finds the top-level stop_reason (InvokeModel) or stopReason
// (Converse) of an answer without decoding it: inside a JSON string a quote
// is escaped, so the member can only be a key, and the top-level one comes
// after the content (a tool's input may hold the same key, earlier). It runs
// only for clamped requests, to count truncations.
func stopReason(body []byte) string {
	for _, key := range []string{`"stop_reason":"`, `"stopReason":"`} {
		i := bytes.LastIndex(body, []byte(key))
		if i < 0 {
			continue
		}
		rest := body[i+len(key):]
		if j := bytes.IndexByte(rest, '"'); j >= 0 && j < 64 {
			return string(rest[:j])
		}
	}
	return ""
}

// passStream copies an event stream to the client as it arrives, flushing
// after every read so each frame leaves at once, and meters what went by:
// the same bytes go through a Scanner (frames found in place, checksums
// checked) into a Meter. adjust is called with
// the usage seen so far whenever the Meter learns something new. A client
// that goes away stops the copy (the caller's context cancels the upstream
// call); the usage returned then is what was generated until that point.
func passStream(w http.ResponseWriter, resp *http.Response, adjust func(bedrock.Usage)) result {
	var sc eventstream.Scanner
	var mt eventstream.Meter
	res := passThrough(w, resp, func(chunk []byte) bool {
		ok := meterChunk(&sc, &mt, chunk)
		if mt.Done() || mt.Exception() != "" || ok {
			adjust(mt.Usage())
		}
		return ok
	})
	_, hasMetrics := mt.Metrics()
	res.metered(mt.Usage(), hasMetrics || mt.Done(), mt.StopReason(), mt.LastToolUseID, mt.Exception())
	return res
}

// passSSE is passStream for the Messages API's server-sent events: each
// read is forwarded and flushed at once, and a copy goes through an SSE
// scanner into a meter (message_start and message_delta usage, stop
// reason, error events, the last tool_use block).
func passSSE(w http.ResponseWriter, resp *http.Response, adjust func(bedrock.Usage)) result {
	var sc sse.Scanner
	bp := streamPool.Get().(*[]byte)
	defer streamPool.Put(bp)
	sc.Buffer(*bp) // the meter copies what it keeps, so the buffer is free at the end
	var mt sse.Meter
	res := passThrough(w, resp, func(chunk []byte) bool {
		_, _ = sc.Write(chunk)
		ok := meterEvents(&sc, &mt)
		adjust(mt.Usage())
		return ok
	})
	res.metered(mt.Usage(), mt.Done(), mt.StopReason(), mt.LastToolUseID, mt.Error())
	return res
}

// passThrough is the one streaming copy loop behind passStream and passSSE:
// each read is written to the client and flushed at once, then handed to
// meter (before the buffer is reused) until meter reports that the stream
// can no longer be metered; the bytes reach the client either way. The
// meter is a function, not an interface, so that the callers' scanners and
// meters stay on their stacks.
//
// No write waits for the upstream, and none is made alone that could go
// with the next: the head is flushed at once unless the answer's first
// bytes are already here (then they leave with it), and the read that ends
// the answer is not flushed by itself but leaves with the answer's end when
// the handler returns, moments later (nothing there waits on the upstream
// or the client). An answer that came in one piece thus costs one write to
// the client instead of three (head, bytes, end), and the client one
// wake-up instead of three (BENCHMARKS.md).
func passThrough(w http.ResponseWriter, resp *http.Response, meter func(chunk []byte) bool) result {
	copyHeader(w.Header(), resp.Header)
	w.Header().Del("Content-Length")
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	if !bodyReady(resp.Body) {
		_ = rc.Flush()
	}

	meterOK := true
	res := result{}
	bp := streamPool.Get().(*[]byte)
	defer streamPool.Put(bp)
	for {
		n, err := resp.Body.Read(*bp)
		if n > 0 {
			chunk := (*bp)[:n]
			if _, werr := w.Write(chunk); werr != nil {
				res.clientGone = true
			} else if !errors.Is(err, io.EOF) {
				if ferr := rc.Flush(); ferr != nil {
					res.clientGone = true
				}
			}
			if meterOK {
				meterOK = meter(chunk)
			}
		}
		if res.clientGone {
			break
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			res.err = err
			break
		}
	}
	return res
}

// bodyReady reports whether an upstream answer's first Read returns at once
// (upstream's HTTP/1.1 bodies say; any other body is taken to wait).
func bodyReady(body io.Reader) bool {
	r, ok := body.(interface{ Ready() bool })
	return ok && r.Ready()
}

// metered records what a stream's meter saw once the copy ends; the last
// tool_use id is asked for (a copy) only for an answer cut at max_tokens.
func (res *result) metered(u bedrock.Usage, known bool, stop string, lastToolUseID func() string, exception string) {
	res.usage = u
	res.started = u.InputTokens > 0 || u.OutputTokens > 0
	res.known = known
	res.stopReason = stop
	if stop == "max_tokens" {
		res.lastToolUseID = lastToolUseID()
	}
	res.exception = exception
}

// meterEvents hands the complete events the scanner has to the meter; it
// reports false once the stream cannot be metered (an event over the size
// limit). An event the meter cannot read is skipped.
func meterEvents(sc *sse.Scanner, mt *sse.Meter) bool {
	for {
		ev, ok, err := sc.Next()
		if err != nil {
			return false
		}
		if !ok {
			return true
		}
		_ = mt.Observe(ev)
	}
}

// meterChunk hands forwarded bytes to the frame scanner and every complete
// frame to the meter; the scanner reads chunk in place, so it is drained
// before the caller reuses chunk's buffer. It reports false once the stream
// cannot be metered (corrupt framing); the bytes still reach the client
// unchanged, and the request is then settled from what was metered before.
func meterChunk(sc *eventstream.Scanner, mt *eventstream.Meter, chunk []byte) bool {
	_, _ = sc.Write(chunk)
	for {
		f, ok, err := sc.Next()
		if err != nil {
			return false
		}
		if !ok {
			return true
		}
		_ = mt.ObserveFrame(&f) // an event it cannot read is skipped, not fatal
	}
}
