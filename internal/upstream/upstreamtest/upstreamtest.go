// Package upstreamtest helps tests that build upstream clients: it cuts the
// AWS SDK's credential chain off from the machine the tests run on. It is
// for tests only.
package upstreamtest

import (
	"os"
	"path/filepath"
	"testing"
)

// NoCredentials leaves the SDK's default chain only what config and
// credentials (the contents of the shared config and credentials files,
// "" for empty) give it: no credentials in the environment, a fresh HOME
// (no SSO token cache), no container credentials, and instance metadata
// off, so nothing waits on 169.254.169.254. AWS_CA_BUNDLE is left as the
// machine sets it. The settings last until the test ends.
func NoCredentials(t testing.TB, config, credentials string) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range map[string]string{"config": config, "credentials": credentials} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("HOME", dir)
	for _, v := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}
