package consensus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/vxwire/vxwire/internal/config"
)

// TestClaimRace has two hosts claim one name at the same moment through
// the real log, many times: exactly one wins each time, the loser is told
// who holds the name, and both replicas agree on the winner. Beside it,
// two different names claimed at the same moment both win.
func TestClaimRace(t *testing.T) {
	nodes := cluster(t, 2, "a cluster secret for the name race")
	iterations := 30
	if testing.Short() {
		iterations = 8
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wins := [2]int{}
	for i := range iterations {
		network := "blue"
		name := fmt.Sprintf("web%d", i)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, n := range nodes {
			wg.Go(func() { errs[j] = n.Claim(ctx, network, name, NewClaimID()) })
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("iteration %d: want exactly one winner, got errors %v and %v", i, errs[0], errs[1])
		}
		w := 0
		if errs[1] == nil {
			w = 1
		}
		wins[w]++
		var held *config.NameHeldError
		if !errors.As(errs[1-w], &held) || held.Held.Host != nodes[w].cfg.Name || held.Held.Name != name {
			t.Fatalf("iteration %d: loser's error %v does not name the holder %s", i, errs[1-w], nodes[w].cfg.Name)
		}
		for _, n := range nodes {
			waitFor(t, func() bool { c, ok := n.Claimed(network, name); return ok && c.Host == nodes[w].cfg.Name })
		}

		// The probe: different names at the same moment both win.
		for j, n := range nodes {
			wg.Go(func() { errs[j] = n.Claim(ctx, network, fmt.Sprintf("db%d-%d", i, j), NewClaimID()) })
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("iteration %d: different names refused: %v; %v", i, errs[0], errs[1])
		}
	}
	t.Logf("%d races: h1 won %d, h2 won %d", iterations, wins[0], wins[1])
}

// TestUnclaimFreesName: a released name can be claimed by another host; a
// late release naming an earlier attach leaves the newer claim; removing
// the network drops its claims.
func TestUnclaimFreesName(t *testing.T) {
	nodes := cluster(t, 2, "a cluster secret for the name release")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	def := config.Network{Name: "blue", VNI: 300, Subnet: testSubnet, Gateway: testSubnet.Addr().Next(), Egress: true}
	if err := nodes[0].CreateNetwork(ctx, def); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(nodes[0].Claim(ctx, "blue", "web", 1))
	if err := nodes[1].Claim(ctx, "blue", "web", 2); err == nil {
		t.Fatal("h2 claimed a name h1 holds")
	}
	// h1 attaches web again (id 3); the late release of attach 1 must
	// not drop it.
	must(nodes[0].Claim(ctx, "blue", "web", 3))
	must(nodes[0].Unclaim(ctx, "blue", "web", 1))
	if err := nodes[1].Claim(ctx, "blue", "web", 2); err == nil {
		t.Fatal("a stale release dropped the newer claim")
	}
	must(nodes[0].Unclaim(ctx, "blue", "web", 3))
	must(nodes[1].Claim(ctx, "blue", "web", 2))
	must(nodes[0].RemoveNetwork(ctx, "blue", nil))
	waitFor(t, func() bool { _, ok := nodes[1].Claimed("blue", "web"); return !ok })
	must(nodes[0].Claim(ctx, "blue", "web", 4))
}

// TestClaimsSurviveSnapshot: claims are in the snapshot and the state
// file, so a restored or restarted replica knows them.
func TestClaimsSurviveSnapshot(t *testing.T) {
	f := &fsm{}
	apply := func(i uint64, c command) result {
		return f.Apply(&raft.Log{Index: i, Type: raft.LogCommand, Data: mustJSON(c)}).(result)
	}
	apply(1, command{Op: opClaim, Network: "blue", Endpoint: "web", Host: "h1", ID: 7})
	apply(2, command{Op: opClaim, Network: "red", Endpoint: "db", Host: "h2", ID: 8})
	snap := f.unlockedEncode()
	back := &fsm{}
	if err := back.restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if c, ok := back.claimed("blue", "web"); !ok || c.Host != "h1" || c.ID != 7 {
		t.Fatalf("restored claim: %+v, %v", c, ok)
	}
	if r := (&applier{f: back, i: 10}).apply(command{Op: opClaim, Network: "red", Endpoint: "db", Host: "h1", ID: 9}); r.Holder != "h2" {
		t.Fatalf("claim of a restored name: %+v", r)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
