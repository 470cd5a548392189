package cli

import (
	"errors"
	"io"
	"syscall"
)

// StopOnBrokenPipe returns a writer that calls stop when a write to w fails
// because its reader is gone (EPIPE): `headroom serve --demo | head` then
// shuts down as on SIGTERM, removing the demo's temporary data, instead of
// being killed by SIGPIPE with the data left behind. The process must
// receive SIGPIPE through signal.Notify for the write to fail rather than
// kill it (cmd/headroom does).
func StopOnBrokenPipe(w io.Writer, stop func()) io.Writer {
	return &pipeWriter{w: w, stop: stop}
}

type pipeWriter struct {
	w    io.Writer
	stop func()
}

func (p *pipeWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if errors.Is(err, syscall.EPIPE) {
		p.stop()
	}
	return n, err
}
