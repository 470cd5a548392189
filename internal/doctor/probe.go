package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	sqtypes "github.com/aws/aws-sdk-go-v2/service/servicequotas/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/auth/bearer"

	"github.com/headroomhq/headroom/internal/bedrock"
)

// ProbeConfig says what to probe and with which credentials.
type ProbeConfig struct {
	// AWS is the SDK configuration (credentials, HTTP client) from the
	// caller, typically config.LoadDefaultConfig.
	AWS aws.Config
	// Endpoint is a base URL (a Headroom gateway or `headroom emulate`) or
	// "" for real Bedrock.
	Endpoint string
	// Regions to try, in order.
	Regions []string
	// Model is the model ID the tiny request calls.
	Model string
	// SizedMaxTokens, when above 1, is the max_tokens of a second request
	// sent after a tiny one passes: same tiny prompt, the reservation
	// Claude Code's settings make. It tells "reservations too large" from
	// "no quota at all". 0 sends only the tiny request.
	SizedMaxTokens int
	// BearerToken, when set, authenticates runtime calls as a Bedrock API
	// key does (Authorization: Bearer), or, to an http:// endpoint, as the
	// SigV4 access key ID: the SDKs send a bearer token only over HTTPS,
	// and a Headroom gateway takes its key either way. Service Quotas and
	// STS always use SigV4 from AWS's credentials.
	BearerToken string
	// GatewayKey authenticates the question to a Headroom gateway
	// (GatewayPath): the developer key, or its operations token.
	GatewayKey string
	// Asks are the models (and the max_tokens Claude Code sends them) a
	// Headroom gateway is asked about.
	Asks []Ask
	// CredentialsErr, when set, is why no AWS credentials could be had
	// (the SDK's credential chain found none); calls that fail for it are
	// reported as missing credentials, not as a verdict.
	CredentialsErr error
	// Now is the clock the timestamps come from.
	Now func() time.Time
}

// Kinds of probe call.
const (
	CallTiny  = "tiny"
	CallSized = "sized"
)

// ProbeResult is what the probe saw.
type ProbeResult struct {
	Endpoint string `json:"endpoint"`
	Model    string `json:"model"`
	// Account is the AWS account ID, from STS, a quota ARN, or "unknown".
	Account     string        `json:"account"`
	AccountFrom string        `json:"account_from"`
	Regions     []RegionProbe `json:"regions"`
	// Gateway is what a Headroom gateway at Endpoint said about the
	// account and what it does; GatewayError why it refused to say.
	Gateway      *GatewayInfo `json:"gateway,omitempty"`
	GatewayError string       `json:"gateway_error,omitempty"`
	// NoCredentials is why no AWS credentials were found, if none were.
	NoCredentials string `json:"no_credentials,omitempty"`
	// BearerKey reports whether a bearer key (AWS_BEARER_TOKEN_BEDROCK)
	// was sent; it is never shown.
	BearerKey bool `json:"bearer_key_sent"`
}

// ThroughGateway reports whether the probe went through a Headroom gateway
// that answered the doctor.
func (p *ProbeResult) ThroughGateway() bool { return p != nil && p.Gateway != nil }

// RegionProbe is what one region answered.
type RegionProbe struct {
	Region string `json:"region"`
	// Model is the model ID called in this region.
	Model string `json:"model"`
	Calls []Call `json:"calls"`
	// Quotas are the Service Quotas quotas that apply to Model; QuotaError
	// says why they could not be read.
	Quotas     []Quota `json:"quotas,omitempty"`
	QuotaError string  `json:"quota_error,omitempty"`
	// QuotaAuth is set when the quotas could not be read for want of
	// credentials.
	QuotaAuth bool `json:"quota_auth_failed,omitempty"`
	// QuotaSource says where Quotas come from: Service Quotas, or the
	// buckets a Headroom gateway mirrors.
	QuotaSource string `json:"quota_source,omitempty"`
}

