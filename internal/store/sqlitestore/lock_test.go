package sqlitestore_test

import (
	"errors"
	"os"
	"testing"

	"github.com/headroomhq/headroom/internal/store/sqlitestore"
)

// A second lock on a held directory fails at once with the holder's PID;
// after Release it succeeds. (TestServeSurvivesKill9 in internal/cli checks
// that a kill -9'd server's lock does not keep its successor out.)
func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	l, err := sqlitestore.LockDir(dir)
	if err != nil {
		t.Fatalf("first LockDir: %v", err)
	}
	_, err = sqlitestore.LockDir(dir)
	var le *sqlitestore.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second LockDir = %v, want a *LockedError", err)
	}
	if le.PID != os.Getpid() || le.Dir != dir {
		t.Errorf("LockedError = %+v, want dir %s and pid %d", le, dir, os.Getpid())
	}
	// The store itself stays open to others while the lock is held.
	open(t, dir)
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := sqlitestore.LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir after Release: %v", err)
	}
	l2.Release()
}
