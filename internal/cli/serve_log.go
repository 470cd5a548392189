package cli

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// logWriter buffers the gateway's JSON log, one line per request, and
// writes it out every logFlushEvery or when 64 KiB are pending: a write
// system call per line costs a busy gateway about a tenth of its CPU. A
// kill -9 loses at most logFlushEvery of log lines (never usage, which is
// saved separately).
type logWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

const logFlushEvery = 100 * time.Millisecond

func newLogWriter(w io.Writer) *logWriter {
	l := &logWriter{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *logWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.w.Flush()
}

func (l *logWriter) run() {
	defer close(l.done)
	t := time.NewTicker(logFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.flush()
		}
	}
}

// Close stops the flusher and writes out what is pending.
func (l *logWriter) Close() error {
	close(l.stop)
	<-l.done
	l.flush()
	return nil
}
