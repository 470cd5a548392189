//go:build race

package simulate

// raceDetector is set under -race, which makes the simulator about ten
// times slower: the property test then runs fewer seeds.
const raceDetector = true
