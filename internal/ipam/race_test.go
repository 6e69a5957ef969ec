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

	"github.com/vxwire/vxwire/internal/consensus"
	"github.com/vxwire/vxwire/internal/consensus/consensustest"
	"github.com/vxwire/vxwire/internal/ipam"
	"github.com/vxwire/vxwire/internal/ipam/ipamtest"
)

var _ ipam.Blocks = (*consensus.Node)(nil)

// raftPair starts two consensus nodes on loopback.
func raftPair(t *testing.T) []*consensus.Node {
	t.Helper()
	var voters []consensus.Voter
	for i, a := range consensustest.FreeAddrs(t, 2) {
		voters = append(voters, consensus.Voter{Name: fmt.Sprintf("h%d", i+1), Addr: a})
	}
	var nodes []*consensus.Node
	for _, v := range voters {
		n, err := consensus.New(consensus.Config{
			Name: v.Name, Bind: v.Addr, Voters: voters, Secret: []byte("a cluster secret for the race"),
			Dir: t.TempDir(), Fast: true,
		}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
	}
	return nodes
}

// TestRaceForLastAddress runs two allocators on two raft members that ask
// for the only free address of a fresh network at the same moment, many
// times: never may both get it, and one must.
func TestRaceForLastAddress(t *testing.T) {
	nodes := raftPair(t)
	allocs := []*ipam.Allocator{
		newAllocator(t, ipamtest.NewStore(), "h1", nodes[0], nil),
		newAllocator(t, ipamtest.NewStore(), "h2", nodes[1], nil),
	}
	// A /30: .0 network, .1 gateway, .3 broadcast, .2 the only one free.
	subnet := netip.MustParsePrefix("10.77.0.0/30")
	gateway := netip.MustParseAddr("10.77.0.1")
	iterations := 40
	if testing.Short() {
		iterations = 10
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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
}
