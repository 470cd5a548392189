package httpsrv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// start serves h with New on a loopback port; edit adjusts the server
// before it starts.
func start(t *testing.T, h http.Handler, edit func(*http.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := New(h, slog.New(slog.DiscardHandler))
	if edit != nil {
		edit(hs)
	}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return ln.Addr().String()
}

// raw is an HTTP/2 client written frame by frame, which unlike Go's
// transport does not respect the server's limits: the abusive client.
type raw struct {
	t   *testing.T
	c   net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	hb  bytes.Buffer
	// settings are the server's, from its first SETTINGS frame.
	settings map[http2.SettingID]uint32
}

func dialRaw(t *testing.T, addr string) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c, fr: http2.NewFramer(c, c), settings: map[http2.SettingID]uint32{}}
	r.enc = hpack.NewEncoder(&r.hb)
	r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	r.fr.MaxHeaderListSize = 1 << 20
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := r.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	f := r.next()
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame from the server is %v, want SETTINGS", f)
	}
	_ = sf.ForeachSetting(func(s http2.Setting) error { r.settings[s.ID] = s.Val; return nil })
	if err := r.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	return r
}

// next reads the next frame, answering pings and skipping acks and window
// updates; it fails the test after 5 s.
func (r *raw) next() http2.Frame {
	r.t.Helper()
	for {
		_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		f, err := r.fr.ReadFrame()
		if err != nil {
			r.t.Fatalf("read frame: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
		case *http2.WindowUpdateFrame:
			continue
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = r.fr.WritePing(true, f.Data)
			}
			continue
		}
		return f
	}
}

// get opens stream id with a GET of path and extra headers, split into
// CONTINUATION frames as HTTP/2 requires of a large header block.
func (r *raw) get(id uint32, path string, extra ...string) {
	r.t.Helper()
	r.hb.Reset()
	fields := []string{":method", "GET", ":scheme", "http", ":authority", "headroom.test", ":path", path}
	fields = append(fields, extra...)
	for i := 0; i+1 < len(fields); i += 2 {
		_ = r.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	block := r.hb.Bytes()
	const maxFrame = 16 << 10
	first := block[:min(len(block), maxFrame)]
	rest := block[len(first):]
	err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: true, EndHeaders: len(rest) == 0})
	for err == nil && len(rest) > 0 {
		n := min(len(rest), maxFrame)
		err = r.fr.WriteContinuation(id, n == len(rest), rest[:n])
		rest = rest[n:]
	}
	if err != nil {
		r.t.Fatal(err)
	}
}

func status(f *http2.MetaHeadersFrame) string { return f.PseudoValue("status") }

func TestBothProtocolsOnOnePort(t *testing.T) {
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}), nil)
	for _, tc := range []struct {
		name   string
		client *http.Client
		want   string
	}{
		{"HTTP/1.1", &http.Client{}, "HTTP/1.1"},
		{"h2c prior knowledge", &http.Client{Transport: H2CTransport()}, "HTTP/2.0"},
	} {
		resp, err := tc.client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != tc.want || resp.Proto != tc.want {
			t.Errorf("%s: served as %q, response %q; want %q", tc.name, b, resp.Proto, tc.want)
		}
	}
}

