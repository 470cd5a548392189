package emulator

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// The system-defined cross-region inference profiles the emulator lists
// (ListInferenceProfiles, GET /inference-profiles), for Anthropic's models.
var profileModels = []struct {
	id, name string
	global   bool // also offered as a global. profile
	created  time.Time
}{
	{"anthropic.claude-3-5-haiku-20241022-v1:0", "Claude 3.5 Haiku", false, date(2024, 11, 4)},
	{"anthropic.claude-3-7-sonnet-20250219-v1:0", "Claude 3.7 Sonnet", false, date(2025, 2, 24)},
	{"anthropic.claude-sonnet-4-20250514-v1:0", "Claude Sonnet 4", true, date(2025, 5, 22)},
	{"anthropic.claude-opus-4-20250514-v1:0", "Claude Opus 4", false, date(2025, 5, 22)},
	{"anthropic.claude-opus-4-1-20250805-v1:0", "Claude Opus 4.1", false, date(2025, 8, 5)},
	{"anthropic.claude-sonnet-4-5-20250929-v1:0", "Claude Sonnet 4.5", true, date(2025, 9, 29)},
	{"anthropic.claude-haiku-4-5-20251001-v1:0", "Claude Haiku 4.5", true, date(2025, 10, 15)},
	{"anthropic.claude-opus-4-5-20251101-v1:0", "Claude Opus 4.5", true, date(2025, 11, 24)},
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// geography returns a region's cross-region profile prefix, its display
// name and the regions its profiles route to.
func geography(region string) (prefix, name string, routes []string) {
	switch {
	case strings.HasPrefix(region, "us-gov-"):
		return "us-gov", "US-GOV", []string{"us-gov-east-1", "us-gov-west-1"}
	case strings.HasPrefix(region, "us-"), strings.HasPrefix(region, "ca-"):
		return "us", "US", []string{"us-east-1", "us-east-2", "us-west-2"}
	case strings.HasPrefix(region, "eu-"):
		return "eu", "EU", []string{"eu-central-1", "eu-north-1", "eu-west-1", "eu-west-3"}
	case strings.HasPrefix(region, "ap-"):
		return "apac", "APAC", []string{"ap-northeast-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2"}
	}
	return "", "", nil
}

// Wire shape of ListInferenceProfiles (restJson1: timestamps in epoch seconds).
type profileSummary struct {
	InferenceProfileName string         `json:"inferenceProfileName"`
	Description          string         `json:"description"`
	CreatedAt            int64          `json:"createdAt"`
	UpdatedAt            int64          `json:"updatedAt"`
	InferenceProfileArn  string         `json:"inferenceProfileArn"`
	Models               []profileModel `json:"models"`
	InferenceProfileID   string         `json:"inferenceProfileId"`
	Status               string         `json:"status"`
	Type                 string         `json:"type"`
}

type profileModel struct {
	ModelArn string `json:"modelArn"`
}

// inferenceProfiles renders the ListInferenceProfiles response of a region.
func inferenceProfiles(region, account string) []byte {
	var out struct {
		InferenceProfileSummaries []profileSummary `json:"inferenceProfileSummaries"`
	}
	out.InferenceProfileSummaries = []profileSummary{}
	prefix, geoName, routes := geography(region)
	add := func(prefix, geoName string, routes []string, id, name string, created time.Time) {
		var models []profileModel
		for _, r := range routes {
			models = append(models, profileModel{ModelArn: "arn:aws:bedrock:" + r + "::foundation-model/" + id})
		}
		where := "in " + strings.Join(routes, ", ")
		if prefix == "global" {
			where = "in commercial AWS regions"
		}
		pid := prefix + "." + id
		out.InferenceProfileSummaries = append(out.InferenceProfileSummaries, profileSummary{
			InferenceProfileName: geoName + " Anthropic " + name,
			Description:          "Routes requests to Anthropic " + name + " " + where + ".",
			CreatedAt:            created.Unix(),
			UpdatedAt:            created.Unix(),
			InferenceProfileArn:  "arn:aws:bedrock:" + region + ":" + account + ":inference-profile/" + pid,
			Models:               models,
			InferenceProfileID:   pid,
			Status:               "ACTIVE",
			Type:                 "SYSTEM_DEFINED",
		})
	}
	for _, m := range profileModels {
		if prefix != "" {
			add(prefix, geoName, routes, m.id, m.name, m.created)
		}
		if m.global {
			add("global", "Global", []string{region}, m.id, m.name, m.created)
		}
	}
	body, _ := json.Marshal(out) // plain strings and numbers cannot fail
	return body
}

// serveInferenceProfiles answers GET /inference-profiles (the control-plane
// ListInferenceProfiles that Claude Code calls on the runtime base URL).
// type=APPLICATION lists nothing: the emulator has no application profiles.
func (s *Server) serveInferenceProfiles(w http.ResponseWriter, r *http.Request, region string) error {
	body := s.profiles[region]
	if t := r.URL.Query().Get("type"); t != "" && t != "SYSTEM_DEFINED" {
		body = []byte(`{"inferenceProfileSummaries":[]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	return nil
}
