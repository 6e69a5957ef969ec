package tests

// API networks kept in the Raft log: two hosts racing to create clashing
// networks, and network changes during a partition.
//
//   PFX-c1a PFX-c1b (API network green)    PFX-c2a PFX-c2b
//        \    /                                \    /
//   vxwire up (PFX-h1)                    vxwire up (PFX-h2)
//   PFX-u1 198.18.0.1/24 ===== veth ===== PFX-u2 198.18.0.2/24
//   (the cut: nftables in PFX-h1 drops everything to and from 198.18.0.2)

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// raceCreate runs `vxwire network create` on h1 and h2 at the same time,
// with args1 and args2, and returns the exit codes and outputs.
func (e *env) raceCreate(h1, h2 *host, args1, args2 []string) (codes [2]int, outs [2]string) {
	var wg sync.WaitGroup
	for i, x := range []struct {
		h    *host
		args []string
	}{{h1, args1}, {h2, args2}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			so, se, code := vx(append([]string{"network", "create", "--socket", e.socket(x.h)}, x.args...)...)
			codes[i], outs[i] = code, so+se
		}()
	}
	wg.Wait()
	return codes, outs
}

// waitNetworks waits until h lists exactly the API networks want (by
// name), each applied.
func (e *env) waitNetworks(h *host, want ...string) {
	e.t.Helper()
	e.eventually(readyTimeout, fmt.Sprintf("%s lists API networks %v", h.id, want), func() error {
		ns, err := e.cliNetworks(h)
		if err != nil {
			return err
		}
		var got []string
		for _, n := range ns {
			if n.Source == "api" {
				if n.Error != "" {
					return fmt.Errorf("%s: %s", n.Name, n.Error)
				}
				got = append(got, n.Name)
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("lists %v", got)
		}
		return nil
	})
}

// TestAdversaryNetworkCreateRace has h1 and h2 create, at the same
// moment, networks of different names that clash: the same VNI, or
// overlapping subnets. Before this fix each host checked only the
// definitions it had heard of by gossip: both creates succeeded, and
// moments later every host hid one of the two networks, so one caller had
// been told "created" for a network that then vanished under it. Now
// both creates go through the Raft log, which refuses the second when it
// applies it: exactly one create succeeds, the other gets a 409 naming
// the winner, and both hosts list the winner only. The probe: two
// creates that clash with nothing, raced the same way, both succeed.
func TestAdversaryNetworkCreateRace(t *testing.T) {
	e := newEnv(t)
	h1, h2 := e.twoHosts()
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{peers: []*host{h2}}))
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{peers: []*host{h1}}))
	d1.waitReady()
	d2.waitReady()

	var winners []string
	for i, clash := range []struct {
		a, b []string
		why  string
	}{
		{[]string{"--subnet", "10.90.0.0/24", "--vni", "400", "vnia"}, []string{"--subnet", "10.91.0.0/24", "--vni", "400", "vnib"}, "vni 400"},
		{[]string{"--subnet", "10.92.0.0/24", "--vni", "401", "neta"}, []string{"--subnet", "10.92.0.128/25", "--vni", "402", "netb"}, "overlaps"},
		{[]string{"--subnet", "10.93.0.0/24", "--vni", "403", "same"}, []string{"--subnet", "10.94.0.0/24", "--vni", "404", "same"}, `network "same" exists`},
	} {
		// The first round may meet an election: creates wait for it.
		codes, outs := e.raceCreate(h1, h2, clash.a, clash.b)
		t.Logf("round %d: exit codes %v", i, codes)
		var won []int
		for j, c := range codes {
			switch {
			case c == 0:
				won = append(won, j)
			case c != exitConflict || !strings.Contains(outs[j], clash.why):
				t.Fatalf("round %d: h%d's create: exit code %d, want 0 or %d saying %q\n%s", i, j+1, c, exitConflict, clash.why, outs[j])
			default:
				e.noStackTrace("vxwire network create", outs[j])
			}
		}
		if len(won) != 1 {
			t.Fatalf("round %d: %d of 2 clashing creates succeeded: %v\n%s\n%s", i, len(won), codes, outs[0], outs[1])
		}
		name := []string{clash.a[len(clash.a)-1], clash.b[len(clash.b)-1]}[won[0]]
		winners = append(winners, name)
	}
	want := slices.Sorted(slices.Values(winners)) // network ls sorts by name
	for _, h := range []*host{h1, h2} {
		e.waitNetworks(h, want...)
	}

	// The probe: non-clashing creates, raced the same way, both win.
	codes, outs := e.raceCreate(h1, h2,
		[]string{"--subnet", "10.95.0.0/24", "--vni", "405", "pa"},
		[]string{"--subnet", "10.96.0.0/24", "--vni", "406", "pb"})
	if codes != [2]int{0, 0} {
		t.Fatalf("non-clashing creates: exit codes %v\n%s\n%s", codes, outs[0], outs[1])
	}
	want = slices.Sorted(slices.Values(append(winners, "pa", "pb")))
	for _, h := range []*host{h1, h2} {
		e.waitNetworks(h, want...)
	}
}

