package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
)

// The Service Quotas API, enough of it for `headroom doctor --probe` and the
// official aws-sdk-go-v2 servicequotas client: the JSON 1.1 protocol
// (POST /, X-Amz-Target ServiceQuotasV20190624.OPERATION, a JSON body),
// ListServiceQuotas, GetServiceQuota, ListAWSDefaultServiceQuotas and
// GetAWSDefaultServiceQuota for service code "bedrock". Each bucket of the
// request's region is one quota: its applied value is the limit enforced
// (after the scenario), its default the limit configured before it, so in
// the provisioning-bug scenario applied values are 0 or tiny while defaults
// stay normal, as on the accounts of the seed's Situation 1. The region is
// chosen as for runtime calls: /region/NAME, the SigV4 scope, the default.

const (
	sqServiceCode = "bedrock"
	sqServiceName = "Amazon Bedrock"
	sqPageSize    = 100
)

// sqQuota is a ServiceQuota as the API returns it.
type sqQuota struct {
	ServiceCode string    `json:"ServiceCode"`
	ServiceName string    `json:"ServiceName"`
	QuotaArn    string    `json:"QuotaArn"`
	QuotaCode   string    `json:"QuotaCode"`
	QuotaName   string    `json:"QuotaName"`
	Value       float64   `json:"Value"`
	Unit        string    `json:"Unit"`
	Adjustable  bool      `json:"Adjustable"`
	GlobalQuota bool      `json:"GlobalQuota"`
	Period      *sqPeriod `json:"Period,omitempty"`
}

type sqPeriod struct {
	PeriodValue int    `json:"PeriodValue"`
	PeriodUnit  string `json:"PeriodUnit"`
}

// sqError is a JSON 1.1 error: the type in __type and x-amzn-ErrorType.
type sqError struct {
	status int
	name   string
	msg    string
}

func (e *sqError) Error() string { return e.name + ": " + e.msg }

func sqErrorf(name, format string, args ...any) *sqError {
	return &sqError{status: http.StatusBadRequest, name: name, msg: fmt.Sprintf(format, args...)}
}

// serveServiceQuotas answers one Service Quotas call.
func (s *Server) serveServiceQuotas(w http.ResponseWriter, r *http.Request) {
	out, err := s.serviceQuotas(r)
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.1")
	if err != nil {
		var e *sqError
		if !errors.As(err, &e) {
			e = &sqError{status: http.StatusInternalServerError, name: "ServiceException", msg: "internal error"}
		}
		s.logError(r, h.Get(bedrock.HeaderRequestID), err)
		h.Set("X-Amzn-Errortype", e.name)
		w.WriteHeader(e.status)
		body, _ := json.Marshal(map[string]string{"__type": e.name, "message": e.msg})
		_, _ = w.Write(body)
		return
	}
	body, err := json.Marshal(out)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(body)
}

func (s *Server) serviceQuotas(r *http.Request) (any, error) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), serviceQuotasTargetPrefix)
	switch op {
	case "ListServiceQuotas", "ListAWSDefaultServiceQuotas", "GetServiceQuota", "GetAWSDefaultServiceQuota":
	default:
		return nil, sqErrorf("UnknownOperationException", "headroom emulate does not implement %s", r.Header.Get("X-Amz-Target"))
	}
	var in struct {
		ServiceCode string `json:"ServiceCode"`
		QuotaCode   string `json:"QuotaCode"`
		MaxResults  int    `json:"MaxResults"`
		NextToken   string `json:"NextToken"`
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, sqErrorf("IllegalArgumentException", "read body: %v", err)
	}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &in); err != nil {
			return nil, sqErrorf("IllegalArgumentException", "malformed JSON body: %v", err)
		}
	}
	region := s.sqRegion(r)
	quotas, ok := s.quotas(region)
	if !ok {
		return nil, sqErrorf("NoSuchResourceException", "region %s is not served by this emulator", region)
	}
	if in.ServiceCode != sqServiceCode {
		return nil, sqErrorf("NoSuchResourceException", "service code %q: headroom emulate serves only %q", in.ServiceCode, sqServiceCode)
	}
	switch op {
	case "ListServiceQuotas":
		return page(applied(quotas), in.MaxResults, in.NextToken)
	case "ListAWSDefaultServiceQuotas":
		return page(defaults(quotas), in.MaxResults, in.NextToken)
	case "GetServiceQuota", "GetAWSDefaultServiceQuota":
		i := slices.IndexFunc(quotas, func(q emulatedQuota) bool { return q.code == in.QuotaCode })
		if i < 0 {
			return nil, sqErrorf("NoSuchResourceException", "quota %q of service %q does not exist in %s", in.QuotaCode, in.ServiceCode, region)
		}
		q := quotas[i].applied
		if op == "GetAWSDefaultServiceQuota" {
			q = quotas[i].def
		}
		return map[string]sqQuota{"Quota": q}, nil
	}
	return nil, fmt.Errorf("service quotas: operation %q passed the check but has no handler", op)
}

