package keys

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestKeyNeverPrintsHash(t *testing.T) {
	k := Key{Name: "alice", Hash: Hash("hr_" + strings.Repeat("s", 40)), Weight: 1}
	hexHash := hex.EncodeToString(k.Hash)
	var logged bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logged, nil))
	logger.Info("auth", "key", k)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("auth", "key", k)
	outputs := []string{
		fmt.Sprint(k), fmt.Sprintf("%v", k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k),
		fmt.Sprintf("%q", k), fmt.Sprint(&k), logged.String(),
	}
	for _, out := range outputs {
		if !strings.Contains(out, "alice") {
			t.Errorf("output %q does not name the key", out)
		}
		if strings.Contains(out, hexHash) || strings.Contains(out, fmt.Sprint(k.Hash)) || bytes.Contains([]byte(out), k.Hash) {
			t.Errorf("output %q contains the hash", out)
		}
	}
}

func TestKeyValidate(t *testing.T) {
	ok := Key{Name: "alice@example.com", Hash: Hash("x"), Weight: 1}
	tests := []struct {
		name   string
		change func(k *Key)
		valid  bool
	}{
		{"valid", func(*Key) {}, true},
		{"limits set", func(k *Key) { k.DailyTokens, k.MaxConcurrency, k.MaxOutputTokens = 1, 1, 1 }, true},
		{"empty name", func(k *Key) { k.Name = "" }, false},
		{"long name", func(k *Key) { k.Name = strings.Repeat("a", MaxNameLen+1) }, false},
		{"longest name", func(k *Key) { k.Name = strings.Repeat("a", MaxNameLen) }, true},
		{"space in name", func(k *Key) { k.Name = "al ice" }, false},
		{"slash in name", func(k *Key) { k.Name = "a/b" }, false},
		{"short hash", func(k *Key) { k.Hash = k.Hash[:31] }, false},
		{"zero weight", func(k *Key) { k.Weight = 0 }, false},
		{"negative weight", func(k *Key) { k.Weight = -1 }, false},
		{"NaN weight", func(k *Key) { k.Weight = nan() }, false},
		{"huge weight", func(k *Key) { k.Weight = 1e7 }, false},
		{"negative daily", func(k *Key) { k.DailyTokens = -1 }, false},
		{"negative concurrency", func(k *Key) { k.MaxConcurrency = -1 }, false},
		{"negative output", func(k *Key) { k.MaxOutputTokens = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := ok
			tt.change(&k)
			if err := k.Validate(); (err == nil) != tt.valid {
				t.Errorf("Validate() = %v, want valid=%v", err, tt.valid)
			}
		})
	}
}

func nan() float64 { z := 0.0; return z / z }

func TestRevoked(t *testing.T) {
	if (Key{}).Revoked() {
		t.Error("zero RevokedAt reported revoked")
	}
	if !(Key{RevokedAt: time.Unix(1, 0)}).Revoked() {
		t.Error("set RevokedAt reported active")
	}
}
