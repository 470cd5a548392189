// Package upstream is Headroom's client to Bedrock Runtime (or to `headroom
// emulate` standing in for it): one Client per configured upstream, with the
// aws-sdk-go-v2 credential chain or a named profile and SigV4 signing
// (service name "bedrock"), a Bedrock API key sent as a bearer token, or no
// authentication. It also classifies upstream answers into retry classes so
// the gateway can decide whether a failed call may be tried again, and
// reports failures of its own setup that no retry fixes (AWS credentials,
// CA bundle, endpoint) as typed errors: CredentialsError, EndpointError.
//
// Runtime calls go over HTTP/1.1 keep-alive connections that the Client
// pools itself (h1Transport: one call per connection at a time, on the
// caller's goroutine), which costs about half the CPU of http.Transport per
// call; the SDK's http.Transport still carries control-plane calls and any
// upstream reached through a proxy.
//
// It must not retry on its own, hold quota state, read environment
// variables beyond what the SDK's config loader reads, or forward a
// client's own credentials: the caller hands it the body and the few
// headers Bedrock needs, and decides what a failure means for the ledger.
// The one resend it makes: a call written to a pooled connection that the
// upstream had already closed, with nothing read back, goes again once on
// a new connection, as http.Transport does for requests it may replay. It
// never sets an http.Client timeout, which would cut long streams; a call's
// lifetime is its context.
package upstream
