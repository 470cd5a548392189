package gateway

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestEarlyRefusalClosesConnection: a request refused before its body is
// read (no key, a bad key, an unknown path, /healthz) is answered at once
// and its connection closed, whatever the client does with the body it
// declared. net/http used to read up to 256 KB of the unread body with no
// deadline: 2,000 such connections were all still open after 157 s.
func TestEarlyRefusalClosesConnection(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{bodyRead: 30 * time.Second})
	for _, tt := range []struct {
		name, key string
		status    int
	}{
		{"no key", "", http.StatusForbidden},
		{"bad key", "not-a-key", http.StatusForbidden},
	} {
		conn := declare(t, h, tt.key, 200_000, `{"anthropic`)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: no answer: %v", tt.name, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
		// The server closes: the next read ends, well before the deadline.
		_, err = br.ReadByte()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: the connection is still open 5 s after the refusal", tt.name)
		}
	}
}
