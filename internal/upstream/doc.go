// Package upstream is Headroom's client to Bedrock Runtime (or to `headroom
// emulate` standing in for it): one Client per configured upstream, with the
// aws-sdk-go-v2 credential chain or a named profile and SigV4 signing
// (service name "bedrock"), a Bedrock API key sent as a bearer token, or no
// authentication. It also classifies upstream answers into retry classes so
// the gateway can decide whether a failed call may be tried again, and
// reports failures of its own setup that no retry fixes (AWS credentials,
// CA bundle, endpoint) as typed errors: CredentialsError, EndpointError.
//
// It must not retry on its own, hold quota state, read environment variables
// beyond what the SDK's config loader reads, or forward a client's own
// credentials: the caller hands it the body and the few headers Bedrock
// needs, and decides what a failure means for the ledger. It never sets an
// http.Client timeout, which would cut long streams; a call's lifetime is its
// context.
package upstream
