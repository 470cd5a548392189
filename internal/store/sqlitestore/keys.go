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

// Create implements keys.Store. A revoked key of the same name is replaced
// in the same statement, so that the check and the write cannot race.
func (s *Store) Create(ctx context.Context, k keys.Key) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET
			hash = excluded.hash, weight = excluded.weight, daily_tokens = excluded.daily_tokens,
			max_concurrency = excluded.max_concurrency, max_output_tokens = excluded.max_output_tokens,
			created_at = excluded.created_at, revoked_at = excluded.revoked_at
		WHERE keys.revoked_at IS NOT NULL`,
		k.Name, k.Hash, k.Weight, k.DailyTokens, k.MaxConcurrency, k.MaxOutputTokens,
		encodeTime(k.CreatedAt), encodeTime(k.RevokedAt))
	if err != nil {
		return fmt.Errorf("create key %q: %w", k.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("create key %q: %w", k.Name, err)
	}
	if n == 0 {
		return keys.ErrExists
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