// TestAdversaryNetworkCreatePartition cuts h1 from h2 with nftables while
// both carry the API network green. Before this fix a network create on
// either side of a cut succeeded through gossip alone, so both sides could
// create clashing networks that only met after healing. Now a create
// needs a quorum of the Raft log: on either side it fails within its bound
// with a "no quorum" error, while traffic on green keeps flowing on each
// side; after healing a create succeeds and both hosts carry the network.
func TestAdversaryNetworkCreatePartition(t *testing.T) {
	e := newEnv(t)
	h1, h2 := e.twoHosts()
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{peers: []*host{h2}}))
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{peers: []*host{h1}}))
	d1.waitReady()
	d2.waitReady()
	c1a, c1b, c2a, c2b := e.container("c1a"), e.container("c1b"), e.container("c2a"), e.container("c2b")

	e.mustVX("network", "create", "--socket", e.socket(h1), "--subnet", "10.88.0.0/24", "green")
	e.waitNetworks(h2, "green")
	ip := func(cidr string) string { a, _, _ := strings.Cut(cidr, "/"); return a }
	a1a := ip(e.cliAttach(h1, "green", c1a, "c1a").Address)
	a1b := ip(e.cliAttach(h1, "green", c1b, "c1b").Address)
	a2a := ip(e.cliAttach(h2, "green", c2a, "c2a").Address)
	a2b := ip(e.cliAttach(h2, "green", c2b, "c2b").Address)
	e.mustPing(c1a, a2a)

	// The cut.
	e.cutUnderlay(h1)
	e.mustNotPing(c1a, a2a)

	for i, h := range []*host{h1, h2} {
		start := time.Now()
		name := fmt.Sprintf("red%d", i+1)
		subnet := fmt.Sprintf("10.%d.0.0/24", 90+i)
		so, se, code := vx("network", "create", "--socket", e.socket(h), "--subnet", subnet, name)
		took := time.Since(start)
		if code == 0 || code == exitConflict || !strings.Contains(se, "no quorum: 1 of 2 hosts reachable") {
			t.Errorf("network create on %s during the cut: exit code %d, want a no-quorum failure\n%s%s", h.id, code, so, se)
		}
		e.noStackTrace("vxwire network create", so+se)
		if took > 20*time.Second {
			t.Errorf("network create on %s during the cut took %v", h.id, took)
		}
		t.Logf("network create on %s during the cut failed after %v: %s", h.id, took.Round(time.Millisecond), strings.TrimSpace(se))
	}
	// The existing network keeps working on each side.
	e.mustPing(c1a, a1b)
	e.mustPing(c2a, a2b)
	e.waitNetworks(h1, "green")
	e.waitNetworks(h2, "green")

	// Healing: a create goes through (the first tries may meet an
	// election) and both hosts carry it.
	e.healUnderlay(h1)
	e.eventually(60*time.Second, "network create blue after healing", func() error {
		so, se, code := vx("network", "create", "--socket", e.socket(h2), "--subnet", "10.92.0.0/24", "blue")
		switch {
		case code == 0:
			return nil
		case code == exitConflict && strings.Contains(se, `network "blue" exists`):
			return nil // an earlier try was committed after it gave up
		case code == exitConflict:
			return permanent(fmt.Errorf("exit code %d\n%s%s", code, so, se))
		}
		return fmt.Errorf("exit code %d\n%s%s", code, so, se)
	})
	for _, h := range []*host{h1, h2} {
		e.waitNetworks(h, "blue", "green")
	}
	b1, b2 := e.container("b1"), e.container("b2")
	ab2 := ip(e.cliAttach(h2, "blue", b2, "b2").Address)
	e.cliAttach(h1, "blue", b1, "b1")
	e.mustPing(b1, ab2)
	e.mustPing(c2a, a1a)
}

