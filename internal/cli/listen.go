package cli

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// listen opens a TCP listener on addr. A port already in use, the first
// thing a second `serve` or `emulate` on one machine meets, says how to
// pick another.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listen on %s: the address is already in use (another headroom running?); stop that process, or listen elsewhere with --addr HOST:PORT (port 0 picks a free one): %w", addr, err)
	}
	return ln, err
}
