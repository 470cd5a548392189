package redisstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/headroomhq/headroom/internal/keys"
)

var _ keys.Store = (*Store)(nil)

// Developer keys live in three hashes, so that every script declares the
// keys it touches, and a generation:
//
//	PREFIX keys          name -> the key's record (JSON, immutable once written)
//	PREFIX keys:revoked  name -> revocation time, Unix nanoseconds
//	PREFIX keys:byhash   hex SHA-256 of the secret -> name
//	PREFIX keys:gen      a random token, set when keys are first written
//
// The revocation is kept apart from the record so that revoking never
// rewrites the record inside a script (Lua numbers would lose nanoseconds).
//
// A Redis without persistence that restarts comes back empty: without
// care every developer key would vanish and every replica refuse every
// request at its next refresh. So each Store remembers the keys it last
// listed and the generation it saw then; when a List finds another
// generation (or none), the Redis lost its keys since, and the Store writes
// back what it remembers before listing. Restoring only fills gaps and
// keeps the newer of two keys of one name (keys are never deleted, only
// revoked or replaced by a newer key of the same name), so replicas that
// remember different moments can all restore, in any order.
func (s *Store) keysKeys() []string {
	return []string{s.prefix + "keys", s.prefix + "keys:revoked", s.prefix + "keys:byhash", s.prefix + "keys:gen"}
}

// record is a key as stored, without its revocation.
type record struct {
	Name            string  `json:"name"`
	Hash            string  `json:"hash"` // hex; the Lua scripts read it
	Weight          float64 `json:"weight"`
	DailyTokens     int64   `json:"daily_tokens"`
	MaxConcurrency  int     `json:"max_concurrency"`
	MaxOutputTokens int     `json:"max_output_tokens"`
	CreatedAt       *int64  `json:"created_at,omitempty"` // Unix nanoseconds; absent for the zero time
}

// errHashTaken is a secret whose hash another key already has: SQLite's
// UNIQUE constraint refuses it too. With 256-bit random secrets it does not
// happen except by mistake.
var errHashTaken = errors.New("another key has the same secret")

// createScript adds a key unless an active one has its name; a revoked one
// is kept under keys.ArchivedName (NAME~REVOKED-NANOS: the record moves
// as is, never re-encoded, and the name a key is listed under is its field
// name), with its hash pointing there. Returns 1 created, 0 exists, -1
// hash taken by another name.
var createScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local rev = redis.call('HGET', KEYS[2], ARGV[1])
if cur and not rev then return 0 end
local owner = redis.call('HGET', KEYS[3], ARGV[2])
if owner and owner ~= ARGV[1] then return -1 end
if cur then
  local old = ARGV[1] .. '~' .. rev
  redis.call('HSET', KEYS[1], old, cur)
  redis.call('HSET', KEYS[2], old, rev)
  redis.call('HSET', KEYS[3], cjson.decode(cur).hash, old)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
if ARGV[4] == '' then redis.call('HDEL', KEYS[2], ARGV[1]) else redis.call('HSET', KEYS[2], ARGV[1], ARGV[4]) end
redis.call('SET', KEYS[4], ARGV[5], 'NX')
return 1
`)

// Create implements keys.Store, in one script so that the check for an
// active key of the same name and the write cannot race.
func (s *Store) Create(ctx context.Context, k keys.Key) error {
	rec, b, err := encodeRecord(k)
	if err != nil {
		return fmt.Errorf("create key %q: %w", k.Name, err)
	}
	n, err := createScript.Run(ctx, s.rdb, s.keysKeys(), k.Name, rec.Hash, b, encodeTime(k.RevokedAt), newGen()).Int()
	if err != nil {
		return fmt.Errorf("create key %q: %w", k.Name, err)
	}
	switch n {
	case 0:
		return keys.ErrExists
	case -1:
		return fmt.Errorf("create key %q: %w", k.Name, errHashTaken)
	}
	return nil
}

// List implements keys.Store: both hashes read in one MULTI, so that a key
// and its revocation come from the same moment. After a Redis restart that
// lost the keys, it first writes back the keys this Store listed last.
func (s *Store) List(ctx context.Context) ([]keys.Key, error) {
	kk := s.keysKeys()
	gen, err := genScript.Run(ctx, s.rdb, kk[3:], newGen()).Text()
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	s.mu.Lock()
	lost := s.gen != "" && s.gen != gen
	remembered := s.listed
	s.mu.Unlock()
	if lost {
		if err := s.restore(ctx, remembered); err != nil {
			return nil, fmt.Errorf("list keys: restore after Redis lost them: %w", err)
		}
	}
	var recs, revoked *redis.MapStringStringCmd
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		recs = p.HGetAll(ctx, kk[0])
		revoked = p.HGetAll(ctx, kk[1])
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out := make([]keys.Key, 0, len(recs.Val()))
	for name, raw := range recs.Val() {
		rev, ok := revoked.Val()[name]
		k, err := decodeKey(name, raw, rev, ok)
		if err != nil {
			return nil, fmt.Errorf("list keys: %q: %w", name, err)
		}
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b keys.Key) int { return strings.Compare(a.Name, b.Name) })
	s.mu.Lock()
	s.gen, s.listed = gen, out
	s.mu.Unlock()
	return cloneKeys(out), nil
}

// genScript returns the keys' generation, starting a new one if there is
// none (a new deployment, or a Redis that restarted empty).
var genScript = redis.NewScript(`
local g = redis.call('GET', KEYS[1])
if g then return g end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`)

// restoreScript writes one remembered key back unless Redis has it, or has
// a newer key of that name (created later: it replaced this one); a
// remembered revocation of the same key is kept. Returns 1 if written.
var restoreScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local c = cjson.decode(cur)
  if c.hash == ARGV[2] then
    if ARGV[4] ~= '' then redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[4]) end
    return 0
  end
  if tonumber(c.created_at or 0) >= tonumber(ARGV[5]) then return 0 end
  redis.call('HDEL', KEYS[3], c.hash)
  redis.call('HDEL', KEYS[2], ARGV[1])
end
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[4]) end
return 1
`)

