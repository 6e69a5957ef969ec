package ipam_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vxwire/vxwire/internal/gossip"
	"github.com/vxwire/vxwire/internal/ipam"
	"github.com/vxwire/vxwire/internal/ipam/ipamtest"
)

var (
	_ ipam.Claimer       = (*gossip.Cluster)(nil)
	_ ipam.ClaimConflict = (*gossip.ConflictError)(nil)
)

// TestRaceForLastAddress runs two allocators on two gossip members that
// ask for the last free address of a fresh network at the same moment,
// many times: never may both get it, and one must.
func TestRaceForLastAddress(t *testing.T) {
	defer goleak.VerifyNone(t)
	l := slog.New(slog.DiscardHandler)
	start := func(name string, seeds []netip.AddrPort) *gossip.Cluster {
		c, err := gossip.New(gossip.Config{
			NodeName:     name,
			BindAddr:     netip.MustParseAddr("127.0.0.1"),
			Port:         -1,
			Seeds:        seeds,
			DeadAfter:    3 * time.Second,
			ClaimTimeout: 2 * time.Second,
		}, l)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c1 := start("h1", nil)
	c2 := start("h2", []netip.AddrPort{c1.Addr()})
	defer c1.Close()
	defer c2.Close()
	deadline := time.Now().Add(5 * time.Second)
	for len(c1.Members()) != 2 || len(c2.Members()) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("members did not meet")
		}
		time.Sleep(10 * time.Millisecond)
	}
	allocs := []*ipam.Allocator{
		newAllocator(t, ipamtest.NewStore(), "h1", c1),
		newAllocator(t, ipamtest.NewStore(), "h2", c2),
	}
	// A /30: .0 network, .1 gateway, .3 broadcast, .2 the only one free.
	subnet := netip.MustParsePrefix("10.77.0.0/30")
	gateway := netip.MustParseAddr("10.77.0.1")
	iterations := 40
	if testing.Short() {
		iterations = 10
	}
	ctx := context.Background()
	wins := [2]int{}
	for i := range iterations {
		network := fmt.Sprintf("race%d", i)
		var wg sync.WaitGroup
		got := make([]netip.Addr, 2)
		errs := make([]error, 2)
		for j, a := range allocs {
			wg.Go(func() {
				got[j], errs[j] = a.Allocate(ctx, network, subnet, gateway, fmt.Sprintf("ep%d", j), netip.Addr{})
			})
		}
		wg.Wait()
		switch {
		case errs[0] == nil && errs[1] == nil:
			t.Fatalf("iteration %d: both got %v and %v", i, got[0], got[1])
		case errs[0] != nil && errs[1] != nil:
			t.Fatalf("iteration %d: neither got an address: %v; %v", i, errs[0], errs[1])
		}
		for j, err := range errs {
			if err == nil {
				wins[j]++
			} else if !errors.Is(err, ipam.ErrExhausted) {
				t.Fatalf("iteration %d: loser's error %v", i, err)
			}
		}
	}
	t.Logf("%d races: h1 won %d, h2 won %d", iterations, wins[0], wins[1])
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
}
