package emulator

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroomhq/headroom/internal/claudecodetest"
	"github.com/headroomhq/headroom/internal/config"
)

// Claude Code 2.1.332 in Mantle mode (CLAUDE_CODE_USE_MANTLE=1,
// ANTHROPIC_BEDROCK_MANTLE_BASE_URL=http://HOST/mantle) against the
// emulator directly: its default model Opus 5.5 on Mantle's ledger.

// mantleClaudeServer runs cfg's emulator with clock now, counting the 429s
// it answers.
func mantleClaudeServer(t *testing.T, cfg config.Emulator, now func() time.Time) (*Server, string, *atomic.Int64) {
	t.Helper()
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), now)
	if err != nil {
		t.Fatal(err)
	}
	var throttles atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ServeHTTP(statusCounter{w, &throttles}, r)
	}))
	t.Cleanup(hs.Close)
	return s, hs.URL, &throttles
}

// statusCounter counts the 429s written through it.
type statusCounter struct {
	http.ResponseWriter
	throttles *atomic.Int64
}

func (sc statusCounter) WriteHeader(code int) {
	if code == http.StatusTooManyRequests {
		sc.throttles.Add(1)
	}
	sc.ResponseWriter.WriteHeader(code)
}

func (sc statusCounter) Unwrap() http.ResponseWriter { return sc.ResponseWriter }

func runClaudeMantle(t *testing.T, claude, baseURL string, extraEnv ...string) claudecodetest.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	res, ok := claudecodetest.RunMantle(ctx, t, claude, baseURL, "anykey", "say hi", extraEnv...)
	if !ok {
		t.Fatalf("claude: %v; stdout %q; stderr %q", res.Err, res.Stdout, res.Stderr)
	}
	return res
}

// mantleBucket returns the named Mantle bucket of region.
func (st State) mantleBucket(t *testing.T, region, name string) BucketState {
	t.Helper()
	for _, r := range st.Regions {
		for _, b := range r.Mantle {
			if r.Name == region && b.Name == name {
				return b
			}
		}
	}
	t.Fatalf("no Mantle bucket %s in %s", name, region)
	return BucketState{}
}

func TestClaudeCodeMantle(t *testing.T) {
	claude := claudecodetest.Binary(t)
	// Seven text tokens, no thinking: exactly the opening sentence.
	shortAnswers := func(cfg config.Emulator) config.Emulator {
		cfg.Generation.OutputTokens = config.Distribution{Distribution: config.DistFixed, Mean: 7, Max: 7}
		cfg.Generation.ThinkingShare = 0
		return cfg
	}

	for _, tt := range []struct{ name, prefix, region string }{
		{"answer", "", "us-east-1"},
		{"region prefix", "/region/eu-west-1", "eu-west-1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, url, throttles := mantleClaudeServer(t, shortAnswers(config.DefaultEmulator()), newClock().now)
			res := runClaudeMantle(t, claude, url+tt.prefix+"/mantle")
			if res.IsError || res.Result != Opening {
				t.Errorf("got %+v, want the answer %q", res, Opening)
			}
			// The probe and the call were charged to Opus 5.5's Mantle
			// buckets (input + cache writes stay used; 7 + 1 output), and
			// nothing to the runtime's.
			st := s.Account().State(t0)
			in, out := st.mantleBucket(t, tt.region, "opus-5-5-input-tpm"), st.mantleBucket(t, tt.region, "opus-5-5-output-tpm")
			if in.Used < 10_000 || in.Reserved != 0 || out.Used != 8 {
				t.Errorf("Opus 5.5's Mantle buckets: %+v, %+v", in, out)
			}
			for _, r := range st.Regions {
				for _, b := range r.Buckets {
					if b.Used+b.Reserved != 0 {
						t.Errorf("runtime bucket %s of %s: %+v", b.Name, r.Name, b)
					}
				}
			}
			if n := throttles.Load(); n != 0 {
				t.Errorf("%d throttles", n)
			}
		})
	}

	t.Run("two at once, tiny input TPM", func(t *testing.T) {
		t.Parallel()
		// Claude Code asks Opus 5.5 for max_tokens 128,000 with some 12,000
		// input tokens: one call fits in 150,000 input TPM, two do not.
		// The answer streams for 14 s (a token every 2 s), so the two
		// calls overlap even if one Claude Code starts seconds after the
		// other; Claude Code retries nothing, so the throttled one fails
		// with the 429.
		cfg := shortAnswers(config.DefaultEmulator())
		cfg.Generation.TokensPerSecond, cfg.Generation.ChunkTokens = 0.5, 1
		for i := range cfg.Regions {
			cfg.Regions[i].Mantle = []config.Bucket{inputTPM("opus-5-5-input-tpm", 150_000, "claude-opus-5-5"), outputTPM("opus-5-5-output-tpm", 2_000_000, "claude-opus-5-5")}
		}
		_, url, throttles := mantleClaudeServer(t, cfg, time.Now)
		results := make([]claudecodetest.Result, 2)
		var wg sync.WaitGroup
		for i := range results {
			wg.Go(func() { results[i] = runClaudeMantle(t, claude, url+"/mantle", "CLAUDE_CODE_MAX_RETRIES=0") })
		}
		wg.Wait()
		var done, refused int
		for _, r := range results {
			switch {
			case !r.IsError && r.Result == Opening:
				done++
			case r.IsError && r.APIErrorStatus != nil && *r.APIErrorStatus == http.StatusTooManyRequests:
				refused++
			default:
				t.Errorf("neither an answer nor a 429: %+v", r)
			}
		}
		t.Logf("%d finished, %d refused with 429; the emulator answered %d 429s", done, refused, throttles.Load())
		if done != 1 || refused != 1 || throttles.Load() < 1 {
			t.Errorf("got %d finished and %d refused (%d 429s), want one of each", done, refused, throttles.Load())
		}
	})
}
