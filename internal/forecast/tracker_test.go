package forecast

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestTopConsumers(t *testing.T) {
	tr := NewTracker(at(9, 0), 0)
	tpd := tr.Series("us", "sonnet-tpd")
	tpm := tr.Series("us", "sonnet-tpm")
	if again := tr.Series("us", "sonnet-tpd"); again != tpd {
		t.Fatalf("the same bucket registered twice: ids %d, %d", tpd, again)
	}
	rec := func(at time.Time, key string, n int64) {
		tr.Record(at, key, n, []Part{{tpd, n}, {tpm, n}})
	}
	rec(at(10, 0), "alice", 61_000)
	rec(at(10, 1), "bob", 22_000)
	rec(at(10, 2), "carol", 10_000)
	rec(at(10, 3), "dave", 7_000)
	rec(at(11, 58), "bob", 3_000)
	rec(at(11, 59), "carol", 1_000)
	now := at(12, 0)
	got := tr.Top(now, tpd, 2)
	want := []Consumer{{"alice", 61_000, 0.58}, {"bob", 25_000, 0.24}}
	opt := cmpopts.EquateApprox(0, 0.01)
	if diff := cmp.Diff(want, got, opt); diff != "" {
		t.Errorf("top today (-want +got):\n%s", diff)
	}
	snap := tr.Snapshot(now, 3)
	s := snap.Series[tpm]
	if s.Bucket != "sonnet-tpm" || s.Upstream != "us" {
		t.Errorf("series name %+v", s.SeriesName)
	}
	if diff := cmp.Diff([]Consumer{{"bob", 3000, 0.75}, {"carol", 1000, 0.25}}, s.Top5m, opt); diff != "" {
		t.Errorf("top over 5 minutes (-want +got):\n%s", diff)
	}
	if len(s.TopToday) != 3 || s.TopToday[2].Key != "carol" {
		t.Errorf("top 3 today: %+v", s.TopToday)
	}
	if r := snap.Keys["bob"]; r.Five != 3000.0/5 {
		t.Errorf("bob's 5-minute rate %v, want 600", r.Five)
	}
	// A series nobody used has empty lists, not null.
	other := tr.Series("eu", "x")
	if s := tr.Snapshot(now, 3).Series[other]; s.Top5m == nil || s.TopToday == nil || len(s.TopToday) != 0 {
		t.Errorf("unused series: %+v", s)
	}
}

// Today's totals start again when the day does, at the reset hour; rates
// run on across it.
func TestTrackerDayRollover(t *testing.T) {
	tr := NewTracker(at(0, 0), 6) // days start at 06:00 UTC
	s := tr.Series("us", "tpd")
	tr.Record(at(5, 50), "alice", 1000, []Part{{s, 1000}})
	if got := tr.Top(at(5, 59), s, 3); len(got) != 1 || got[0].Tokens != 1000 {
		t.Fatalf("before the reset: %+v", got)
	}
	tr.Record(at(6, 1), "bob", 500, []Part{{s, 500}})
	got := tr.Top(at(6, 2), s, 3)
	if diff := cmp.Diff([]Consumer{{"bob", 500, 1}}, got); diff != "" {
		t.Errorf("after the 06:00 reset (-want +got):\n%s", diff)
	}
	if r := tr.Snapshot(at(6, 2), 3).Series[s].Rates; r.Quarter != 1500.0/15 {
		t.Errorf("15-minute rate across the reset %v, want 100", r.Quarter)
	}
}

// Memory is per key and series, not per request: keys idle for an hour are
// forgotten at the next day, and old minutes leave the ring.
func TestTrackerForgets(t *testing.T) {
	tr := NewTracker(at(0, 0), 0)
	s := tr.Series("us", "tpd")
	for i := range 100 {
		tr.Record(at(1, 0), string(rune('a'+i%26))+"key", 10, []Part{{s, 10}})
	}
	if n := len(tr.keys); n != 26 {
		t.Fatalf("%d keys, want 26", n)
	}
	tr.Record(at(23, 59), "late", 10, []Part{{s, 10}})
	tr.Snapshot(at(24, 1), 3)
	if n := len(tr.keys); n != 1 {
		t.Errorf("after the day rolled: %d keys, want 1 (only the one active in the last hour)", n)
	}
	if r := tr.Snapshot(at(25, 30), 3).Series[s].Rates; r != (Rates{}) {
		t.Errorf("rates 90 minutes after the last use: %+v, want 0", r)
	}
}

// A time earlier than one seen counts as the latest: a clock step back
// does not reopen old minutes.
func TestTrackerClockBackwards(t *testing.T) {
	tr := NewTracker(at(10, 0), 0)
	s := tr.Series("us", "tpd")
	tr.Record(at(10, 30), "a", 100, []Part{{s, 100}})
	tr.Record(at(9, 0), "a", 50, []Part{{s, 50}, {Series: 7, Tokens: 5}, {s, -3}})
	if got := tr.Top(at(10, 30), s, 1); got[0].Tokens != 150 {
		t.Errorf("today %d, want 150", got[0].Tokens)
	}
	if r := tr.Snapshot(at(10, 30), 1).Series[s].Rates; r.Five != 150.0/5 {
		t.Errorf("5-minute rate %v, want 30", r.Five)
	}
}

// BenchmarkRecord: one settlement counted, alone ("local") and kept for
// the replicas' pool as well ("shared": Share, with a Take every 1,000
// records, as ShareUsage takes every second at 1,000 requests a second).
func BenchmarkRecord(b *testing.B) {
	for _, shared := range []bool{false, true} {
		b.Run(map[bool]string{false: "local", true: "shared"}[shared], func(b *testing.B) {
			tr := NewTracker(at(0, 0), 0)
			if shared {
				tr.Share()
			}
			ids := []int{tr.Series("us", "tpm"), tr.Series("us", "tpd")}
			keys := []string{"alice", "bob", "carol", "dave"}
			now := at(1, 0)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				tr.Record(now.Add(time.Duration(i)*time.Millisecond), keys[i%4], 1000, []Part{{ids[0], 1000}, {ids[1], 1000}})
				if shared && i%1000 == 999 {
					tr.Take()
				}
			}
		})
	}
}
