package sqlitestore

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFileName is the file in the data directory that a running `headroom
// serve` holds locked.
const LockFileName = "serve.lock"

// DirLock is a data directory held by one server. The store file itself
// stays open to other processes (`headroom keys` while the server runs);
// the lock only keeps a second server out, whose separate ledger would admit
// as much again as the account allows.
type DirLock struct{ f *os.File }

// LockedError is a data directory another process holds.
type LockedError struct {
	Dir string
	PID int // the holder's process ID as it wrote it; 0 if unknown
}

func (e *LockedError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("another process (pid %d)", e.PID)
	}
	return fmt.Sprintf("data directory %s is in use by %s", e.Dir, who)
}

// LockDir takes dir's lock (creating dir if needed), or returns a
// *LockedError at once if another process holds it. The operating system
// releases the lock when the process ends, even by kill -9, so no stale lock
// outlives its server.
func LockDir(dir string) (*DirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !held {
		b, _ := os.ReadFile(path)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		f.Close()
		return nil, &LockedError{Dir: dir, PID: pid}
	}
	// The PID is only for the message a second server prints; the lock is
	// what counts.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &DirLock{f: f}, nil
}

// Release gives the lock up. The file stays: removing it would let a third
// process lock a new file while a second still waits on the old one.
func (l *DirLock) Release() error {
	_ = l.f.Truncate(0)
	return l.f.Close() // closing the descriptor drops the lock
}