// Call is one runtime request of the probe.
type Call struct {
	Kind      string    `json:"kind"`
	MaxTokens int       `json:"max_tokens"`
	Time      time.Time `json:"time"`
	OK        bool      `json:"ok"`
	Status    int       `json:"status,omitempty"`
	ErrorType string    `json:"error_type,omitempty"`
	Message   string    `json:"message,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
	// Auth is set when the call failed for want of credentials: none
	// found, or refused as invalid. Such a call says nothing of the quota.
	Auth bool `json:"auth_failed,omitempty"`
}

// Throttled reports whether Bedrock refused the call for quota.
func (c Call) Throttled() bool { return c.ErrorType == bedrock.ThrottlingException }

// Daily reports whether the throttle was the daily quota. Bedrock tells the
// kinds of limit apart only by message text (BEDROCK.md section 3).
func (c Call) Daily() bool { return c.Throttled() && strings.Contains(c.Message, "per day") }

// Quota is one Service Quotas quota; values are nil when unknown.
type Quota struct {
	Code       string `json:"code"`
	Name       string `json:"name"`
	Kind       string `json:"kind,omitempty"`
	Applied    *int64 `json:"applied,omitempty"`
	Default    *int64 `json:"default,omitempty"`
	Unit       string `json:"unit,omitempty"`
	Adjustable bool   `json:"adjustable"`
	ARN        string `json:"arn,omitempty"`
}

// Low reports whether the applied value is 0 or far (100x) below the default.
func (q Quota) Low() bool {
	if q.Applied == nil {
		return false
	}
	if *q.Applied == 0 {
		return true
	}
	return q.Default != nil && *q.Applied*100 < *q.Default
}

// Probe sends the tiny request (and the sized one) in every region and reads
// the applied quotas. Failures are recorded in the result, never returned:
// a throttled call is the finding, not an error.
func Probe(ctx context.Context, pc ProbeConfig) *ProbeResult {
	m, _ := bedrock.ParseModel(pc.Model)
	res := &ProbeResult{Endpoint: pc.Endpoint, Model: pc.Model, Account: "unknown", AccountFrom: "not available", BearerKey: pc.BearerToken != ""}
	if pc.CredentialsErr != nil {
		res.NoCredentials = pc.CredentialsErr.Error()
	}
	regions := pc.Regions
	if pc.Endpoint != "" {
		gw := askGateway(ctx, pc, pc.Asks)
		res.Gateway, res.GatewayError = gw.info, gw.authErr
		if (gw.info != nil || gw.authErr != "") && len(regions) > 1 {
			// A Headroom gateway routes by model and key, not by the
			// region a client signs for: one probe tells all.
			regions = regions[:1]
		}
	}
	for _, region := range regions {
		rp := RegionProbe{Region: region, Model: modelIn(pc.Model, m, region)}
		rt := runtimeClient(pc, region)
		tiny := invoke(ctx, pc, rt, rp.Model, CallTiny, 1)
		rp.Calls = append(rp.Calls, tiny)
		if tiny.OK && pc.SizedMaxTokens > 1 {
			rp.Calls = append(rp.Calls, invoke(ctx, pc, rt, rp.Model, CallSized, pc.SizedMaxTokens))
		}
		switch {
		case res.Gateway != nil:
			rp.Quotas, rp.QuotaSource = gatewayQuotas(res.Gateway, pc.Model), QuotaSourceGateway
		case res.GatewayError != "":
			rp.QuotaError, rp.QuotaAuth = "the gateway refused to tell its quotas: "+res.GatewayError, true
		default:
			quotas, err := readQuotas(ctx, pc, region, m)
			rp.Quotas, rp.QuotaSource = quotas, QuotaSourceServiceQuotas
			if err != nil {
				rp.QuotaError, rp.QuotaAuth = describe(err), authFailure(err, pc, false)
			}
		}
		res.Regions = append(res.Regions, rp)
	}
	if res.Gateway != nil {
		res.Account, res.AccountFrom = "behind the gateway", "the gateway's upstreams"
		return res
	}
	res.Account, res.AccountFrom = account(ctx, pc, res)
	return res
}

// Where a probe's quotas come from (RegionProbe.QuotaSource).
const (
	QuotaSourceServiceQuotas = "service quotas (applied)"
	QuotaSourceGateway       = "mirrored by the Headroom gateway"
)

// credentialErrors are the error codes AWS answers for credentials it does
// not accept (missing, invalid, expired, badly signed).
var credentialErrors = []string{"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
	"ExpiredToken", "IncompleteSignatureException", "IncompleteSignature", "MissingAuthenticationTokenException",
	"MissingAuthenticationToken", "InvalidClientTokenId", "SignatureDoesNotMatch", "AuthFailure"}

// authFailure reports whether err means the call was refused for want of
// credentials: the SDK had none to sign with, AWS refused them, or an
// endpoint other than AWS (a gateway or the emulator, which grant no model
// access of their own) answered 401 or 403.
// runtime says whether err is a runtime call's, which a bearer key signs
// when there is one.
func authFailure(err error, pc ProbeConfig, runtime bool) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		// Not an answer: the SDK could not sign, if it had nothing to sign
		// with (to an endpoint, requests without credentials go unsigned).
		return pc.CredentialsErr != nil && pc.Endpoint == "" && (!runtime || pc.BearerToken == "")
	}
	if slices.Contains(credentialErrors, api.ErrorCode()) {
		return true
	}
	var re *awshttp.ResponseError
	if pc.Endpoint != "" && errors.As(err, &re) {
		return re.HTTPStatusCode() == http.StatusUnauthorized || re.HTTPStatusCode() == http.StatusForbidden
	}
	return false
}

// modelIn is the model ID to call in region: a us., eu. or apac.
// cross-region profile only exists in its own geography, so the prefix
// follows the region, as Claude Code's defaults do.
func modelIn(id string, m bedrock.Model, region string) string {
	geo := strings.TrimSuffix(geoPrefix(region), ".")
	switch {
	case m.Geo == geo, m.Account != "":
		return id
	case (m.Geo == "us" || m.Geo == "eu" || m.Geo == "apac") && (geo == "us" || geo == "eu" || geo == "apac"):
		return geo + "." + strings.TrimPrefix(id, m.Geo+".")
	}
	return id
}

func runtimeClient(pc ProbeConfig, region string) *bedrockruntime.Client {
	return bedrockruntime.NewFromConfig(pc.AWS, func(o *bedrockruntime.Options) {
		o.Region = region
		// One attempt: a retried throttle would hide the first request ID.
		o.Retryer = aws.NopRetryer{}
		if pc.Endpoint != "" {
			o.BaseEndpoint = aws.String(pc.Endpoint)
		}
		switch {
		case pc.BearerToken != "" && strings.HasPrefix(strings.ToLower(pc.Endpoint), "http://"):
			// The SDKs refuse to send a bearer token without TLS; a Headroom
			// gateway takes its key as the SigV4 access key ID too (it
			// cannot check the signature, so the secret is a placeholder).
			o.Credentials = credentials.NewStaticCredentialsProvider(pc.BearerToken, "headroom-doctor", "")
		case pc.BearerToken != "":
			tok := pc.BearerToken
			o.BearerAuthTokenProvider = bearer.TokenProviderFunc(func(context.Context) (bearer.Token, error) {
				return bearer.Token{Value: tok}, nil
			})
			o.AuthSchemePreference = []string{"httpBearerAuth"}
		}
	})
}

// probePrompt is the smallest useful Claude request.
const probePrompt = `{"anthropic_version":"bedrock-2023-05-31","max_tokens":%d,"messages":[{"role":"user","content":[{"type":"text","text":"Reply with OK."}]}]}`

func invoke(ctx context.Context, pc ProbeConfig, rt *bedrockruntime.Client, model, kind string, maxTokens int) Call {
	c := Call{Kind: kind, MaxTokens: maxTokens, Time: pc.Now().UTC()}
	out, err := rt.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{
		ModelId:     aws.String(model),
		ContentType: aws.String("application/json"),
		Accept:      aws.String("application/json"),
		Body:        fmt.Appendf(nil, probePrompt, maxTokens),
	})
	if err == nil {
		c.OK, c.Status = true, 200
		c.RequestID, _ = awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
		return c
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		c.RequestID, c.Status = re.ServiceRequestID(), re.HTTPStatusCode()
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		c.ErrorType, c.Message = api.ErrorCode(), api.ErrorMessage()
	} else {
		c.ErrorType, c.Message = "RequestFailed", err.Error()
	}
	c.Auth = authFailure(err, pc, true)
	return c
}

func quotasClient(pc ProbeConfig, region string) *servicequotas.Client {
	return servicequotas.NewFromConfig(pc.AWS, func(o *servicequotas.Options) {
		o.Region = region
		if pc.Endpoint != "" {
			o.BaseEndpoint = aws.String(pc.Endpoint)
		}
	})
}

// readQuotas lists Bedrock's default quotas, keeps those that apply to m,
// and reads each one's applied value: from ListServiceQuotas, else
// GetServiceQuota (AWS lists only some applied values).
func readQuotas(ctx context.Context, pc ProbeConfig, region string, m bedrock.Model) ([]Quota, error) {
	sq := quotasClient(pc, region)
	var out []Quota
	index := map[string]int{}
	defaults := servicequotas.NewListAWSDefaultServiceQuotasPaginator(sq, &servicequotas.ListAWSDefaultServiceQuotasInput{ServiceCode: aws.String(ServiceCode)})
	for defaults.HasMorePages() {
		page, err := defaults.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("list default quotas: %w", err)
		}
		for _, q := range page.Quotas {
			code, name := aws.ToString(q.QuotaCode), aws.ToString(q.QuotaName)
			if !quotaForModel(code, name, m) {
				continue
			}
			index[code] = len(out)
			out = append(out, Quota{Code: code, Name: name, Kind: quotaKind(name), Default: value(q.Value),
				Unit: aws.ToString(q.Unit), Adjustable: q.Adjustable})
		}
	}
	applied := servicequotas.NewListServiceQuotasPaginator(sq, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String(ServiceCode)})
	for applied.HasMorePages() {
		page, err := applied.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("list applied quotas: %w", err)
		}
		for _, q := range page.Quotas {
			setApplied(&out, index, q, m)
		}
	}
	for i := range out {
		if out[i].Applied != nil {
			continue
		}
		got, err := sq.GetServiceQuota(ctx, &servicequotas.GetServiceQuotaInput{ServiceCode: aws.String(ServiceCode), QuotaCode: aws.String(out[i].Code)})
		var missing *sqtypes.NoSuchResourceException
		switch {
		case errors.As(err, &missing):
			continue // no applied value: the default applies
		case err != nil:
			return out, fmt.Errorf("get quota %s: %w", out[i].Code, err)
		}
		setApplied(&out, index, *got.Quota, m)
	}
	return out, nil
}

// setApplied records an applied value; a quota missing from the defaults
// (possible on a real account) is added when it applies to m.
func setApplied(out *[]Quota, index map[string]int, q sqtypes.ServiceQuota, m bedrock.Model) {
	code, name := aws.ToString(q.QuotaCode), aws.ToString(q.QuotaName)
	i, ok := index[code]
	if !ok {
		if !quotaForModel(code, name, m) {
			return
		}
		i = len(*out)
		index[code] = i
		*out = append(*out, Quota{Code: code, Name: name, Kind: quotaKind(name), Unit: aws.ToString(q.Unit), Adjustable: q.Adjustable})
	}
	(*out)[i].Applied = value(q.Value)
	(*out)[i].ARN = aws.ToString(q.QuotaArn)
}

func value(v *float64) *int64 {
	if v == nil {
		return nil
	}
	n := int64(*v)
	return &n
}

// account finds the AWS account: STS for real AWS, else a quota ARN.
func account(ctx context.Context, pc ProbeConfig, res *ProbeResult) (id, from string) {
	if pc.Endpoint == "" && len(pc.Regions) > 0 {
		client := sts.NewFromConfig(pc.AWS, func(o *sts.Options) { o.Region = pc.Regions[0] })
		if out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err == nil && out.Account != nil {
			return *out.Account, "sts:GetCallerIdentity"
		}
	}
	for _, rp := range res.Regions {
		for _, q := range rp.Quotas {
			// arn:aws:servicequotas:REGION:ACCOUNT:bedrock/CODE
			if parts := strings.SplitN(q.ARN, ":", 6); len(parts) == 6 && parts[4] != "" {
				return parts[4], "service quota ARN"
			}
		}
	}
	return "unknown", "not available (no STS answer and no quota ARN)"
}

// describe shortens an SDK error to its service error where there is one.
func describe(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode() + ": " + api.ErrorMessage()
	}
	return err.Error()
}

// region returns the probe of the named region.
func (p *ProbeResult) region(name string) (RegionProbe, bool) {
	if p == nil {
		return RegionProbe{}, false
	}
	for _, rp := range p.Regions {
		if rp.Region == name {
			return rp, true
		}
	}
	return RegionProbe{}, false
}

// applied returns the binding (smallest) applied quota of a kind among the
// quotas read for the probed model, and its code.
func (rp RegionProbe) applied(kind string) (v int64, code string, ok bool) {
	for _, q := range rp.Quotas {
		if q.Kind != kind || q.Applied == nil {
			continue
		}
		if !ok || *q.Applied < v {
			v, code, ok = *q.Applied, q.Code, true
		}
	}
	return v, code, ok
}
