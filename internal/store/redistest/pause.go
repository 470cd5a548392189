package redistest

import "syscall"

// Pause freezes the server (SIGSTOP) with its data: connections stay open
// and calls hang until Resume, as when Redis is cut off by the network or
// stalls, rather than restarted. Pausing a stopped server does nothing.
func (s *Server) Pause() { s.freeze(syscall.SIGSTOP) }

// Resume lets a paused server run on (SIGCONT), with everything it held.
func (s *Server) Resume() { s.freeze(syscall.SIGCONT) }

func (s *Server) freeze(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(sig)
	}
}
