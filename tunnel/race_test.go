//go:build race

package tunnel

// raceEnabled reports whether the tests run under the race detector, under
// which sync.Pool drops a share of what is put back on purpose, so that
// allocation counts no longer say what the code allocates.
const raceEnabled = true
