//go:build race

package gossip

// raceEnabled reports whether the tests run under the race detector,
// which slows memberlist's goroutines several times over.
const raceEnabled = true
