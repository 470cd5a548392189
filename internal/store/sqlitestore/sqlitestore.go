// Package sqlitestore keeps Headroom's persistent state (developer keys and
// the day's quota usage) in one SQLite file, headroom.db, in the data
// directory, using the pure-Go modernc.org/sqlite driver (no cgo).
//
// The file is opened in WAL mode with a busy timeout, so that `headroom keys`
// and a running `headroom serve` can use it at the same time, and with
// synchronous=NORMAL: a committed write survives the process being killed
// (kill -9), though not necessarily a power cut. The schema is migrated by
// PRAGMA user_version when the store is opened.
//
// The package implements the Store interfaces that keys and quota declare;
// it must import nothing of Headroom's besides those packages, and holds no
// policy of its own.
package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// FileName is the database file inside the data directory.
const FileName = "headroom.db"

// busyTimeoutMS is how long a writer waits for another process's write to
// finish before failing: far longer than any Headroom transaction.
const busyTimeoutMS = 10_000

// Store is the SQLite store. It is safe for concurrent use, also by several
// processes opening the same directory.
type Store struct {
	db *sql.DB
}

// Open opens (creating if needed) the store in dir and migrates its schema.
func Open(ctx context.Context, dir string) (*Store, error) {
	if strings.ContainsAny(dir, "?#") {
		return nil, fmt.Errorf("open store: data directory %q must not contain ? or #", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	path := filepath.Join(dir, FileName)
	// Create the file first so that it (and, following it, the -wal and -shm
	// files SQLite creates) is readable by its owner only: it holds key hashes.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	f.Close()

	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS)) // first: the others may wait for locks
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate") // writers take the lock up front instead of failing to upgrade
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database. Committed data is already durable; Close only
// releases the file.
func (s *Store) Close() error { return s.db.Close() }

// migrations[i] brings the schema from user_version i to i+1. Append only:
// released migrations never change.
var migrations = []string{
	`CREATE TABLE keys (
		name              TEXT PRIMARY KEY,
		hash              BLOB NOT NULL UNIQUE,   -- SHA-256 of the secret
		weight            REAL NOT NULL,
		daily_tokens      INTEGER NOT NULL,
		max_concurrency   INTEGER NOT NULL,
		max_output_tokens INTEGER NOT NULL,
		created_at        INTEGER,                -- Unix nanoseconds; NULL for the zero time
		revoked_at        INTEGER                 -- Unix nanoseconds; NULL while active
	) STRICT`,
	`CREATE TABLE usage (
		day  TEXT NOT NULL,                       -- quota.Ledger.Day label, e.g. 2026-03-14
		key  TEXT NOT NULL,                       -- UPSTREAM/BUCKET or key:NAME
		used INTEGER NOT NULL,
		PRIMARY KEY (day, key)
	) STRICT, WITHOUT ROWID`,
}

// migrate applies the migrations the file has not seen, in one immediate
// transaction, so that two processes opening a new file at once do not both
// apply them.
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this headroom knows (%d): upgrade headroom", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate to version %d: %w", i+1, err)
		}
	}
	if version == len(migrations) {
		return nil
	}
	// PRAGMA takes no bound parameters; the value is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return fmt.Errorf("migrate: set version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Version returns the schema version of the open file.
func (s *Store) Version(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}
