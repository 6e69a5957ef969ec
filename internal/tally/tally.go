// Package tally counts events by reason: refused control-plane input, for
// the status API and /metrics. It is for rare events, not the data path,
// which counts with fixed arrays of atomics.
package tally

import (
	"maps"
	"sync"
)

// Counts counts events by reason. The zero value is ready to use, and a
// Counts is safe for concurrent use.
type Counts struct {
	mu sync.Mutex
	n  map[string]uint64
}

// Add counts one event of reason.
func (c *Counts) Add(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = make(map[string]uint64)
	}
	c.n[reason]++
}

// Snapshot returns a copy of the counts, or nil when nothing was counted.
func (c *Counts) Snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.n) == 0 {
		return nil
	}
	return maps.Clone(c.n)
}
