package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	sqtypes "github.com/aws/aws-sdk-go-v2/service/servicequotas/types"
	"github.com/google/go-cmp/cmp"

	"github.com/headroomhq/headroom/internal/config"
)

// sqServer runs the default emulator with a scenario and returns an
// official Service Quotas client for region, pointed at it.
func sqServer(t *testing.T, scenario string) (*httptest.Server, func(region string, endpointSuffix string) *servicequotas.Client) {
	t.Helper()
	cfg := config.DefaultEmulator()
	cfg.Scenario = scenario
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	client := func(region, suffix string) *servicequotas.Client {
		return servicequotas.New(servicequotas.Options{
			Region:       region,
			BaseEndpoint: aws.String(hs.URL + suffix),
			Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
			HTTPClient:   hs.Client(),
		})
	}
	return hs, client
}

// sqRow is a quota as the tests compare it.
type sqRow struct {
	Code  string
	Name  string
	Value float64
	ARN   string
}

func rows(qs []sqtypes.ServiceQuota) []sqRow {
	var out []sqRow
	for _, q := range qs {
		out = append(out, sqRow{aws.ToString(q.QuotaCode), aws.ToString(q.QuotaName), aws.ToFloat64(q.Value), aws.ToString(q.QuotaArn)})
	}
	return out
}

func listAll(t *testing.T, c *servicequotas.Client, defaults bool, pageSize int32) []sqtypes.ServiceQuota {
	t.Helper()
	ctx := context.Background()
	var out []sqtypes.ServiceQuota
	if defaults {
		p := servicequotas.NewListAWSDefaultServiceQuotasPaginator(c, &servicequotas.ListAWSDefaultServiceQuotasInput{ServiceCode: aws.String("bedrock"), MaxResults: aws.Int32(pageSize)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, page.Quotas...)
		}
		return out
	}
	p := servicequotas.NewListServiceQuotasPaginator(c, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("bedrock"), MaxResults: aws.Int32(pageSize)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Quotas...)
	}
	return out
}

func TestServiceQuotasList(t *testing.T) {
	_, client := sqServer(t, "")
	// The region comes from the SigV4 credential scope.
	got := rows(listAll(t, client("us-west-2", ""), false, 3))
	if len(got) != 22 {
		t.Fatalf("ListServiceQuotas returned %d quotas, want the 22 buckets of us-west-2: %v", len(got), got)
	}
	want := []sqRow{
		{"L-59759B4A", "Cross-region model inference tokens per minute for Anthropic Claude Sonnet 4 V1", 200000, "arn:aws:servicequotas:us-west-2:123456789012:bedrock/L-59759B4A"},
		{"L-22F701C5", "Cross-region model inference tokens per day for Anthropic Claude Sonnet 4 V1", 144000000, "arn:aws:servicequotas:us-west-2:123456789012:bedrock/L-22F701C5"},
	}
	if diff := cmp.Diff(want, got[:2]); diff != "" {
		t.Errorf("first quotas (-want +got):\n%s", diff)
	}
	if got[8].Code != "L-58BE175A" || got[9].Code != "L-6120CF2D" {
		t.Errorf("Haiku 4.5 codes = %s, %s; want L-58BE175A, L-6120CF2D", got[8].Code, got[9].Code)
	}
	// A one-model pattern ("claude-opus-5$") shows as the model's name.
	if want := "Cross-region model inference tokens per minute for Anthropic Claude Opus 5"; got[16].Name != want || got[16].Value != 15_000_000 {
		t.Errorf("Opus 5 quota = %+v, want %q of 15,000,000", got[16], want)
	}
	// Codes are unique and stable, and defaults equal applied values
	// without a scenario.
	defaults := rows(listAll(t, client("us-west-2", ""), true, 100))
	seen := map[string]bool{}
	for i, q := range got {
		if seen[q.Code] || !strings.HasPrefix(q.Code, "L-") || len(q.Code) != 10 {
			t.Errorf("quota %d: code %q is repeated or not L-XXXXXXXX", i, q.Code)
		}
		seen[q.Code] = true
		if d := defaults[i]; d.Code != q.Code || d.Value != q.Value || d.ARN != "arn:aws:servicequotas:us-west-2::bedrock/"+q.Code {
			t.Errorf("default %+v does not match applied %+v", d, q)
		}
	}
	again := rows(listAll(t, client("us-west-2", ""), false, 100))
	if diff := cmp.Diff(got, again); diff != "" {
		t.Errorf("a second listing differs (-first +second):\n%s", diff)
	}
}