// TestNetworkLogRestartAlone stops both hosts and starts h1 alone: the
// log's state on disk gives it the API network green at once, without a
// quorum, so its container is attached again and reaches the gateway;
// with no quorum, a create there is refused, and once h2 is back it works.
func TestNetworkLogRestartAlone(t *testing.T) {
	e := newEnv(t)
	h1, h2 := e.twoHosts()
	cfg1 := e.writeConfig(h1, hostConf{peers: []*host{h2}})
	cfg2 := e.writeConfig(h2, hostConf{peers: []*host{h1}})
	d1, d2 := e.startDaemon(h1, cfg1), e.startDaemon(h2, cfg2)
	d1.waitReady()
	d2.waitReady()
	c1 := e.container("c1")
	e.mustVX("network", "create", "--socket", e.socket(h2), "--subnet", "10.88.0.0/24", "green")
	e.waitNetworks(h1, "green")
	ep := e.cliAttach(h1, "green", c1, "c1")
	e.mustPing(c1, ep.Gateway)
	for _, d := range []*daemon{d1, d2} {
		if err := d.stop(); err != nil {
			t.Fatalf("daemon on SIGTERM: %v", err)
		}
	}

	d1 = e.startDaemon(h1, cfg1)
	d1.waitReady("c1")
	e.waitNetworks(h1, "green")
	e.mustPing(c1, ep.Gateway)
	so, se, code := vx("network", "create", "--socket", e.socket(h1), "--subnet", "10.89.0.0/24", "red")
	if code == 0 || !strings.Contains(se, "no quorum") {
		t.Errorf("network create on h1 alone: exit code %d, want a no-quorum failure\n%s%s", code, so, se)
	}
	d2 = e.startDaemon(h2, cfg2)
	d2.waitReady()
	e.eventually(60*time.Second, "network create red with h2 back", func() error {
		so, se, code := vx("network", "create", "--socket", e.socket(h1), "--subnet", "10.89.0.0/24", "red")
		if code == 0 || code == exitConflict && strings.Contains(se, `network "red" exists`) {
			return nil
		}
		return fmt.Errorf("exit code %d\n%s%s", code, so, se)
	})
	e.waitNetworks(h2, "green", "red")
}

// TestNetworkLogAdoptsLocalNetworks starts h1 without peers, where its API
// networks are its own (kept in state_dir), then again with h2 as a peer:
// its network green is carried into the log and reaches h2, and its
// container is attached again on it.
func TestNetworkLogAdoptsLocalNetworks(t *testing.T) {
	e := newEnv(t)
	h1, h2 := e.twoHosts()
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{}))
	d1.waitReady()
	c1 := e.container("c1")
	e.mustVX("network", "create", "--socket", e.socket(h1), "--subnet", "10.88.0.0/24", "green")
	ep := e.cliAttach(h1, "green", c1, "c1")
	if err := d1.stop(); err != nil {
		t.Fatalf("daemon on SIGTERM: %v", err)
	}

	d1 = e.startDaemon(h1, e.writeConfig(h1, hostConf{peers: []*host{h2}}))
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{peers: []*host{h1}}))
	d1.waitReady()
	d2.waitReady()
	for _, h := range []*host{h1, h2} {
		e.waitNetworks(h, "green")
	}
	e.eventually(readyTimeout, "c1 attached again", func() error {
		eps, err := e.apiEndpoints(h1)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(eps, func(x api.Endpoint) bool { return x.Network == "green" && x.Name == "c1" }) {
			return fmt.Errorf("not listed: %+v", eps)
		}
		return nil
	})
	e.mustPing(c1, ep.Gateway)
	c2 := e.container("c2")
	ep2 := e.cliAttach(h2, "green", c2, "c2")
	a2, _, _ := strings.Cut(ep2.Address, "/")
	e.mustPing(c1, a2)
}