// TestTooManyStreams: a client that opens more streams than the server
// advertised gets the extra one refused; no more handlers run at once than
// the bound, and the streams within it are answered.
func TestTooManyStreams(t *testing.T) {
	release := make(chan struct{})
	var running, most atomic.Int64
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		w.WriteHeader(http.StatusNoContent)
	}), nil)
	r := dialRaw(t, addr)
	if got := r.settings[http2.SettingMaxConcurrentStreams]; got != MaxConcurrentStreams {
		t.Fatalf("server advertised SETTINGS_MAX_CONCURRENT_STREAMS %d, want %d", got, MaxConcurrentStreams)
	}
	over := uint32(2*MaxConcurrentStreams + 1) // the bound's next stream
	for id := uint32(1); id <= over; id += 2 {
		r.get(id, "/")
	}
	f := r.next()
	rst, ok := f.(*http2.RSTStreamFrame)
	if !ok || rst.StreamID != over {
		t.Fatalf("after %d streams the server sent %v, want RST_STREAM on stream %d", MaxConcurrentStreams+1, f, over)
	}
	// The refusal can come before every handler of the streams within the
	// bound has started: let them all start before any ends.
	for deadline := time.Now().Add(5 * time.Second); running.Load() < MaxConcurrentStreams && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	close(release)
	answered := 0
	for answered < MaxConcurrentStreams {
		switch f := r.next().(type) {
		case *http2.MetaHeadersFrame:
			if status(f) != "204" {
				t.Fatalf("stream %d: status %s", f.StreamID, status(f))
			}
			answered++
		case *http2.GoAwayFrame:
			t.Fatalf("server sent GOAWAY after %d answers", answered)
		}
	}
	if m := most.Load(); m != MaxConcurrentStreams {
		t.Errorf("at most %d handlers ran at once, want %d", m, MaxConcurrentStreams)
	}
}

// TestOversizedHeaders: headers a little over MaxHeaderBytes get 431 on
// both protocols and the HTTP/2 connection goes on serving; far more (one
// value twice the bound) costs the HTTP/2 client its connection.
func TestOversizedHeaders(t *testing.T) {
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}), nil)
	chunk := strings.Repeat("a", 4<<10)
	var many []string // MaxHeaderBytes and 8 KiB more, in 4 KiB headers
	for i := range MaxHeaderBytes/len(chunk) + 2 {
		many = append(many, fmt.Sprintf("x-big-%d", i), chunk)
	}

	r := dialRaw(t, addr)
	if got := r.settings[http2.SettingMaxHeaderListSize]; got == 0 || got > 2*MaxHeaderBytes {
		t.Errorf("server advertised SETTINGS_MAX_HEADER_LIST_SIZE %d, want about %d", got, MaxHeaderBytes)
	}
	r.get(1, "/", many...)
	r.get(3, "/")
	// The two streams are served concurrently, so their answers may come
	// in either order.
	want := map[uint32]string{1: "431", 3: "204"}
	for len(want) > 0 {
		got := r.next()
		if _, isData := got.(*http2.DataFrame); isData {
			continue // the 431's body
		}
		f, ok := got.(*http2.MetaHeadersFrame)
		if !ok || want[f.StreamID] == "" || status(f) != want[f.StreamID] {
			t.Fatalf("got %v, want %v (status by stream)", got, want)
		}
		delete(want, f.StreamID)
	}
	r.get(5, "/", "x-huge", strings.Repeat("a", 2*MaxHeaderBytes))
	got := r.next()
	for _, isData := got.(*http2.DataFrame); isData; _, isData = got.(*http2.DataFrame) {
		got = r.next() // the rest of the 431's body may still be on its way
	}
	if _, ok := got.(*http2.GoAwayFrame); !ok {
		t.Fatalf("a %d-byte header value got %v, want GOAWAY", 2*MaxHeaderBytes, got)
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	for i := 0; i+1 < len(many); i += 2 {
		req.Header.Set(many[i], many[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("HTTP/1.1 with %d KiB of headers: status %d, want 431", len(many)/2*4, resp.StatusCode)
	}
}

// TestIdleConnectionClosed: an HTTP/2 connection with nothing in flight is
// sent GOAWAY and closed after the idle timeout.
func TestIdleConnectionClosed(t *testing.T) {
	addr := start(t, http.NotFoundHandler(), func(hs *http.Server) { hs.IdleTimeout = 100 * time.Millisecond })
	r := dialRaw(t, addr)
	if f, ok := r.next().(*http2.GoAwayFrame); !ok {
		t.Fatalf("idle connection got %v, want GOAWAY", f)
	}
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := r.fr.ReadFrame(); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
				return
			}
			t.Fatalf("after GOAWAY: %v, want the connection closed", err)
		}
	}
}