// restore writes ks back, one script per key in one pipeline (EVAL, not
// EVALSHA: the Redis just restarted, and a pipeline does not retry NOSCRIPT).
func (s *Store) restore(ctx context.Context, ks []keys.Key) error {
	kk := s.keysKeys()
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range ks {
			rec, b, err := encodeRecord(k)
			if err != nil {
				return err
			}
			var created int64
			if rec.CreatedAt != nil {
				created = *rec.CreatedAt
			}
			restoreScript.Eval(ctx, p, kk[:3], k.Name, rec.Hash, b, encodeTime(k.RevokedAt), created)
		}
		return nil
	})
	return err
}

func cloneKeys(ks []keys.Key) []keys.Key {
	out := slices.Clone(ks)
	for i := range out {
		out[i].Hash = slices.Clone(out[i].Hash)
	}
	return out
}

// revokeScript sets the revocation time unless there is one already.
// Returns 0 when there is no such key.
var revokeScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
return 1
`)

// Revoke implements keys.Store.
func (s *Store) Revoke(ctx context.Context, name string, at time.Time) error {
	n, err := revokeScript.Run(ctx, s.rdb, s.keysKeys(), name, encodeTime(at)).Int()
	if err != nil {
		return fmt.Errorf("revoke key %q: %w", name, err)
	}
	if n == 0 {
		return keys.ErrNotFound
	}
	return nil
}

// lookupScript returns the record and revocation of the key with a hash, in
// one round trip: this runs on every request whose key is not cached.
var lookupScript = redis.NewScript(`
local name = redis.call('HGET', KEYS[3], ARGV[1])
if not name then return false end
return {redis.call('HGET', KEYS[1], name), redis.call('HGET', KEYS[2], name), name}
`)

// Lookup implements keys.Store.
func (s *Store) Lookup(ctx context.Context, hash []byte) (keys.Key, error) {
	if len(hash) == 0 {
		return keys.Key{}, keys.ErrNotFound
	}
	res, err := lookupScript.Run(ctx, s.rdb, s.keysKeys(), hex.EncodeToString(hash)).Slice()
	if errors.Is(err, redis.Nil) {
		return keys.Key{}, keys.ErrNotFound
	}
	if err != nil {
		return keys.Key{}, fmt.Errorf("look up key: %w", err)
	}
	raw, _ := res[0].(string)
	rev, revoked := res[1].(string) // a Lua false (no revocation) arrives as nil
	name, _ := res[2].(string)
	k, err := decodeKey(name, raw, rev, revoked)
	if err != nil {
		return keys.Key{}, fmt.Errorf("look up key: %w", err)
	}
	return k, nil
}

func encodeRecord(k keys.Key) (record, []byte, error) {
	rec := record{
		Name: k.Name, Hash: hex.EncodeToString(k.Hash), Weight: k.Weight, DailyTokens: k.DailyTokens,
		MaxConcurrency: k.MaxConcurrency, MaxOutputTokens: k.MaxOutputTokens,
	}
	if !k.CreatedAt.IsZero() {
		ns := k.CreatedAt.UnixNano()
		rec.CreatedAt = &ns
	}
	b, err := json.Marshal(rec)
	return rec, b, err
}

// decodeKey decodes a stored record listed under name (which differs from
// the record's own once the key is archived).
func decodeKey(name, raw, revoked string, isRevoked bool) (keys.Key, error) {
	var r record
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return keys.Key{}, fmt.Errorf("stored key is not valid: %w", err)
	}
	h, err := hex.DecodeString(r.Hash)
	if err != nil {
		return keys.Key{}, fmt.Errorf("stored key's hash is not valid: %w", err)
	}
	k := keys.Key{
		Name: name, Hash: h, Weight: r.Weight, DailyTokens: r.DailyTokens,
		MaxConcurrency: r.MaxConcurrency, MaxOutputTokens: r.MaxOutputTokens,
	}
	if r.CreatedAt != nil {
		k.CreatedAt = time.Unix(0, *r.CreatedAt).UTC()
	}
	if isRevoked && revoked != "" {
		ns, err := strconv.ParseInt(revoked, 10, 64)
		if err != nil {
			return keys.Key{}, fmt.Errorf("stored revocation time is not valid: %w", err)
		}
		k.RevokedAt = time.Unix(0, ns).UTC()
	}
	return k, nil
}

// encodeTime stores an instant as Unix nanoseconds, and the zero time as "".
func encodeTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}
