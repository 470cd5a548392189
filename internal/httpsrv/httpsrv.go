// Package httpsrv builds the HTTP servers Headroom runs (`serve`, `emulate`
// and the demo's emulator): HTTP/1.1 and HTTP/2 on one port, HTTP/2 either
// over TLS (ALPN) or in cleartext with prior knowledge (h2c), which the
// JavaScript AWS SDK v3's default request handler speaks on an http://
// endpoint. Go's net/http serves all three itself (Server.Protocols); no
// other library is needed.
//
// Every server gets the same bounds on what a slow or abusive client may
// hold: the time to send a request's headers, the size of those headers
// (HTTP/1.1 request line and headers, HTTP/2 header list after HPACK
// decoding), the streams one HTTP/2 connection may have open at once, and how
// long an idle connection is kept.
package httpsrv

import (
	"log/slog"
	"net/http"
	"time"
)

// Bounds on clients. Claude Code sends about 2 KB of headers and runs at
// most 20 subagents (CLAUDE_CODE_MAX_CONCURRENT_SUBAGENTS, BEDROCK.md
// section 6) with up to 10 tool calls each; an SDK in a busy service keeps
// one HTTP/2 connection per endpoint.
const (
	// MaxHeaderBytes bounds a request's headers (HTTP/2: the
	// SETTINGS_MAX_HEADER_LIST_SIZE advertised, enforced on the decoded
	// list). Net/http's default is 1 MiB.
	MaxHeaderBytes = 64 << 10
	// MaxConcurrentStreams is how many requests one HTTP/2 connection may
	// have in flight; a client that opens more has them refused
	// (RST_STREAM), and one that keeps doing so loses the connection.
	MaxConcurrentStreams = 250
	// ReadHeaderTimeout bounds the time to send a request's headers.
	ReadHeaderTimeout = 10 * time.Second
	// IdleTimeout closes a keep-alive connection (HTTP/2: with GOAWAY)
	// that has had no request in flight for this long.
	IdleTimeout = 2 * time.Minute
	// WriteByteTimeout closes an HTTP/2 connection whose peer has not read
	// a byte for this long while the server had data to send.
	WriteByteTimeout = 2 * time.Minute
)

// New returns a server for h that speaks HTTP/1.1, HTTP/2 over TLS (when
// served with ServeTLS) and h2c with prior knowledge, with the bounds above.
// Server errors (a bad TLS handshake, an HTTP/2 protocol error) are logged at
// warning level.
func New(h http.Handler, logger *slog.Logger) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           h,
		Protocols:         &p,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: MaxConcurrentStreams,
			WriteByteTimeout:     WriteByteTimeout,
		},
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// H2CTransport returns a client transport that speaks only h2c with prior
// knowledge to http:// URLs, as the JavaScript AWS SDK's default handler
// does. Tests and benchmarks use it.
func H2CTransport() *http.Transport {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Protocols = &p
	return tr
}
