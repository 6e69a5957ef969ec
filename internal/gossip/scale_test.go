package gossip

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestConvergence100 runs 100 members in one process on loopback and
// measures how long a new record takes to reach all of them.
func TestConvergence100(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 100 members")
	}
	if raceEnabled {
		// 100 members under -race on a 2-core machine miss memberlist's
		// probe deadlines and never converge; `make test` runs this test
		// again without -race.
		t.Skip("100 members do not keep gossip's timings under the race detector")
	}
	const hosts = 100
	start := time.Now()
	seedHosts := []*Cluster{newTestCluster(t, "host000", nil, scaleConfig)}
	seeds := []netip.AddrPort{seedHosts[0].Addr()}
	cs := make([]*Cluster, hosts)
	cs[0] = seedHosts[0]
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := 1; i < hosts; i++ {
		wg.Go(func() {
			c := newTestCluster(t, fmt.Sprintf("host%03d", i), seeds, scaleConfig)
			mu.Lock()
			cs[i] = c
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Logf("%d members started in %v", hosts, time.Since(start))
	for range 60 {
		lo, hi := hosts, 0
		for _, c := range cs {
			n := int(c.numLive.Load())
			lo, hi = min(lo, n), max(hi, n)
		}
		t.Logf("%v: members seen min %d max %d", time.Since(start), lo, hi)
		if lo == hosts {
			break
		}
		time.Sleep(time.Second)
	}
	waitMembers(t, cs, hosts)
	t.Logf("%d members joined in %v", hosts, time.Since(start))

	var samples []time.Duration
	for trial, src := range []int{0, 37, 99} {
		ip := netip.AddrFrom4([4]byte{10, 77, 1, byte(trial + 1)})
		begin := time.Now()
		cs[src].SetLocal([]Record{{Network: "blue", Name: fmt.Sprintf("new%d", trial), IP: ip, MAC: [6]byte{2, 0, 10, 77, 1, byte(trial + 1)}}})
		pending := slices.Clone(cs)
		for len(pending) > 0 {
			if time.Since(begin) > 20*time.Second {
				t.Fatalf("record reached only %d of %d hosts", hosts-len(pending), hosts)
			}
			pending = slices.DeleteFunc(pending, func(c *Cluster) bool {
				_, _, ok := c.Lookup("blue", ip)
				return ok
			})
			time.Sleep(time.Millisecond)
		}
		samples = append(samples, time.Since(begin))
		cs[src].SetLocal(nil)
	}
	slices.Sort(samples)
	for _, d := range samples {
		t.Logf("RESULT gossip_convergence hosts=%d ms=%d", hosts, d.Milliseconds())
	}

	// Close in parallel; each leave is seen by the others.
	for _, c := range cs {
		wg.Go(func() { _ = c.Close() })
	}
	wg.Wait()
}

// scaleConfig keeps default (production) timings apart from DeadAfter,
// which is the production default too, so the figure is representative.
func scaleConfig(c *Config) {
	c.DeadAfter = DefaultDeadAfter
}
