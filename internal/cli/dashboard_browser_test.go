package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/headroomhq/headroom/internal/browsertest"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
)

// dashboardServe is a real `headroom serve` (Main in this process) in front
// of an emulator, with an operations token and n keys: "alice" (a daily
// budget of 25,000 tokens, which one 4,000-token answer nearly spends),
// "bob", "carol", then "dev-04"... It returns the base URL, the token and
// the keys' secrets. extra is appended to the config file.
func dashboardServe(t *testing.T, n int, extra string) (base, token string, secrets map[string]string) {
	t.Helper()
	emu, err := emulator.New(config.DefaultEmulator(), slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	es := httptest.NewServer(emu)
	t.Cleanup(es.Close)
	args, data := serveYAML(t, fmt.Sprintf(`listen: 127.0.0.1:0
operations: {token_env: HEADROOM_TEST_OPS_TOKEN}
upstreams:
  - name: emu
    region: us-east-1
    endpoint: %s
    auth: {mode: none}
    buckets:
      - {name: sonnet-tpm, kind: tpm, limit: 60000}
      - {name: sonnet-tpd, kind: tpd, limit: 5000000}
`, es.URL)+extra)
	token = "ops-token-for-the-dashboard-test"
	t.Setenv("HEADROOM_TEST_OPS_TOKEN", token)
	secrets = map[string]string{}
	for i := range n {
		name, extra := []string{"alice", "bob", "carol"}[min(i, 2)], []string(nil)
		if i >= 3 {
			name = fmt.Sprintf("dev-%02d", i+1)
		}
		if i == 0 {
			extra = []string{"--daily-tokens", "25000"}
		}
		secrets[name] = newKey(t, append([]string{name, "--data-dir", data}, extra...)...)
	}
	s := startInProcess(t, append(args, "--log-level", "warn"))
	return s.url(t), token, secrets
}

// invokeAs sends one InvokeModel as key, the emulator writing out tokens,
// and returns the status.
func invokeAs(t *testing.T, base, secret string, out int) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/model/"+hostileModel+"/invoke",
		strings.NewReader(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":4096,"messages":[{"role":"user","content":"hello"}]}`))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set(emulator.HeaderOutputTokens, fmt.Sprint(out))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// console collects what the page writes to the console at error level.
type console struct {
	mu   sync.Mutex
	errs []string
}

func (c *console) listen(ctx context.Context) {
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				c.mu.Lock()
				c.errs = append(c.errs, m.String()+" at "+m.URL)
				c.mu.Unlock()
			}
		}
	}()
}

func (c *console) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.errs
	c.errs = nil
	return e
}

