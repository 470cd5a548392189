package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/headroomhq/headroom/internal/keys"
)

var _ keys.Store = (*Store)(nil)

const keyColumns = `name, hash, weight, daily_tokens, max_concurrency, max_output_tokens, created_at, revoked_at`

// Create implements keys.Store. The check for an active key of the same
// name, the archiving of a revoked one and the insert are one immediate
// transaction, so that two processes cannot race between them.
func (s *Store) Create(ctx context.Context, k keys.Key) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create key %q: %w", k.Name, err)
	}
	defer tx.Rollback()
	var revoked sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT revoked_at FROM keys WHERE name = ?`, k.Name).Scan(&revoked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("create key %q: %w", k.Name, err)
	case !revoked.Valid:
		return keys.ErrExists
	default:
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET name = ? WHERE name = ?`,
			keys.ArchivedName(k.Name, decodeTime(revoked)), k.Name); err != nil {
			return fmt.Errorf("create key %q: keep the revoked one: %w", k.Name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.Name, k.Hash, k.Weight, k.DailyTokens, k.MaxConcurrency, k.MaxOutputTokens,
		encodeTime(k.CreatedAt), encodeTime(k.RevokedAt)); err != nil {
		return fmt.Errorf("create key %q: %w", k.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create key %q: %w", k.Name, err)
	}
	return nil
}

// List implements keys.Store.
func (s *Store) List(ctx context.Context) ([]keys.Key, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+keyColumns+` FROM keys ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	out := []keys.Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}

// Revoke implements keys.Store.
func (s *Store) Revoke(ctx context.Context, name string, at time.Time) error {
	res, err := s.db.ExecContext(ctx,
		`UPDATE keys SET revoked_at = COALESCE(revoked_at, ?) WHERE name = ?`, encodeTime(at), name)
	if err != nil {
		return fmt.Errorf("revoke key %q: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("revoke key %q: %w", name, err)
	}
	if n == 0 {
		return keys.ErrNotFound
	}
	return nil
}

// Lookup implements keys.Store.
func (s *Store) Lookup(ctx context.Context, hash []byte) (keys.Key, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return keys.Key{}, keys.ErrNotFound
	}
	if err != nil {
		return keys.Key{}, fmt.Errorf("look up key: %w", err)
	}
	return k, nil
}

func scanKey(row interface{ Scan(...any) error }) (keys.Key, error) {
	var k keys.Key
	var created, revoked sql.NullInt64
	err := row.Scan(&k.Name, &k.Hash, &k.Weight, &k.DailyTokens, &k.MaxConcurrency, &k.MaxOutputTokens, &created, &revoked)
	k.CreatedAt, k.RevokedAt = decodeTime(created), decodeTime(revoked)
	return k, err
}

// encodeTime stores an instant as Unix nanoseconds, and the zero time as NULL.
func encodeTime(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func decodeTime(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}
