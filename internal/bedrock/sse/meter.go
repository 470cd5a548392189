package sse

import (
	"encoding/json"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/bedrock/eventstream"
)

// Meter adds up the usage of one Messages API stream from its events. Each
// event's data is the same Anthropic stream event an InvokeModel stream
// carries in a chunk, so the reading is eventstream.Meter's; what is SSE's
// own is the error event. The zero Meter is ready; it is for one goroutine.
type Meter struct {
	m       eventstream.Meter
	errType string
}

// Observe takes one event into account. An event of a type it does not
// meter (ping, content_block_stop, a newer one) is ignored; a malformed
// one is an error and leaves the Meter unchanged.
func (mt *Meter) Observe(ev Event) error {
	if string(ev.Name) == "error" {
		// {"type":"error","error":{"type":"overloaded_error","message":...}}:
		// rare, so read with encoding/json.
		var v struct {
			Error struct {
				Type string `json:"type"`
			} `json:"error"`
		}
		_ = json.Unmarshal(ev.Data, &v)
		mt.errType = v.Error.Type
		if mt.errType == "" {
			mt.errType = "api_error"
		}
		return nil
	}
	return mt.m.ObserveAnthropic(ev.Data)
}

// Usage is the best knowledge so far, as eventstream.Meter.Usage: the
// usage of message_delta, else message_start's input and the output
// estimated from the bytes generated.
func (mt *Meter) Usage() bedrock.Usage { return mt.m.Usage() }

// Done reports whether message_stop arrived.
func (mt *Meter) Done() bool { return mt.m.Done() }

// Error is the type of the error event that ended the stream
// ("overloaded_error", ...), or "".
func (mt *Meter) Error() string { return mt.errType }

// StopReason is message_delta's stop_reason, or "".
func (mt *Meter) StopReason() string { return mt.m.StopReason() }

// LastToolUseID is the id of the last tool_use block started, or "".
func (mt *Meter) LastToolUseID() string { return mt.m.LastToolUseID() }