// TestDashboardInBrowser opens the dashboard of a real serve, with 50 keys
// and traffic that includes a throttle, in Debian's headless Chromium, and
// checks what a person sees: no console errors; the keys, the buckets, the
// throttle and (when the gateway forecasts) the forecast in the page; the
// charts drawn, counted in a screenshot's pixels; labels, the contrast of
// every text and every control reachable by keyboard; no sideways overflow
// on a phone; and the token form working from the keyboard.
// HEADROOM_DASHBOARD_SHOTS=DIR keeps the screenshots.
func TestDashboardInBrowser(t *testing.T) {
	browsertest.Chromium(t)
	base, token, secrets := dashboardServe(t, 50, "")
	// Traffic: alice's first call spends most of her budget, her second is
	// refused by the gateway (budget); bob and carol are served.
	for _, c := range []struct {
		key       string
		out, want int
	}{{"alice", 4000, 200}, {"bob", 3000, 200}, {"carol", 500, 200}, {"alice", 100, http.StatusTooManyRequests}} {
		if got := invokeAs(t, base, secrets[c.key], c.out); got != c.want {
			t.Fatalf("%s: status %d, want %d", c.key, got, c.want)
		}
	}
	forecasts := statusHasForecast(t, base, token)

	ctx := browsertest.Context(t, t.Context(), 1366, 768)
	var con console
	con.listen(ctx)
	tctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	// The token in the fragment, as a link from the operator would carry it.
	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/#token="+token),
		chromedp.WaitVisible("#keys tbody tr")); err != nil {
		t.Fatalf("the page shows no keys: %v", err)
	}
	// Two samples make a line; the page polls every 2 s.
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`document.querySelectorAll('#buckets canvas').length > 0 && window.performance.now() > 4500`,
		chromedp.WithPollingInterval(200*time.Millisecond))); err != nil {
		t.Fatalf("no bucket charts: %v", err)
	}

	var dom struct {
		Keys      []string `json:"keys"`
		Buckets   []string `json:"buckets"`
		Throttle  string   `json:"throttle"`
		Forecasts []string `json:"forecasts"`
		Live      string   `json:"live"`
		Shadow    bool     `json:"shadowShown"`
	}
	if err := evalInto(tctx, `({
		keys: [...document.querySelectorAll('#keys tbody th')].map(e => e.textContent),
		buckets: [...document.querySelectorAll('#buckets [data-bucket]')].map(e => e.dataset.bucket),
		throttle: document.querySelector('[data-throttle="gateway/budget"]')?.textContent ?? '',
		forecasts: [...document.querySelectorAll('#forecast .forecast')].map(e => e.textContent),
		live: document.getElementById('live').textContent,
		shadowShown: !document.getElementById('shadow').hidden,
	})`, &dom); err != nil {
		t.Fatal(err)
	}
	t.Logf("page: %d keys, buckets %v, gateway budget throttles %q, forecasts %q, %q", len(dom.Keys), dom.Buckets, dom.Throttle, dom.Forecasts, dom.Live)
	if len(dom.Keys) != 50 || !strings.HasPrefix(dom.Keys[0], "alice") {
		t.Errorf("keys table: %d rows starting %q, want 50 with alice (the heaviest) first", len(dom.Keys), dom.Keys[:min(1, len(dom.Keys))])
	}
	if !strings.Contains(strings.Join(dom.Buckets, " "), "emu/sonnet-tpm") || !strings.Contains(strings.Join(dom.Buckets, " "), "emu/sonnet-tpd") {
		t.Errorf("bucket cards %v, want emu/sonnet-tpm and emu/sonnet-tpd", dom.Buckets)
	}
	if dom.Throttle != "1" {
		t.Errorf("gateway budget throttles on the page: %q, want 1", dom.Throttle)
	}
	if dom.Shadow {
		t.Error("the page shows the shadow-mode section while the gateway enforces")
	}
	if forecasts && !strings.Contains(strings.Join(dom.Forecasts, " "), "alice") {
		t.Errorf("the gateway forecasts, but the page shows no forecast of alice's budget: %q", dom.Forecasts)
	}

	shot := screenshot(t, tctx, "desktop-1366.png")
	if dir := os.Getenv("HEADROOM_DASHBOARD_SHOTS"); dir != "" {
		if b, err := chromedp.Run(tctx, chromedp.FullScreenshot(100)); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "desktop-1366-full.png"), b, 0o644)
		}
	}
	var rects []rect
	if err := evalInto(tctx, `[...document.querySelectorAll('#buckets canvas')].map(c => { const r = c.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; })`, &rects); err != nil {
		t.Fatal(err)
	}
	used, effective := chartPixels(shot, rects)
	t.Logf("charts: %d canvases, %d pixels of the used area, %d of the effective-capacity line", len(rects), used, effective)
	if used < 30 || effective < 200 {
		t.Errorf("the charts are not drawn: %d used-area and %d effective-line pixels in %d canvases", used, effective, len(rects))
	}

	checkAccessibility(t, tctx)

	// The day's range, chosen from the keyboard, redraws the charts from
	// the day's ring.
	var day string
	if err := chromedp.Do(tctx, chromedp.Focus("#range-day"), chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
	if err := evalInto(tctx, `document.getElementById('range-day').getAttribute('aria-pressed') + ' ' + document.querySelector('#buckets canvas').getAttribute('aria-label')`, &day); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(day, "true ") || !strings.Contains(day, "over the last day") {
		t.Errorf("after choosing the last day: %q", day)
	}
	if err := chromedp.Do(tctx, chromedp.Click("#range-hour")); err != nil {
		t.Fatal(err)
	}

	// A phone: nothing wider than the screen; the key table scrolls inside
	// its own box.
	var phone struct {
		Overflow    int  `json:"overflow"`
		TableScroll bool `json:"tableScroll"`
	}
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)), chromedp.Sleep(2500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := evalInto(tctx, `({overflow: document.documentElement.scrollWidth - window.innerWidth,
		tableScroll: (w => w.scrollWidth > w.clientWidth || w.scrollHeight > w.clientHeight)(document.querySelector('#keys').parentElement)})`, &phone); err != nil {
		t.Fatal(err)
	}
	screenshot(t, tctx, "phone-390.png")
	if phone.Overflow > 0 || !phone.TableScroll {
		t.Errorf("on a 390 px phone: page %d px wider than the screen, key table scrolls in its box: %v", phone.Overflow, phone.TableScroll)
	}
	if errs := con.take(); len(errs) != 0 {
		t.Errorf("console errors: %q", errs)
	}

	// Without the token: the form, filled and sent from the keyboard.
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(1366, 768),
		chromedp.Evaluate[chromedp.Void](`sessionStorage.clear()`), chromedp.Reload(),
		chromedp.WaitVisible("#token"), chromedp.SendKeys("#token", token+kb.Enter),
		chromedp.WaitVisible("#keys tbody tr")); err != nil {
		t.Errorf("the token form did not open the page: %v", err)
	}
	for _, e := range con.take() {
		// The page's one request without the token is refused, which
		// Chromium logs; anything else is an error of the page.
		if !strings.Contains(e, "403") && !strings.Contains(e, "401") {
			t.Errorf("console error after the token form: %s", e)
		}
	}
}

