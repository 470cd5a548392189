package keys

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestNewSecretShape(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := NewSecret()
		if !WellFormed(s) {
			t.Fatalf("NewSecret() = %q is not well formed", s)
		}
		if seen[s] {
			t.Fatalf("NewSecret() repeated %q", s)
		}
		seen[s] = true
	}
}

func TestNewSecretDropsBiasedBytes(t *testing.T) {
	// 248..255 must be skipped, 0 maps to '0', 61 to 'z', 62 wraps to '0'.
	src := append(bytes.Repeat([]byte{255, 248}, 10), 0, 61, 62, 123, 247)
	src = append(src, bytes.Repeat([]byte{1}, 200)...)
	got, err := newSecret(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	want := "hr_" + "0z0z" + "z" + strings.Repeat("1", 35)
	if got != want {
		t.Errorf("newSecret = %q, want %q", got, want)
	}
}

func TestNewSecretReaderError(t *testing.T) {
	boom := errors.New("boom")
	if _, err := newSecret(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("newSecret(failing reader) error = %v, want %v", err, boom)
	}
}

func TestWellFormed(t *testing.T) {
	good := "hr_" + strings.Repeat("aZ09", 10)
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"good", good, true},
		{"empty", "", false},
		{"prefix only", "hr_", false},
		{"one short", good[:len(good)-1], false},
		{"one long", good + "a", false},
		{"wrong prefix", "hx_" + good[3:], false},
		{"upper prefix", "HR_" + good[3:], false},
		{"dash", good[:10] + "-" + good[11:], false},
		{"space", good[:10] + " " + good[11:], false},
		{"non-ascii", good[:41] + "é", false},
		{"bearer left on", "Bearer " + good, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WellFormed(tt.in); got != tt.want {
				t.Errorf("WellFormed(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestHashIsSHA256(t *testing.T) {
	s := "hr_" + strings.Repeat("a", 40)
	want := sha256.Sum256([]byte(s))
	if got := Hash(s); !bytes.Equal(got, want[:]) {
		t.Errorf("Hash = %x, want %x", got, want)
	}
}

func FuzzWellFormed(f *testing.F) {
	f.Add("hr_" + strings.Repeat("aZ09", 10))
	f.Add("")
	f.Add("hr_é")
	f.Fuzz(func(t *testing.T, s string) {
		if !WellFormed(s) {
			return
		}
		if len(s) != SecretLen || !strings.HasPrefix(s, SecretPrefix) {
			t.Fatalf("WellFormed accepted %q", s)
		}
		for _, c := range s[len(SecretPrefix):] {
			if !strings.ContainsRune(base62, c) {
				t.Fatalf("WellFormed accepted %q with %q", s, c)
			}
		}
	})
}
