package consensus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/vxwire/vxwire/internal/config"
)

func testNet(name string, vni uint32, subnet string) config.Network {
	p := netip.MustParsePrefix(subnet)
	return config.Network{Name: name, VNI: vni, Subnet: p, Gateway: p.Addr().Next(), Egress: true}
}

func netCreate(n config.Network, host string, id uint64) command {
	return command{Op: opNetCreate, Network: n.Name, Host: host, Net: &n, ID: id}
}

// applier applies commands at increasing indexes.
type applier struct {
	f *fsm
	i uint64
}

func (a *applier) apply(c command) result {
	b, _ := json.Marshal(c)
	a.i++
	return a.f.Apply(&raft.Log{Index: a.i, Type: raft.LogCommand, Data: b}).(result)
}

func netNames(f *fsm) string {
	var s []string
	for _, n := range f.networks() {
		s = append(s, n.Def.Name)
	}
	return strings.Join(s, ",")
}

// TestApplyNetworks: create and remove through the log; a definition
// clashing by name, VNI or subnet with a network of the log is refused,
// whoever proposes it; a retry of a committed create is not.
func TestApplyNetworks(t *testing.T) {
	a := &applier{f: &fsm{pins: make(map[pinKey]Pin)}}
	blue := testNet("blue", 300, "10.80.0.0/24")
	if r := a.apply(netCreate(blue, "h1", 5)); r.Err != "" || r.Index != 1 {
		t.Fatalf("create blue: %+v", r)
	}
	if r := a.apply(netCreate(blue, "h1", 5)); r.Err != "" {
		t.Fatalf("retry of the committed create refused: %+v", r)
	}
	for _, tc := range []struct {
		name string
		n    config.Network
		want string
	}{
		{"same name", testNet("blue", 301, "10.81.0.0/24"), `network "blue" exists`},
		{"same vni", testNet("red", 300, "10.81.0.0/24"), "vni 300 is used by network \"blue\""},
		{"overlapping subnet", testNet("red", 301, "10.80.0.128/25"), "overlaps 10.80.0.0/24"},
		{"identical definition from another host", blue, `network "blue" exists`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := a.apply(netCreate(tc.n, "h2", 9))
			if !r.Conflict || !strings.Contains(r.Err, tc.want) {
				t.Fatalf("got %+v, want a conflict saying %q", r, tc.want)
			}
		})
	}
	// The probe: what clashes with nothing is taken.
	if r := a.apply(netCreate(testNet("red", 301, "10.81.0.0/24"), "h2", 9)); r.Err != "" {
		t.Fatalf("create red: %+v", r)
	}
	if got := netNames(a.f); got != "blue,red" {
		t.Fatalf("networks %q, want blue,red", got)
	}
	if r := a.apply(command{Op: opNetRemove, Network: "blue", Host: "h2"}); r.Err != "" {
		t.Fatalf("remove blue: %+v", r)
	}
	if r := a.apply(command{Op: opNetRemove, Network: "blue", Host: "h2"}); !r.Unknown {
		t.Fatalf("second remove of blue: %+v, want unknown", r)
	}
	// Its VNI and subnet are free again.
	if r := a.apply(netCreate(testNet("green", 300, "10.80.0.0/24"), "h1", 11)); r.Err != "" {
		t.Fatalf("create green on blue's VNI and subnet after its removal: %+v", r)
	}
	if got := netNames(a.f); got != "green,red" {
		t.Fatalf("networks %q, want green,red", got)
	}
}