// TestDashboardShadowInBrowser opens the dashboard of a serve in shadow mode
// (policy.mode: shadow) in headless Chromium. Alice's second call is over
// her daily budget: forwarded all the same (shadow mode never refuses), it
// must show on the page as a would-be budget refusal, beside the judged and
// answered counts, with no console errors.
func TestDashboardShadowInBrowser(t *testing.T) {
	browsertest.Chromium(t)
	base, token, secrets := dashboardServe(t, 3, "policy: {mode: shadow}\n")
	for _, c := range []struct {
		key string
		out int
	}{{"alice", 4000}, {"bob", 300}, {"alice", 100}} {
		if got := invokeAs(t, base, secrets[c.key], c.out); got != http.StatusOK {
			t.Fatalf("%s: status %d, want 200 (shadow mode forwards everything)", c.key, got)
		}
	}
	ctx := browsertest.Context(t, t.Context(), 1366, 768)
	var con console
	con.listen(ctx)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/#token="+token), chromedp.WaitVisible("#shadow-body dl")); err != nil {
		t.Fatalf("the page shows no shadow-mode section: %v", err)
	}
	var rows map[string]string
	if err := evalInto(tctx, `Object.fromEntries([...document.querySelectorAll('#shadow-body dt')].map(dt => [dt.textContent, dt.nextElementSibling.textContent]))`, &rows); err != nil {
		t.Fatal(err)
	}
	t.Logf("shadow section: %v", rows)
	for name, want := range map[string]string{"requests": "3", "would refuse budget": "1", "answered": "3", "upstream 429": "0", "would queue wait max": "0 ms"} {
		if rows[name] != want {
			t.Errorf("shadow section %q = %q, want %q", name, rows[name], want)
		}
	}
	if errs := con.take(); len(errs) != 0 {
		t.Errorf("console errors: %q", errs)
	}
}

// statusHasForecast reports whether /v1/status carries forecasts.
func statusHasForecast(t *testing.T, base, token string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return bytes.Contains(b, []byte(`"budget_forecast"`))
}

func evalInto(ctx context.Context, js string, v any) error {
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](js))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

type rect struct{ X, Y, W, H float64 }

