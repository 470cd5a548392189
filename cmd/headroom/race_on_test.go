//go:build race

package main

// raceEnabled builds the binary under test with -race too, so that it reuses
// the packages the test binary already compiled.
const raceEnabled = true