// sqRegion picks the region as route does for runtime calls.
func (s *Server) sqRegion(r *http.Request) string {
	if region, _, ok := splitRegionPrefix(r.URL.EscapedPath()); ok {
		return region
	}
	if _, region := parseAuthorization(r.Header.Get("Authorization")); region != "" {
		return region
	}
	return s.cfg.DefaultRegion
}

// emulatedQuota is one bucket as a quota, applied and default.
type emulatedQuota struct {
	code         string
	applied, def sqQuota
}

// quotas lists the buckets of region as quotas, in configuration order.
func (s *Server) quotas(region string) ([]emulatedQuota, bool) {
	enforced, ok := s.applied.Region(region)
	if !ok {
		return nil, false
	}
	configured, _ := s.cfg.Region(region)
	var out []emulatedQuota
	for _, b := range enforced.Buckets {
		code := quotaCode(b)
		if slices.ContainsFunc(out, func(q emulatedQuota) bool { return q.code == code }) {
			continue // two buckets with one code: the first is reported
		}
		def, found := int64(0), false
		for _, c := range configured.Buckets {
			if c.Name == b.Name {
				def, found = c.Limit, true
				break
			}
		}
		if !found {
			// A bucket only the scenario adds (the account-wide daily
			// quota, which AWS estimates from prices): its normal value is
			// taken as the largest configured daily limit of the region.
			for _, c := range configured.Buckets {
				if c.Kind == b.Kind {
					def = max(def, c.Limit)
				}
			}
		}
		q := sqQuota{
			ServiceCode: sqServiceCode, ServiceName: sqServiceName, QuotaCode: code, QuotaName: quotaName(b),
			Unit: "None", Adjustable: true, Period: quotaPeriod(b.Kind),
		}
		a, d := q, q
		a.Value, a.QuotaArn = float64(b.Limit), fmt.Sprintf("arn:aws:servicequotas:%s:%s:%s/%s", region, s.cfg.AccountID, sqServiceCode, code)
		d.Value, d.QuotaArn = float64(def), fmt.Sprintf("arn:aws:servicequotas:%s::%s/%s", region, sqServiceCode, code)
		out = append(out, emulatedQuota{code: code, applied: a, def: d})
	}
	return out, true
}

func applied(qs []emulatedQuota) []sqQuota {
	out := make([]sqQuota, len(qs))
	for i, q := range qs {
		out[i] = q.applied
	}
	return out
}

func defaults(qs []emulatedQuota) []sqQuota {
	out := make([]sqQuota, len(qs))
	for i, q := range qs {
		out[i] = q.def
	}
	return out
}

type sqPage struct {
	Quotas    []sqQuota `json:"Quotas"`
	NextToken string    `json:"NextToken,omitempty"`
}

// page returns one page of a list; the token is the offset of the next page.
func page(qs []sqQuota, size int, token string) (sqPage, error) {
	if size <= 0 || size > sqPageSize {
		size = sqPageSize
	}
	start := 0
	if token != "" {
		n, err := strconv.Atoi(token)
		if err != nil || n < 0 || n > len(qs) {
			return sqPage{}, sqErrorf("InvalidPaginationTokenException", "invalid NextToken %q", token)
		}
		start = n
	}
	end := min(start+size, len(qs))
	p := sqPage{Quotas: qs[start:end]}
	if end < len(qs) {
		p.NextToken = strconv.Itoa(end)
	}
	return p, nil
}

