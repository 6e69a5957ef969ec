package tally

import (
	"sync"
	"testing"
)

func TestCounts(t *testing.T) {
	var c Counts
	if got := c.Snapshot(); got != nil {
		t.Fatalf("zero Counts snapshot = %v, want nil", got)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				c.Add("a")
			}
			c.Add("b")
		}()
	}
	wg.Wait()
	s := c.Snapshot()
	if s["a"] != 800 || s["b"] != 8 || len(s) != 2 {
		t.Fatalf("snapshot = %v, want a=800 b=8", s)
	}
	s["a"] = 0
	if c.Snapshot()["a"] != 800 {
		t.Fatal("snapshot is not a copy")
	}
}
