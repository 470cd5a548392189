package emulator

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/headroomhq/headroom/internal/bedrock"
	"github.com/headroomhq/headroom/internal/config"
)

// Server is the emulator as an http.Handler.
type Server struct {
	cfg      config.Emulator // as configured, before the scenario
	applied  config.Emulator // with the scenario applied: what is enforced
	log      *slog.Logger
	now      func() time.Time
	account  *Account
	faults   faults
	profiles map[string][]byte // ListInferenceProfiles response per region
}

// New builds a Server from cfg (validated here), logging to logger and
// reading the time for its accounting from now.
func New(cfg config.Emulator, logger *slog.Logger, now func() time.Time) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	account, err := NewAccount(cfg, now())
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, applied: applyScenario(cfg), log: logger, now: now, account: account}
	s.faults.cfg = s.applied.Faults
	s.profiles = map[string][]byte{}
	for _, r := range cfg.Regions {
		s.profiles[r.Name] = inferenceProfiles(r.Name, cfg.AccountID)
	}
	return s, nil
}

// Account is the server's quota state.
func (s *Server) Account() *Account { return s.account }

// Reset empties every quota window and restarts the fault sequence, as
// POST /_emulator/reset does.
func (s *Server) Reset() {
	s.account.Reset(s.now())
	s.faults.reset()
}

// Paths of the emulator's own endpoints.
const (
	PathState = "/_emulator/state"
	PathReset = "/_emulator/reset"
)

const serviceQuotasTargetPrefix = "ServiceQuotasV20190624."

// ServeHTTP routes a request. The path is read escaped, so that an ARN's
// %2F stays inside the model segment.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := uuid.NewString()
	w.Header()[bedrock.HeaderRequestID] = []string{id}
	if tier := r.Header.Get(bedrock.HeaderServiceTier); tier != "" && bedrock.TierLabel(tier) != bedrock.TierOther {
		// Bedrock reports the tier it served in the same header; the
		// emulator serves every tier alike and reports the one asked for.
		w.Header()[bedrock.HeaderServiceTier] = []string{bedrock.TierLabel(tier)}
	}
	if err := s.route(w, r, id); err != nil {
		s.logError(r, id, err)
		if _, path, _ := splitRegionPrefix(r.URL.EscapedPath()); isMessagesFamily(path) {
			writeAnthropicError(w, err)
			return
		}
		bedrock.WriteError(w, err)
	}
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, id string) error {
	path := r.URL.EscapedPath()
	region, path, prefixed := splitRegionPrefix(path)

	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("X-Amz-Target"), serviceQuotasTargetPrefix) {
		s.serveServiceQuotas(w, r)
		return nil
	}
	switch path {
	case PathState:
		if r.Method != http.MethodGet {
			return notFound(r)
		}
		return s.serveState(w)
	case PathReset:
		if r.Method != http.MethodPost {
			return notFound(r)
		}
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
		return nil
	}

	// A Messages API call (messages.go), a runtime operation or
	// ListInferenceProfiles; anything else is unknown whatever its region or
	// credentials.
	if mr, ok := parseMessagesPath(path); ok && r.Method == http.MethodPost {
		region, err := s.callRegion(r, region, prefixed)
		if err != nil {
			return err
		}
		return s.serveMessages(w, r, messagesCall{id: id, region: region, endpoint: mr.endpoint}, mr)
	}
	profiles := path == "/inference-profiles" && r.Method == http.MethodGet
	rawModel, op, isModel := bedrock.ParsePath(path)
	if !profiles && (!isModel || r.Method != http.MethodPost) {
		return notFound(r)
	}
	region, err := s.callRegion(r, region, prefixed)
	if err != nil {
		return err
	}
	if profiles {
		return s.serveInferenceProfiles(w, r, region)
	}
	return s.serveModel(w, r, call{id: id, region: region, rawModel: rawModel, op: op})
}

// callRegion checks a call's credentials (when require_auth is set) and
// returns its region: the path's /region/NAME prefix (prefixed), else its
// SigV4 scope's region, else the default region.
func (s *Server) callRegion(r *http.Request, region string, prefixed bool) (string, error) {
	kind, sigRegion := parseAuthorization(r.Header.Get("Authorization"))
	if kind == authNone && r.Header.Get("X-Api-Key") != "" {
		kind = authBearer // the Anthropic SDKs send their key so
	}
	if s.cfg.RequireAuth && kind != authBearer && kind != authSigV4 {
		return "", &bedrock.Error{Name: bedrock.AccessDeniedException,
			Message: "Authorization is missing or malformed: send SigV4, Authorization: Bearer KEY or x-api-key (signatures and keys are not checked)"}
	}
	if !prefixed {
		region = sigRegion
	}
	if region == "" {
		region = s.cfg.DefaultRegion
	}
	if !s.account.HasRegion(region) {
		return "", &bedrock.Error{Name: bedrock.ValidationException, Message: (&UnknownRegionError{Region: region, Served: s.account.Regions()}).Error()}
	}
	return region, nil
}

func notFound(r *http.Request) error {
	return bedrock.Errorf(bedrock.ResourceNotFoundException, "No route for %s %s in headroom emulate", r.Method, r.URL.EscapedPath())
}

func (s *Server) serveState(w http.ResponseWriter) error {
	body, err := json.Marshal(s.account.State(s.now()))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	return nil
}

func (s *Server) logError(r *http.Request, id string, err error) {
	var be *bedrock.Error
	level := slog.LevelInfo
	if !errors.As(err, &be) {
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "request refused", "request_id", id, "method", r.Method, "path", r.URL.EscapedPath(), "error", err)
}
