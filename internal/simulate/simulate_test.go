package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func runBuiltin(t testing.TB, name string, opts Options) *Result {
	t.Helper()
	sc, err := Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), sc, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func strategy(t *testing.T, r *Result, name string) StrategyResult {
	t.Helper()
	for _, s := range r.Strategies {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no strategy %q in the result", name)
	return StrategyResult{}
}

// TestSeedReproducesTheStory checks the figures of the user story and
// that Headroom gets more done than the defaults with no 429 at all.
func TestSeedReproducesTheStory(t *testing.T) {
	r := runBuiltin(t, "seed", Options{})

	type row struct {
		MaxTokens     int
		OutputReserve int64
		Reserved      int64
		CallsThatFit  int64
	}
	var got []row
	for _, f := range r.Figures.Rows {
		got = append(got, row{f.MaxTokens, f.OutputReserve, f.Reserved, f.CallsThatFit})
	}
	want := []row{
		{64000, 320000, 321000, 1}, // 1,000 + 64,000 × 5: 64% of the day
		{32000, 160000, 161000, 3}, // Claude Code's default: 160,000
		{4096, 20480, 21480, 23},   // the 4,096 cap: 20,480
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reservations (-want +got):\n%s", diff)
	}
	if share := r.Figures.Rows[0].QuotaShare; share != 0.642 {
		t.Errorf("unset max_tokens takes %v of the day, want 0.642", share)
	}
	if m := r.Figures.MoreCalls; m < 7.5 || m > 8.5 {
		t.Errorf("4,096 gives %vx more calls, want about 8x", m)
	}

	unset := strategy(t, r, "direct-unset")
	defaults := strategy(t, r, "direct-defaults")
	capped := strategy(t, r, "direct-4096")
	headroom := strategy(t, r, "headroom-4096")
	learned := strategy(t, r, "headroom")
	if learned.TasksCompleted != r.Demand.TasksDemanded || learned.Client429s != 0 || learned.TasksFailedByCap != 0 {
		t.Errorf("headroom (learned): %d of %d tasks, %d 429s, %d failed by the cap; want all, none, none",
			learned.TasksCompleted, r.Demand.TasksDemanded, learned.Client429s, learned.TasksFailedByCap)
	}
	// "The second request already fails": the first task's title call on
	// the small model goes out beside the first main call.
	if unset.FirstThrottled != 2 {
		t.Errorf("max_tokens unset: first 429 on request #%d, want #2", unset.FirstThrottled)
	}
	if defaults.Client429s == 0 || defaults.TasksFailed == 0 {
		t.Errorf("defaults: %d 429s and %d failed tasks, want some of both", defaults.Client429s, defaults.TasksFailed)
	}
	if headroom.TasksCompleted <= defaults.TasksCompleted {
		t.Errorf("headroom completed %d tasks, defaults %d: want more", headroom.TasksCompleted, defaults.TasksCompleted)
	}
	if headroom.TasksCompleted != r.Demand.TasksCompleted {
		t.Errorf("headroom completed %d of the team's %d tasks", headroom.TasksCompleted, r.Demand.TasksCompleted)
	}
	if headroom.Client429s != 0 || headroom.Upstream429s != 0 {
		t.Errorf("headroom: %d client-visible and %d upstream 429s, want none", headroom.Client429s, headroom.Upstream429s)
	}
	// Reservations measured in the run, per answered call, match the
	// figures (input is mostly cached, so close to max_tokens × 5).
	for _, c := range []struct {
		s    StrategyResult
		want float64
	}{{unset, 320000}, {defaults, 160000}, {capped, 20480}, {headroom, 20480}} {
		if c.s.MeanReservation < c.want || c.s.MeanReservation > c.want*1.02 {
			t.Errorf("%s reserved %v per call, want about %v", c.s.Name, c.s.MeanReservation, c.want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	a, err := json.Marshal(runBuiltin(t, "heavy-user", Options{}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(runBuiltin(t, "heavy-user", Options{Parallel: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("the same seed gave different results")
	}
	sc, _ := Builtin("heavy-user")
	sc.Seed = 2
	c, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cj, _ := json.Marshal(c)
	if bytes.Equal(a, cj) {
		t.Fatal("another seed gave the same result")
	}
}

func TestSameWorkloadForEveryStrategy(t *testing.T) {
	// Task k of developer d must be the same task whatever the strategy:
	// the planner's stream is consumed only by planning.
	sc, _ := Builtin("team-5")
	p1 := newPlanner(&sc.Workload, 9, 3)
	p2 := newPlanner(&sc.Workload, 9, 3)
	var a, b taskPlan
	for range 5 {
		p1.next(&a)
		p2.next(&b)
		if diff := cmp.Diff(a, b, cmp.AllowUnexported(taskPlan{}, stepPlan{}, callPlan{})); diff != "" {
			t.Fatalf("plans differ (-a +b):\n%s", diff)
		}
	}
}

func TestRunCancelled(t *testing.T) {
	sc, _ := Builtin("team-5")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, sc, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestProgressReachesOne(t *testing.T) {
	var last float64
	calls := 0
	runBuiltin(t, "seed", Options{Progress: func(d float64) {
		if d < last {
			t.Errorf("progress went back from %v to %v", last, d)
		}
		last = d
		calls++
	}})
	if last != 1 || calls < 3 {
		t.Errorf("progress ended at %v after %d calls", last, calls)
	}
}

// seedCharts renders the seed scenario's charts once for the tests that
// need them: rasterizing is slow under -race.
var seedCharts = sync.OnceValue(func() chartsOnce {
	sc, err := Builtin("seed")
	if err != nil {
		return chartsOnce{err: err}
	}
	r, err := Run(context.Background(), sc, Options{})
	if err != nil {
		return chartsOnce{err: err}
	}
	charts, err := r.Charts()
	return chartsOnce{r, charts, err}
})

type chartsOnce struct {
	r      *Result
	charts []Chart
	err    error
}

func TestCharts(t *testing.T) {
	once := seedCharts()
	charts, err := once.charts, once.err
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range charts {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff([]string{"reservation", "drain", "comparison", "developers"}, names); diff != "" {
		t.Fatalf("charts (-want +got):\n%s", diff)
	}
	for _, c := range charts {
		t.Run(c.Name, func(t *testing.T) {
			checkSVG(t, c.SVG)
			img, err := png.Decode(bytes.NewReader(c.PNG))
			if err != nil {
				t.Fatalf("PNG: %v", err)
			}
			b := img.Bounds()
			if b.Dx() != 1200 || b.Dy() < 500 || b.Dy() > 2000 {
				t.Errorf("PNG is %dx%d, want 1200 wide", b.Dx(), b.Dy())
			}
			if ink, colors := inkAndColors(img); ink < 0.02 || colors < 4 {
				t.Errorf("PNG looks blank: %.1f%% ink, %d colors", ink*100, colors)
			}
		})
	}
	dir := t.TempDir()
	if err := WriteCharts(dir, charts); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		for _, ext := range []string{".svg", ".png"} {
			if _, err := os.Stat(filepath.Join(dir, n+ext)); err != nil {
				t.Error(err)
			}
		}
	}
}

// checkSVG parses an SVG as XML and checks that it draws something.
func checkSVG(t *testing.T, data []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	root, elements := "", 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			elements++
		}
	}
	if root != "svg" || elements < 20 {
		t.Errorf("SVG root %q with %d elements", root, elements)
	}
}

// inkAndColors returns the share of pixels that are not white and the
// number of distinct colors (up to 64).
func inkAndColors(img image.Image) (float64, int) {
	b := img.Bounds()
	ink, total := 0, 0
	seen := map[uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bb, _ := img.At(x, y).RGBA()
			total++
			if r < 0xf000 || g < 0xf000 || bb < 0xf000 {
				ink++
			}
			if len(seen) < 64 {
				seen[(r>>8)<<16|(g>>8)<<8|bb>>8] = true
			}
		}
	}
	return float64(ink) / float64(total), len(seen)
}

func TestReport(t *testing.T) {
	once := seedCharts()
	r, charts, err := once.r, once.charts, once.err
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteReport(dir, r, charts); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<img src="reservation.svg"`, `<img src="drain.svg"`, `<img src="comparison.svg"`, `<img src="developers.svg"`,
		"<td>321,000</td>", ">headroom-4096</td>", ">headroom</td>", ">direct-defaults</td>", "Completed tasks per developer",
		`<p class="verdict" id="verdict">Of 3 tasks demanded in seed, Headroom&#39;s default policy completed 3 (none failed by the cap, no 429)`,
		"failed by the cap</th>", "output tokens in cut answers</th>"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	var back Result
	js, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back.Scenario != "seed" || len(back.Strategies) != len(r.Strategies) {
		t.Errorf("result.json: %q with %d strategies", back.Scenario, len(back.Strategies))
	}
}

func TestWriteText(t *testing.T) {
	r := runBuiltin(t, "seed", Options{})
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"321,000", "160,000", "20,480", "7.81x", "headroom-4096", "dev-3"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

// BenchmarkTeam50Day simulates the team-50 built-in's 8-hour day: 50
// developers, four strategies and the no-quota run.
func BenchmarkTeam50Day(b *testing.B) {
	sc, err := Builtin("team-50")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Run(context.Background(), sc, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAgenda(b *testing.B) {
	var a agenda
	r := rand.New(rand.NewPCG(1, 1))
	for range 1000 {
		a.push(event{at: r.Int64N(1e12)})
	}
	for b.Loop() {
		e := a.pop()
		e.at += r.Int64N(1e10)
		a.push(e)
	}
}

// TestOpus55Scenarios checks today's client: Claude Code 2.1.332 asks Opus
// 5.5 for 128,000 tokens with adaptive thinking, so a default call reserves
// input + 1,280,000 at burndown 10; the new account's quota holds one such
// call at a time, the established one eleven.
func TestOpus55Scenarios(t *testing.T) {
	for _, c := range []struct {
		name string
		tpm  int64
	}{{"opus-5.5-established", 15_000_000}, {"opus-5.5-new-account", 1_500_000}} {
		sc, err := Builtin(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if sc.Workload.MaxTokens != 128000 || !sc.Workload.AdaptiveThinking || sc.Buckets[0].Limit != c.tpm {
			t.Errorf("%s: max_tokens %d, adaptive %v, TPM %d", c.name, sc.Workload.MaxTokens, sc.Workload.AdaptiveThinking, sc.Buckets[0].Limit)
		}
		r := runBuiltin(t, c.name, Options{Strategies: mustStrategies(t, "direct-defaults")})
		if got := r.Figures.Rows[1]; got.MaxTokens != 128000 || got.OutputReserve != 1_280_000 || r.Figures.Burndown != 10 {
			t.Errorf("%s: Claude Code's default row %+v at burndown %d, want 128,000 reserving 1,280,000 at 10", c.name, got, r.Figures.Burndown)
		}
		// Main calls reserve 1.28M, Haiku's background calls 320,000.
		if d := strategy(t, r, "direct-defaults"); d.MeanReservation < 640_000 {
			t.Errorf("%s: direct-defaults reserved %.0f per call, want most of 1,280,000", c.name, d.MeanReservation)
		}
	}
}

func mustStrategies(t *testing.T, list string) []Strategy {
	t.Helper()
	s, err := ParseStrategies(list)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDrainFollowsTheBindingQuota: in team-50 the per-minute quota binds
// (the daily one is far from full), so the drain chart follows it, per
// minute, over the two busiest hours; account-per-dev is drawn against
// all its accounts' limits, not one.
func TestDrainFollowsTheBindingQuota(t *testing.T) {
	r := runBuiltin(t, "team-50", Options{Strategies: mustStrategies(t, "account-per-dev,headroom-4096")})
	if r.Binding != "sonnet-4-tpm" {
		t.Fatalf("binding quota %q, want sonnet-4-tpm", r.Binding)
	}
	for _, s := range r.Strategies {
		if s.drain.bucket != r.Binding || !s.drain.perMinute() {
			t.Errorf("%s: drain follows %s (per minute %v), want %s", s.Name, s.drain.bucket, s.drain.perMinute(), r.Binding)
		}
	}
	from, until := r.drainWindow()
	if until-from != 2 || from < 0 || until > r.Hours {
		t.Errorf("drain window %v-%v h, want two hours within the day", from, until)
	}
	apd := strategy(t, r, "account-per-dev")
	if got, want := apd.drain.limitLine(), float64(50*1_000_000); got != want {
		t.Errorf("account-per-dev limit line %v, want %v (50 accounts)", got, want)
	}
	// Settled per minute stays near the limit under Headroom: the chart
	// shows the quota that binds, not a daily total.
	h := strategy(t, r, "headroom-4096")
	var most float64
	for i := range h.drain.hours {
		most = max(most, h.drain.settledAt(i))
	}
	if most < 500_000 || most > 3_000_000 {
		t.Errorf("headroom's busiest minute settled %.0f tokens, want near the 1,000,000 limit", most)
	}
}
