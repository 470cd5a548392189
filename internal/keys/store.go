package keys

import (
	"context"
	"time"
)

// Store persists keys. Implementations live in internal/store/... and are
// checked by the conformance suite in keystest. Every method is safe for
// concurrent use, also by several processes sharing one store (the CLI
// manages keys while the server runs).
type Store interface {
	// Create adds k. It returns ErrExists when an active key has the same
	// name. A revoked key of the same name is kept, renamed
	// ArchivedName(name, its revocation time), so that a developer can be
	// given a new key under their old name without losing the old key's
	// history: List still shows it, and Lookup of its secret finds it,
	// revoked.
	Create(ctx context.Context, k Key) error
	// List returns every key, revoked ones included, sorted by name.
	List(ctx context.Context) ([]Key, error)
	// Revoke marks the named key revoked at the given time. It returns
	// ErrNotFound when there is no such key; revoking a revoked key keeps
	// the first time and returns nil.
	Revoke(ctx context.Context, name string, at time.Time) error
	// Lookup returns the key whose Hash is hash, revoked or not, or
	// ErrNotFound.
	Lookup(ctx context.Context, hash []byte) (Key, error)
}
