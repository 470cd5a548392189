package sqlitestore

import (
	"context"
	"fmt"

	"github.com/headroomhq/headroom/internal/quota"
)

var _ quota.Store = (*Store)(nil)

// SaveUsage implements quota.Store: every entry is written in one
// transaction, so a crash keeps all of them or none.
func (s *Store) SaveUsage(ctx context.Context, day string, usage map[string]int64) error {
	if len(usage) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save usage: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx,
		`INSERT INTO usage (day, key, used) VALUES (?, ?, ?) ON CONFLICT (day, key) DO UPDATE SET used = excluded.used`)
	if err != nil {
		return fmt.Errorf("save usage: %w", err)
	}
	defer stmt.Close()
	for k, v := range usage {
		if _, err := stmt.ExecContext(ctx, day, k, v); err != nil {
			return fmt.Errorf("save usage %q: %w", k, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save usage: %w", err)
	}
	return nil
}

// LoadUsage implements quota.Store.
func (s *Store) LoadUsage(ctx context.Context, day string) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key, used FROM usage WHERE day = ?`, day)
	if err != nil {
		return nil, fmt.Errorf("load usage: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("load usage: %w", err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load usage: %w", err)
	}
	return out, nil
}