func TestServiceQuotasGet(t *testing.T) {
	_, client := sqServer(t, config.ScenarioProvisioningBug)
	ctx := context.Background()
	tests := []struct {
		region, suffix, code string
		applied, def         float64
	}{
		{"us-east-1", "", "L-59759B4A", 100, 200000},
		{"us-east-1", "", "L-22F701C5", 0, 144000000},
		// The account-wide daily quota only the scenario adds: its default
		// is the region's largest configured daily limit.
		{"us-east-1", "", "L-E3F10727", 0, 8640000000},
		// A /region/NAME prefix wins over the SigV4 scope.
		{"us-east-1", "/region/eu-west-1", "L-59759B4A", 100, 200000},
	}
	for _, tt := range tests {
		c := client(tt.region, tt.suffix)
		got, err := c.GetServiceQuota(ctx, &servicequotas.GetServiceQuotaInput{ServiceCode: aws.String("bedrock"), QuotaCode: aws.String(tt.code)})
		if err != nil {
			t.Fatalf("GetServiceQuota %s: %v", tt.code, err)
		}
		def, err := c.GetAWSDefaultServiceQuota(ctx, &servicequotas.GetAWSDefaultServiceQuotaInput{ServiceCode: aws.String("bedrock"), QuotaCode: aws.String(tt.code)})
		if err != nil {
			t.Fatalf("GetAWSDefaultServiceQuota %s: %v", tt.code, err)
		}
		q := got.Quota
		if aws.ToFloat64(q.Value) != tt.applied || aws.ToFloat64(def.Quota.Value) != tt.def {
			t.Errorf("%s%s %s: applied %v, default %v; want %v, %v", tt.region, tt.suffix, tt.code, aws.ToFloat64(q.Value), aws.ToFloat64(def.Quota.Value), tt.applied, tt.def)
		}
		if aws.ToString(q.Unit) != "None" || aws.ToString(q.ServiceCode) != "bedrock" || !q.Adjustable || q.GlobalQuota {
			t.Errorf("%s: quota fields %+v", tt.code, q)
		}
	}
	if got, _ := client("us-east-1", "").GetServiceQuota(ctx, &servicequotas.GetServiceQuotaInput{ServiceCode: aws.String("bedrock"), QuotaCode: aws.String("L-59759B4A")}); got.Quota.Period == nil ||
		got.Quota.Period.PeriodUnit != sqtypes.PeriodUnitMinute {
		t.Errorf("per-minute quota period = %+v, want 1 MINUTE", got.Quota.Period)
	}
}

func TestServiceQuotasErrors(t *testing.T) {
	_, client := sqServer(t, "")
	ctx := context.Background()
	var missing *sqtypes.NoSuchResourceException
	_, err := client("us-east-1", "").GetServiceQuota(ctx, &servicequotas.GetServiceQuotaInput{ServiceCode: aws.String("bedrock"), QuotaCode: aws.String("L-00000000")})
	if !errors.As(err, &missing) {
		t.Errorf("unknown quota code: err = %v, want NoSuchResourceException", err)
	}
	_, err = client("us-east-1", "").ListServiceQuotas(ctx, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("ec2")})
	if !errors.As(err, &missing) {
		t.Errorf("unknown service: err = %v, want NoSuchResourceException", err)
	}
	_, err = client("ap-south-1", "").ListServiceQuotas(ctx, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("bedrock")})
	if !errors.As(err, &missing) {
		t.Errorf("region not served: err = %v, want NoSuchResourceException", err)
	}
	var badToken *sqtypes.InvalidPaginationTokenException
	_, err = client("us-east-1", "").ListServiceQuotas(ctx, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("bedrock"), NextToken: aws.String("x")})
	if !errors.As(err, &badToken) {
		t.Errorf("bad token: err = %v, want InvalidPaginationTokenException", err)
	}
}

func TestServiceQuotasRawProtocol(t *testing.T) {
	hs, _ := sqServer(t, "")
	tests := []struct {
		target, body string
		status       int
		errType      string
	}{
		{"ServiceQuotasV20190624.ListServiceQuotas", `{"ServiceCode":"bedrock"}`, 200, ""},
		{"ServiceQuotasV20190624.DeleteServiceQuotaIncreaseRequestFromTemplate", `{}`, 400, "UnknownOperationException"},
		{"ServiceQuotasV20190624.ListServiceQuotas", `{"ServiceCode":`, 400, "IllegalArgumentException"},
		{"ServiceQuotasV20190624.GetServiceQuota", ``, 400, "NoSuchResourceException"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/", strings.NewReader(tt.body))
		req.Header.Set("X-Amz-Target", tt.target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || body.Type != tt.errType || resp.Header.Get("X-Amzn-Errortype") != tt.errType {
			t.Errorf("%s %s: status %d, __type %q, header %q; want %d %q", tt.target, tt.body, resp.StatusCode, body.Type, resp.Header.Get("X-Amzn-Errortype"), tt.status, tt.errType)
		}
		if resp.Header.Get("Content-Type") != "application/x-amz-json-1.1" || resp.Header.Get("X-Amzn-Requestid") == "" {
			t.Errorf("%s: headers %v", tt.target, resp.Header)
		}
	}
}

// FuzzServiceQuotas sends arbitrary bodies to every operation: the server
// never panics and answers 200 or a JSON 1.1 error.
func FuzzServiceQuotas(f *testing.F) {
	for _, seed := range []string{`{"ServiceCode":"bedrock"}`, `{"ServiceCode":"bedrock","QuotaCode":"L-59759B4A"}`,
		`{"ServiceCode":"bedrock","MaxResults":-1,"NextToken":"999"}`, `{"ServiceCode":"bedrock","NextToken":"-1"}`, `[]`, `nul`} {
		for op := range 5 {
			f.Add(uint8(op), []byte(seed))
		}
	}
	s, err := New(config.DefaultEmulator(), slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		f.Fatal(err)
	}
	ops := []string{"ListServiceQuotas", "GetServiceQuota", "ListAWSDefaultServiceQuotas", "GetAWSDefaultServiceQuota", "Other"}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("X-Amz-Target", "ServiceQuotasV20190624."+ops[int(op)%len(ops)])
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 && w.Code != 400 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		var v map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("body is not JSON: %q", w.Body)
		}
		if w.Code == 400 && v["__type"] == nil {
			t.Fatalf("error without __type: %q", w.Body)
		}
	})
}
