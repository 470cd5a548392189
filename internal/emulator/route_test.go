package emulator

import (
	"strings"
	"testing"
)

func TestSplitRegionPrefix(t *testing.T) {
	tests := []struct {
		path       string
		wantRegion string
		wantRest   string
		wantOK     bool
	}{
		{"/region/eu-west-1/model/x/invoke", "eu-west-1", "/model/x/invoke", true},
		{"/region/us-gov-west-1/inference-profiles", "us-gov-west-1", "/inference-profiles", true},
		{"/region/ap-southeast-2", "ap-southeast-2", "/", true},
		{"/model/x/invoke", "", "/model/x/invoke", false},
		{"/region/EU-WEST-1/model/x/invoke", "", "/region/EU-WEST-1/model/x/invoke", false},
		{"/region//model/x/invoke", "", "/region//model/x/invoke", false},
		{"/region/eu-west/x", "", "/region/eu-west/x", false},
		{"/regions/eu-west-1/x", "", "/regions/eu-west-1/x", false},
	}
	for _, tt := range tests {
		region, rest, ok := splitRegionPrefix(tt.path)
		if region != tt.wantRegion || rest != tt.wantRest || ok != tt.wantOK {
			t.Errorf("splitRegionPrefix(%q) = %q, %q, %v; want %q, %q, %v", tt.path, region, rest, ok, tt.wantRegion, tt.wantRest, tt.wantOK)
		}
	}
}

func TestParseAuthorization(t *testing.T) {
	tests := []struct {
		header     string
		wantKind   authKind
		wantRegion string
	}{
		{"", authNone, ""},
		{"Bearer ABSKexample", authBearer, ""},
		{"bearer x", authBearer, ""},
		{"Bearer", authMalformed, ""},
		{"Bearer   ", authMalformed, ""},
		{"AWS4-HMAC-SHA256 Credential=AKID/20260302/eu-west-1/bedrock/aws4_request, SignedHeaders=host, Signature=ab", authSigV4, "eu-west-1"},
		{"AWS4-HMAC-SHA256 Credential=AKID/20260302/us-east-1/bedrock/aws4_request,SignedHeaders=host,Signature=ab", authSigV4, "us-east-1"},
		{"AWS4-ECDSA-P256-SHA256 Credential=AKID/20260302/bedrock/aws4_request, SignedHeaders=host, Signature=ab", authSigV4, ""},
		{"AWS4-HMAC-SHA256 Credential=AKID/20260302/Not A Region/bedrock/aws4_request", authMalformed, ""},
		{"AWS4-HMAC-SHA256 Credential=AKID/20260302/xx/bedrock/aws4_request", authSigV4, ""},
		{"AWS4-HMAC-SHA256 SignedHeaders=host", authMalformed, ""},
		{"AWS4-HMAC-SHA256 Credential=/20260302/us-east-1/bedrock/aws4_request", authMalformed, ""},
		{"Basic dXNlcjpwYXNz", authMalformed, ""},
	}
	for _, tt := range tests {
		kind, region := parseAuthorization(tt.header)
		if kind != tt.wantKind || region != tt.wantRegion {
			t.Errorf("parseAuthorization(%q) = %v, %q; want %v, %q", tt.header, kind, region, tt.wantKind, tt.wantRegion)
		}
	}
}

func TestIsRegionName(t *testing.T) {
	for s, want := range map[string]bool{
		"us-east-1": true, "ap-southeast-2": true, "us-gov-west-1": true, "eu-central-12": true,
		"": false, "-1": false, "us-east-": false, "us--east-1": false, "-us-east-1": false,
		"us-east-1a": false, "US-east-1": false, "us_east_1": false, "useast1": false,
	} {
		if got := isRegionName(s); got != want {
			t.Errorf("isRegionName(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzSplitRegionPrefix: a region found is a region name, and the prefix
// and the rest put back together give the path.
func FuzzSplitRegionPrefix(f *testing.F) {
	for _, s := range []string{"/region/eu-west-1/model/x/invoke", "/region/", "/region/a-1", "/model/a%2Fb/invoke", "/region/us-east-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		region, rest, ok := splitRegionPrefix(path)
		if !ok {
			if region != "" || rest != path {
				t.Fatalf("not ok but %q, %q", region, rest)
			}
			return
		}
		if !isRegionName(region) || !strings.HasPrefix(rest, "/") {
			t.Fatalf("%q -> %q, %q", path, region, rest)
		}
		if back := regionPrefix + region + rest; back != path && back != path+"/" {
			t.Fatalf("%q -> %q, %q does not rebuild it", path, region, rest)
		}
	})
}

// FuzzParseAuthorization: any header is classified without panicking, and a
// region is returned only for SigV4 and only when it is a region name that
// occurs in the header.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"", "Bearer k", "AWS4-HMAC-SHA256 Credential=AKID/20260302/eu-west-1/bedrock/aws4_request, SignedHeaders=host, Signature=ab",
		"AWS4-HMAC-SHA256 Credential=", "AWS4- Credential=/////aws4_request", "Bearer \x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		kind, region := parseAuthorization(h)
		if kind < authNone || kind > authSigV4 {
			t.Fatalf("kind %v", kind)
		}
		if region != "" && (kind != authSigV4 || !isRegionName(region) || !strings.Contains(h, "/"+region+"/")) {
			t.Fatalf("%q -> %v, %q", h, kind, region)
		}
		if (kind == authNone) != (h == "") {
			t.Fatalf("%q -> %v", h, kind)
		}
	})
}
