package simulate

import (
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/browsertest"
)

// TestReportInBrowser renders the HTML report in headless Chromium and checks
// from a screenshot that the charts, which the page embeds as SVG images,
// were drawn: the page's own text and links are black, grey and blue, while
// the charts' bars and lines are red and green.
func TestReportInBrowser(t *testing.T) {
	chromium := browsertest.Chromium(t)
	once := seedCharts()
	if once.err != nil {
		t.Fatal(once.err)
	}
	dir := t.TempDir()
	if err := WriteReport(dir, once.r, once.charts); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "page.png")
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--hide-scrollbars", "--user-data-dir="+t.TempDir(), "--window-size=1280,7000",
		"--screenshot="+shot, "file://"+filepath.Join(dir, "index.html"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	var red, green int
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r32, g32, b32, _ := img.At(x, y).RGBA()
			r, g, bl := int(r32>>8), int(g32>>8), int(b32>>8)
			switch {
			case r > 180 && g < 120 && bl < 120:
				red++
			case g > r+30 && g > bl+30:
				green++
			}
		}
	}
	t.Logf("screenshot %dx%d: %d red and %d green pixels", b.Dx(), b.Dy(), red, green)
	if red < 2000 || green < 2000 {
		t.Errorf("the charts do not seem to be drawn: %d red and %d green pixels, want at least 2,000 of each", red, green)
	}
}
