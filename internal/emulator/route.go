package emulator

import "strings"

// A request's region is, in order: a path prefix /region/NAME, stripped
// before routing (so a client's base URL can be
// http://127.0.0.1:4567/region/eu-west-1); the region of a SigV4
// Authorization header's credential scope; the configured default region.

const regionPrefix = "/region/"

// splitRegionPrefix splits "/region/NAME/rest" into NAME and "/rest". ok is
// false when path has no such prefix or NAME is not a region name.
func splitRegionPrefix(path string) (region, rest string, ok bool) {
	if !strings.HasPrefix(path, regionPrefix) {
		return "", path, false
	}
	name, tail, _ := strings.Cut(path[len(regionPrefix):], "/")
	if !isRegionName(name) {
		return "", path, false
	}
	return name, "/" + tail, true
}

// authKind is how a request authenticates. The emulator checks no
// signature and no key: it only tells them apart.
type authKind int

const (
	authNone      authKind = iota // no Authorization header
	authMalformed                 // an Authorization header of no known form
	authBearer                    // Authorization: Bearer KEY (a Bedrock API key)
	authSigV4                     // AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, ...
)

// parseAuthorization classifies an Authorization header and returns the
// region of a SigV4 credential scope ("" when it names none, as SigV4a's
// does).
func parseAuthorization(h string) (kind authKind, region string) {
	if h == "" {
		return authNone, ""
	}
	scheme, params, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if strings.TrimSpace(params) == "" {
			return authMalformed, ""
		}
		return authBearer, ""
	case strings.HasPrefix(scheme, "AWS4-"):
		_, cred, ok := strings.Cut(params, "Credential=")
		if !ok {
			return authMalformed, ""
		}
		if i := strings.IndexAny(cred, ", "); i >= 0 {
			cred = cred[:i]
		}
		// KEY/DATE/REGION/SERVICE/aws4_request; SigV4a has no REGION.
		parts := strings.Split(cred, "/")
		if parts[len(parts)-1] != "aws4_request" || len(parts) < 4 || parts[0] == "" {
			return authMalformed, ""
		}
		if len(parts) == 5 && isRegionName(parts[2]) {
			return authSigV4, parts[2]
		}
		return authSigV4, ""
	}
	return authMalformed, ""
}

// isRegionName reports whether s looks like an AWS region name: lowercase
// words joined by '-', ending in a number (us-east-1, ap-southeast-2,
// us-gov-west-1).
func isRegionName(s string) bool {
	if len(s) < 4 || len(s) > 32 {
		return false
	}
	dash := strings.LastIndexByte(s, '-')
	if dash <= 0 || dash == len(s)-1 || s[dash-1] == '-' {
		return false
	}
	for i := 0; i < dash; i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z':
		case c == '-' && i > 0 && s[i-1] != '-':
		default:
			return false
		}
	}
	for i := dash + 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