// TestApplyRefusesInvalidNetwork: the config rules run in apply too, so a
// definition that bypassed the proposer's check never enters the state.
func TestApplyRefusesInvalidNetwork(t *testing.T) {
	a := &applier{f: &fsm{pins: make(map[pinKey]Pin)}}
	bad := []func(*config.Network){
		func(n *config.Network) { n.VNI = 7 },
		func(n *config.Network) { n.Name = "Blue_1" },
		func(n *config.Network) { n.Subnet = netip.MustParsePrefix("10.80.0.0/31") },
		func(n *config.Network) { n.Gateway = netip.MustParseAddr("10.99.0.1") },
		func(n *config.Network) { n.MTU = 60000 },
	}
	for i, mod := range bad {
		n := testNet("blue", 300, "10.80.0.0/24")
		mod(&n)
		if r := a.apply(netCreate(n, "h1", uint64(i+1))); r.Err == "" {
			t.Errorf("invalid definition %+v applied", n)
		}
	}
	c := netCreate(testNet("blue", 300, "10.80.0.0/24"), "h1", 1)
	c.Network = "red" // the entry's name differs from the definition's
	if r := a.apply(c); r.Err == "" {
		t.Error("create naming another network applied")
	}
	rm := command{Op: opNetRemove, Network: "blue", Host: "h1", Net: c.Net}
	if r := a.apply(rm); r.Err == "" || r.Unknown {
		t.Errorf("removal carrying a definition: %+v", r)
	}
	if len(a.f.nets) != 0 {
		t.Fatalf("networks after invalid entries: %v", a.f.nets)
	}
}

// TestNetworksSnapshotRoundTrip: the networks survive a snapshot and the
// state file, and a restored state refuses what the log refused.
func TestNetworksSnapshotRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), fsmFile)
	f, err := openFSM(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	a := &applier{f: f}
	a.apply(netCreate(testNet("blue", 300, "10.80.0.0/24"), "h1", 1))
	a.apply(netCreate(testNet("red", 301, "10.81.0.0/24"), "h2", 2))
	a.apply(command{Op: opTake, Network: "blue", Subnet: netip.MustParsePrefix("10.80.0.0/24"), Bits: 28, Host: "h1", ID: 3})
	snap := f.unlockedEncode()
	back, err := openFSM(path, quiet()) // the state file Apply wrote
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.unlockedEncode(), snap) {
		t.Fatalf("state file differs from the snapshot:\n%s\n%s", back.unlockedEncode(), snap)
	}
	if got := netNames(back); got != "blue,red" {
		t.Fatalf("restored networks %q", got)
	}
	select {
	case <-back.changed:
		t.Fatal("opening a state signalled a change nobody applied")
	default:
	}
	if err := back.Restore(nopCloser{bytes.NewReader(snap)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-back.changed:
	default:
		t.Fatal("a restored snapshot did not signal a change of networks")
	}
	ab := &applier{f: back, i: back.appliedIndex()}
	if r := ab.apply(netCreate(testNet("pink", 300, "10.90.0.0/24"), "h3", 4)); !r.Conflict {
		t.Fatalf("clash with a restored network: %+v", r)
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// TestCreateNetworkRace: two hosts create clashing networks at once;
// exactly one wins, and both replicas end up with the winner only. The
// probe: two that clash with nothing both win.
func TestCreateNetworkRace(t *testing.T) {
	nodes := cluster(t, 3, "a cluster secret of 32 bytes!!!")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	race := func(x, y config.Network) []error {
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, n := range []config.Network{x, y} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = nodes[i].CreateNetwork(ctx, n)
			}()
		}
		wg.Wait()
		return errs
	}
	errs := race(testNet("blue", 300, "10.80.0.0/24"), testNet("red", 300, "10.81.0.0/24"))
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrNetworkConflict):
			t.Fatalf("loser's error %v does not match ErrNetworkConflict", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of 2 clashing creates won: %v", won, errs)
	}
	errs = race(testNet("green", 301, "10.82.0.0/24"), testNet("pink", 302, "10.83.0.0/24"))
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("non-clashing creates: %v", errs)
	}
	for _, nd := range nodes {
		deadline := time.Now().Add(5 * time.Second)
		for len(nd.Networks()) != 3 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := nd.Networks(); len(got) != 3 {
			t.Fatalf("%s holds %v, want 3 networks", nd.cfg.Name, got)
		}
	}
	// The creator's own replica holds the network when create returns.
	if err := nodes[2].CreateNetwork(ctx, testNet("gold", 303, "10.84.0.0/24")); err != nil {
		t.Fatal(err)
	}
	if n := nodes[2].Networks(); len(n) != 4 {
		t.Fatalf("creator's replica right after create: %v", n)
	}
	if err := nodes[1].RemoveNetwork(ctx, "nope", nil); !errors.Is(err, ErrUnknownNetwork) {
		t.Fatalf("remove of an unknown network: %v", err)
	}
	if err := nodes[1].RemoveNetwork(ctx, "gold", nil); err != nil {
		t.Fatal(err)
	}
	if n := nodes[1].Networks(); len(n) != 3 {
		t.Fatalf("remover's replica right after remove: %v", n)
	}
}