// Service Quotas codes BEDROCK.md section 2 names, by the bucket they match.
const codeCrossModelDaily = "L-E3F10727"

var knownQuotaCodes = []struct {
	model     string
	kind      string
	inference bedrock.Inference
	code      string
}{
	{"claude-sonnet-4-2025", config.KindTPM, bedrock.InferenceCrossRegion, "L-59759B4A"},
	{"claude-sonnet-4-2025", config.KindRPM, bedrock.InferenceCrossRegion, "L-559DCC33"},
	{"claude-sonnet-4-2025", config.KindTPD, bedrock.InferenceCrossRegion, "L-22F701C5"},
	{"claude-haiku-4-5", config.KindTPM, bedrock.InferenceCrossRegion, "L-58BE175A"},
	{"claude-haiku-4-5", config.KindTPD, bedrock.InferenceCrossRegion, "L-6120CF2D"},
}

// quotaCode is the bucket's Service Quotas code: AWS's where BEDROCK.md
// names it, the cross-model daily code for an account-wide daily bucket, and
// otherwise a stable code made from the bucket name (the form AWS uses,
// "L-" and eight hex digits, but not a real quota).
func quotaCode(b config.Bucket) string {
	if b.Kind == config.KindTPD && len(b.Scope.Models) == 0 {
		return codeCrossModelDaily
	}
	for _, k := range knownQuotaCodes {
		if b.Kind == k.kind && b.Scope.Inference == k.inference && slices.Contains(b.Scope.Models, k.model) {
			return k.code
		}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(b.Name))
	return fmt.Sprintf("L-%08X", h.Sum32())
}

// modelDisplayNames are the names AWS's quota names use for model patterns.
var modelDisplayNames = map[string]string{
	"claude-sonnet-4-2025": "Anthropic Claude Sonnet 4 V1",
	"claude-haiku-4-5":     "Anthropic Claude Haiku 4.5",
	"claude-3-7-sonnet":    "Anthropic Claude 3.7 Sonnet V1",
	"claude-sonnet-4-6":    "Anthropic Claude Sonnet 4.6",
	"claude-sonnet-4-5":    "Anthropic Claude Sonnet 4.5",
	"claude-opus-4-6":      "Anthropic Claude Opus 4.6",
	"claude-opus-4-7":      "Anthropic Claude Opus 4.7",
	"claude-opus-4-8":      "Anthropic Claude Opus 4.8",
	"claude-opus-5$":       "Anthropic Claude Opus 5",
	"claude-sonnet-5$":     "Anthropic Claude Sonnet 5",
	"claude-fable-5-1":     "Anthropic Claude Fable 5.1",
	"claude-opus-5-5":      "Anthropic Claude Opus 5.5",
	"claude-sonnet-5-5":    "Anthropic Claude Sonnet 5.5",
	"claude-haiku-5-5":     "Anthropic Claude Haiku 5.5",
}

// quotaName names a bucket the way AWS names quotas, e.g. "Cross-region
// model inference tokens per minute for Anthropic Claude Sonnet 4 V1".
func quotaName(b config.Bucket) string {
	what := map[string]string{config.KindTPM: "tokens per minute", config.KindTPD: "tokens per day", config.KindRPM: "requests per minute"}[b.Kind]
	if len(b.Scope.Models) == 0 {
		return "Model invocation " + what + " across all models"
	}
	prefix := "Model inference"
	switch b.Scope.Inference {
	case bedrock.InferenceCrossRegion:
		prefix = "Cross-region model inference"
	case bedrock.InferenceOnDemand:
		prefix = "On-demand model inference"
	}
	models := make([]string, len(b.Scope.Models))
	for i, m := range b.Scope.Models {
		if d, ok := modelDisplayNames[m]; ok {
			models[i] = d
		} else {
			models[i] = m
		}
	}
	return prefix + " " + what + " for " + strings.Join(models, ", ")
}

func quotaPeriod(kind string) *sqPeriod {
	switch kind {
	case config.KindTPM, config.KindRPM:
		return &sqPeriod{PeriodValue: 1, PeriodUnit: "MINUTE"}
	case config.KindTPD:
		return &sqPeriod{PeriodValue: 1, PeriodUnit: "DAY"}
	}
	return nil
}
