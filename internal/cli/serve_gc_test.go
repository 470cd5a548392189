package cli

import (
	"runtime/debug"
	"testing"
)

func TestTuneServeGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	tests := []struct {
		name  string
		gogc  string
		want  int // GC percent while serving
		start int
	}{
		{"GOGC unset: serve's own setting", "", serveGCPercent, 100},
		{"GOGC set: left alone", "50", 50, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetGCPercent(tt.start) // what the runtime parsed from GOGC
			restore := tuneServeGC(func(k string) string {
				if k == "GOGC" {
					return tt.gogc
				}
				return ""
			})
			if got := debug.SetGCPercent(tt.want); got != tt.want {
				t.Errorf("GC percent while serving = %d, want %d", got, tt.want)
			}
			restore()
			if got := debug.SetGCPercent(tt.start); got != tt.start {
				t.Errorf("GC percent after restore = %d, want %d", got, tt.start)
			}
		})
	}
}