// TestCreateNetworkNoQuorum: with one of two voters down, create fails
// within its bound with ErrNoQuorum, and the networks known stay known.
func TestCreateNetworkNoQuorum(t *testing.T) {
	nodes := cluster(t, 2, "a cluster secret of 32 bytes!!!")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := nodes[0].CreateNetwork(ctx, testNet("blue", 300, "10.80.0.0/24")); err != nil {
		t.Fatal(err)
	}
	nodes[1].Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	start := time.Now()
	err := nodes[0].CreateNetwork(ctx2, testNet("red", 301, "10.81.0.0/24"))
	if !errors.Is(err, ErrNoQuorum) || !strings.Contains(err.Error(), "1 of 2 hosts reachable") {
		t.Fatalf("create with 1 of 2 voters: %v, want ErrNoQuorum", err)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("create without quorum took %v", d)
	}
	if got := netNames(nodes[0].fsm); got != "blue" {
		t.Fatalf("networks during the outage: %q", got)
	}
}

// TestRemoveRefusedForPeersNames: the log refuses a network removal while
// a host it names holds an endpoint name on the network. Before the log
// decided, the proposer checked its own replica, which could lack a claim
// committed a moment earlier (its holder then stopped), and the removal
// went through under the endpoint.
func TestRemoveRefusedForPeersNames(t *testing.T) {
	a := &applier{f: &fsm{pins: make(map[pinKey]Pin)}}
	if r := a.apply(netCreate(testNet("blue", 300, "10.80.0.0/24"), "h1", 5)); r.Err != "" {
		t.Fatalf("create blue: %+v", r)
	}
	if r := a.apply(command{Op: opClaim, Network: "blue", Endpoint: "g2", Host: "h2", ID: 7}); r.Err != "" {
		t.Fatalf("claim: %+v", r)
	}
	if r := a.apply(command{Op: opClaim, Network: "blue", Endpoint: "mine", Host: "h1", ID: 8}); r.Err != "" {
		t.Fatalf("claim: %+v", r)
	}
	r := a.apply(command{Op: opNetRemove, Network: "blue", Host: "h1", Among: []string{"h2", "h3"}})
	if !r.Conflict || !strings.Contains(r.Err, "h2/g2") || strings.Contains(r.Err, "mine") {
		t.Fatalf("remove with h2's name held: %+v, want a conflict naming h2/g2 only", r)
	}
	if got := netNames(a.f); got != "blue" {
		t.Fatalf("networks %q after a refused removal", got)
	}
	if r := (&command{Op: opClaim, Network: "blue", Endpoint: "x", Host: "h1", ID: 9, Among: []string{"h2"}}).check(); r == nil {
		t.Fatal("a claim naming hosts passed the check")
	}
	if r := (&command{Op: opNetRemove, Network: "blue", Host: "h1", Among: []string{"bad\x00host"}}).check(); r == nil {
		t.Fatal("a removal naming a bad host passed the check")
	}
	// The probe: once h2 releases its name, the same removal goes through.
	if r := a.apply(command{Op: opUnclaim, Network: "blue", Endpoint: "g2", Host: "h2", ID: 7}); r.Err != "" {
		t.Fatalf("unclaim: %+v", r)
	}
	if r := a.apply(command{Op: opNetRemove, Network: "blue", Host: "h1", Among: []string{"h2", "h3"}}); r.Err != "" {
		t.Fatalf("remove after the release: %+v", r)
	}
}
