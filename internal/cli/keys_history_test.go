package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestKeysCreateOnRevokedNameKeepsHistory: a new key under a revoked name
// does not erase the old key: `keys list` shows both, the old one revoked
// and replaced, with its own creation date.
func TestKeysCreateOnRevokedNameKeepsHistory(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := run(t, "keys", "create", "alice", "--daily-tokens", "1000", "--data-dir", dir); code != 0 {
		t.Fatalf("create: %s", errOut)
	}
	if code, _, errOut := run(t, "keys", "revoke", "alice", "--data-dir", dir); code != 0 {
		t.Fatalf("revoke: %s", errOut)
	}
	code, out, errOut := run(t, "keys", "create", "alice", "--daily-tokens", "2000000", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "is kept") {
		t.Fatalf("create again: exit %d, %q, %q; want it created and the old one said to be kept", code, out, errOut)
	}

	_, out, _ = run(t, "keys", "list", "--data-dir", dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("keys list has %d lines, want a header and two alice rows:\n%s", len(lines), out)
	}
	if f := strings.Fields(lines[1]); f[0] != "alice" || f[2] != "2,000,000" || f[len(f)-1] != "active" {
		t.Errorf("new key row = %q", lines[1])
	}
	if f := strings.Fields(lines[2]); f[0] != "alice" || f[2] != "1,000" || !strings.HasSuffix(lines[2], ", replaced") {
		t.Errorf("old key row = %q; want alice, its own limits, revoked and replaced", lines[2])
	}

	_, out, _ = run(t, "keys", "list", "--json", "--data-dir", dir)
	var got []keyView
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "alice" || got[0].RevokedAt != nil || got[1].Name != "alice" || got[1].RevokedAt == nil || !got[1].Replaced ||
		got[1].DailyTokens != 1000 || !got[1].CreatedAt.Before(got[0].CreatedAt) {
		t.Errorf("keys list --json = %+v; want the new alice and the old one, revoked, replaced, with its own limits and earlier creation", got)
	}
}
