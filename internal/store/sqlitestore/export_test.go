package sqlitestore

import (
	"context"
	"fmt"
)

// SetVersionForTest sets the schema version, to simulate a file written by a
// newer headroom. It exists only in tests.
func (s *Store) SetVersionForTest(ctx context.Context, v int) error {
	_, err := s.db.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v))
	return err
}
