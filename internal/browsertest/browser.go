// Package browsertest drives Debian's headless Chromium for the tests that
// check what a person sees in a browser (the dashboard, the simulator's
// report). It is imported only by tests.
//
// Chromium is HEADROOM_CHROMIUM, else /usr/bin/chromium. Without one a test
// is skipped, except in CI (CI set), where it fails: .ci/run installs it, so
// a missing browser cannot pass as green.
package browsertest

import (
	"context"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium returns the browser's path, or skips (fails in CI) without one.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("HEADROOM_CHROMIUM"), "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium in CI: .ci/run installs Debian's chromium package")
	}
	t.Skip("no Chromium (apt-get install chromium, or set HEADROOM_CHROMIUM)")
	return ""
}

// Context starts a headless Chromium with a width x height window and
// returns a chromedp context for one tab; cleanup closes the browser.
func Context(t testing.TB, parent context.Context, width, height int) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Chromium(t)),
		chromedp.NoSandbox, // containers run tests as root, where Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("disable-quic", true),
	)
	actx, cancelA := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // start the browser now: its errors are setup errors
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}
