package cli

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/headroomhq/headroom/internal/httpsrv"
)

// TestServeAndEmulateSpeakH2C: the commands themselves, not only
// httpsrv.New, answer HTTP/2 with prior knowledge and HTTP/1.1 on one
// plain http:// port.
func TestServeAndEmulateSpeakH2C(t *testing.T) {
	s := startInProcess(t, serveConfig(t, "{mode: none}", ""))
	base := s.url(t)
	emu := startInProcess(t, []string{"emulate", "--addr", "127.0.0.1:0"})
	var emuURL string
	if !emu.waitFor(func() bool {
		out := emu.stdout.String()
		i := strings.Index(out, "http://")
		if i < 0 {
			return false
		}
		emuURL = strings.Fields(out[i:])[0]
		return true
	}) {
		t.Fatalf("emulate did not start: %s", emu.stderr.String())
	}
	for _, c := range []struct {
		name, url string
		client    *http.Client
		major     int
	}{
		{"serve h2c", base + "/healthz", &http.Client{Transport: httpsrv.H2CTransport()}, 2},
		{"serve HTTP/1.1", base + "/healthz", &http.Client{}, 1},
		{"emulate h2c", emuURL + "/inference-profiles", &http.Client{Transport: httpsrv.H2CTransport()}, 2},
		{"emulate HTTP/1.1", emuURL + "/inference-profiles", &http.Client{}, 1},
	} {
		resp, err := c.client.Get(c.url)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != c.major {
			t.Errorf("%s: %s %d, want HTTP/%d 200", c.name, resp.Proto, resp.StatusCode, c.major)
		}
	}
}