func screenshot(t *testing.T, ctx context.Context, name string) image.Image {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("HEADROOM_DASHBOARD_SHOTS"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// chartPixels counts, inside the canvases' rectangles, the pixels of the
// used area (blue) and of the effective-capacity line (orange): colours no
// text, grid line or background of the page has.
func chartPixels(img image.Image, rects []rect) (used, effective int) {
	for _, r := range rects {
		for y := int(r.Y); y < int(r.Y+r.H); y++ {
			for x := int(r.X); x < int(r.X+r.W); x++ {
				r32, g32, b32, _ := img.At(x, y).RGBA()
				red, green, blue := int(r32>>8), int(g32>>8), int(b32>>8)
				switch {
				case blue > red+60 && blue > green+30:
					used++
				case red > 180 && green > 80 && green < 160 && blue < 60:
					effective++
				}
			}
		}
	}
	return used, effective
}

// checkAccessibility checks the basics: every control and chart has a
// name, every text has a contrast of at least 4.5 with what it is drawn
// on, and Tab reaches every control.
func checkAccessibility(t *testing.T, ctx context.Context) {
	t.Helper()
	var a struct {
		Unlabelled  []string `json:"unlabelled"`
		LowContrast []string `json:"lowContrast"`
		Controls    int      `json:"controls"`
	}
	if err := evalInto(ctx, a11yJS, &a); err != nil {
		t.Fatal(err)
	}
	if len(a.Unlabelled) > 0 {
		t.Errorf("controls or charts without an accessible name: %q", a.Unlabelled)
	}
	if len(a.LowContrast) > 0 {
		t.Errorf("text below a 4.5 contrast ratio: %q", a.LowContrast)
	}
	// Tab through the page from the top, collecting what takes the focus.
	reached := map[string]bool{}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)`)); err != nil {
		t.Fatal(err)
	}
	for range a.Controls + 5 {
		var id string
		if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
			t.Fatal(err)
		}
		if err := evalInto(ctx, `document.activeElement.dataset.a11y || ''`, &id); err != nil {
			t.Fatal(err)
		}
		reached[id] = true
	}
	for i := range a.Controls {
		if !reached[fmt.Sprint(i)] {
			var what string
			_ = evalInto(ctx, fmt.Sprintf(`document.querySelector('[data-a11y="%d"]').outerHTML.slice(0, 120)`, i), &what)
			t.Errorf("Tab never reaches %s", what)
		}
	}
}

// a11yJS marks every visible control with data-a11y="i" and returns those
// without a name, the texts below 4.5:1, and the number of controls.
const a11yJS = `(() => {
  const visible = (e) => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  const controls = [...document.querySelectorAll('a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex="-1"])')]
    .filter(visible);
  controls.forEach((e, i) => e.dataset.a11y = String(i));
  const name = (e) => (e.getAttribute('aria-label') || (e.labels && [...e.labels].map(l => l.textContent).join(' ')) ||
    (e.getAttribute('aria-labelledby') || '').split(' ').map(id => document.getElementById(id)?.textContent || '').join(' ') ||
    e.textContent || '').trim();
  const unlabelled = controls.concat([...document.querySelectorAll('canvas')].filter(visible))
    .filter(e => !name(e) || (e.tagName === 'CANVAS' && e.getAttribute('role') !== 'img')).map(e => e.outerHTML.slice(0, 100));
  const rgb = (c) => { const m = c.match(/[\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
  const lum = ({r, g, b}) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = (e) => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c.a > 0.5) return c; }
    return {r: 255, g: 255, b: 255}; };
  const low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const e = n.parentElement;
    if (!n.textContent.trim() || !e || !visible(e) || e.closest('.sr')) continue;
    const fg = rgb(getComputedStyle(e).color), bg = background(e);
    const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    if (ratio < 4.5) low.push(n.textContent.trim().slice(0, 40) + ': ' + ratio.toFixed(2));
  }
  return {unlabelled, lowContrast: low.slice(0, 20), controls: controls.length};
})()`
