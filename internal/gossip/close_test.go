package gossip

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestCloseTogether closes every member at the same moment, with the
// default DeadAfter (1 s probes, 200 ms gossip ticks): each member may
// find none left to take its leave message, and each Close must still
// return within a second. Before the wait was bounded by gossip ticks,
// a member waited five probe intervals (5 s) for a peer that was leaving
// too.
func TestCloseTogether(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // earlier tests' members may still finish a probe
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			def := func(c *Config) { c.DeadAfter = DefaultDeadAfter }
			first := newTestCluster(t, "h1", nil, def)
			cs := []*Cluster{first}
			for i := 2; i <= n; i++ {
				cs = append(cs, newTestCluster(t, fmt.Sprintf("h%d", i), []netip.AddrPort{first.Addr()}, def))
			}
			waitMembers(t, cs, n)
			took := make([]time.Duration, n)
			var wg sync.WaitGroup
			for i, c := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					start := time.Now()
					_ = c.Close()
					took[i] = time.Since(start)
				}()
			}
			wg.Wait()
			for i, d := range took {
				t.Logf("h%d closed in %v", i+1, d.Round(time.Millisecond))
				if d > time.Second {
					t.Errorf("h%d took %v to close, want at most 1s", i+1, d.Round(time.Millisecond))
				}
			}
		})
	}
}
