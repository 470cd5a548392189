package keys

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Errors a Store returns, and those Registry.Authenticate returns. The
// gateway answers ErrUnknown and ErrRevoked with 403 AccessDeniedException.
var (
	ErrExists   = errors.New("a key with this name already exists")
	ErrNotFound = errors.New("no such key")
	ErrUnknown  = errors.New("unknown key")
	ErrRevoked  = errors.New("key revoked")
)

// Key is a developer key: who it is, what it may use, and the hash of its
// secret. Limits of 0 mean "no per-key limit".
type Key struct {
	// Name identifies the developer in logs, metrics, routes and status.
	Name string
	// Hash is the SHA-256 of the secret (Hash(secret)). Never the secret.
	Hash []byte
	// Weight is the key's share of contended capacity relative to other
	// keys; it must be positive.
	Weight float64
	// DailyTokens caps the quota tokens the key may be charged per day; 0
	// means no per-key budget.
	DailyTokens int64
	// MaxConcurrency caps the key's requests in flight; 0 means no cap.
	MaxConcurrency int
	// MaxOutputTokens caps max_tokens for this key, below the policy's cap;
	// 0 means only the policy applies.
	MaxOutputTokens int
	// CreatedAt is when the key was created.
	CreatedAt time.Time
	// RevokedAt is when the key was revoked; the zero time means it is active.
	RevokedAt time.Time
}

// Revoked reports whether the key has been revoked.
func (k Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// String names the key without its hash, so that printing a Key by mistake
// leaks nothing.
func (k Key) String() string { return "key " + k.Name }

// GoString is String, so that %#v does not print the hash either.
func (k Key) GoString() string { return k.String() }

// LogValue logs the key's name and limits, never its hash.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", k.Name),
		slog.Float64("weight", k.Weight),
		slog.Bool("revoked", k.Revoked()),
	)
}

// MaxNameLen is the longest key name accepted.
const MaxNameLen = 64

// Validate reports the first thing wrong with a key about to be created.
func (k Key) Validate() error {
	if err := ValidateName(k.Name); err != nil {
		return err
	}
	switch {
	case len(k.Hash) != HashLen:
		return fmt.Errorf("key %q: hash must be %d bytes", k.Name, HashLen)
	case !(k.Weight > 0) || k.Weight > 1e6:
		return fmt.Errorf("key %q: weight %v must be above 0 and at most 1e6", k.Name, k.Weight)
	case k.DailyTokens < 0:
		return fmt.Errorf("key %q: daily tokens %d is negative", k.Name, k.DailyTokens)
	case k.MaxConcurrency < 0:
		return fmt.Errorf("key %q: max concurrency %d is negative", k.Name, k.MaxConcurrency)
	case k.MaxOutputTokens < 0:
		return fmt.Errorf("key %q: max output tokens %d is negative", k.Name, k.MaxOutputTokens)
	}
	return nil
}

// ValidateName accepts 1 to MaxNameLen letters, digits and . _ @ - so that a
// name is safe in a metric label, a log line and a shell.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("key name must be 1 to %d characters", MaxNameLen)
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '@' || c == '-'
		if !ok {
			return fmt.Errorf("key name %q: only letters, digits and . _ @ - are allowed", name)
		}
	}
	return nil
}

// archiveSep joins a revoked key's name and its revocation time when a new
// key takes the name. ValidateName refuses it, so that no created key can
// have an archived key's name.
const archiveSep = "~"

// ArchivedName is the name a revoked key is kept under when a new key is
// created with its name: NAME~REVOKED, the revocation time in Unix
// nanoseconds. Stores keep the old record there, so that its history (who
// had the name, when it was created and revoked) stays listed.
func ArchivedName(name string, revokedAt time.Time) string {
	return name + archiveSep + strconv.FormatInt(revokedAt.UnixNano(), 10)
}

// BaseName returns the name a key was created under, and whether name is
// an archived one (ArchivedName).
func BaseName(name string) (string, bool) {
	base, _, archived := strings.Cut(name, archiveSep)
	return base, archived
}
