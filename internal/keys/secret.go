package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
)

// A secret is SecretPrefix followed by secretChars base62 characters from
// crypto/rand: about 238 bits, so a hash can be looked up without salt and
// without a slow KDF.
const (
	SecretPrefix = "hr_"
	secretChars  = 40
	// SecretLen is the length of a secret.
	SecretLen = len(SecretPrefix) + secretChars
	// HashLen is the length of a Key's Hash.
	HashLen = sha256.Size
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewSecret returns a fresh secret from crypto/rand.
func NewSecret() string {
	s, err := newSecret(rand.Reader)
	if err != nil {
		// crypto/rand.Reader does not fail (it crashes the program instead).
		panic(err)
	}
	return s
}

// newSecret draws base62 characters from r without modulo bias: bytes at or
// above 248 (4 × 62) are dropped.
func newSecret(r io.Reader) (string, error) {
	out := make([]byte, 0, SecretLen)
	out = append(out, SecretPrefix...)
	var buf [64]byte
	for len(out) < SecretLen {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", fmt.Errorf("read random bytes: %w", err)
		}
		for _, b := range buf {
			if b >= 248 {
				continue
			}
			out = append(out, base62[b%62])
			if len(out) == SecretLen {
				break
			}
		}
	}
	return string(out), nil
}

// WellFormed reports whether s has the shape of a secret. The gateway checks
// it before hashing, so that garbage never reaches the store.
func WellFormed(s string) bool {
	if len(s) != SecretLen || s[:len(SecretPrefix)] != SecretPrefix {
		return false
	}
	for i := len(SecretPrefix); i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// Hash returns the value stored in Key.Hash for secret.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}
