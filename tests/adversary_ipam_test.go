package tests

//  PFX-a1..a5 (attached by API)                 PFX-b1..b3 (attached by API)
//        |                                             |
//  vxwire up (PFX-h1)                           vxwire up (PFX-h2)
//  PFX-u1 198.18.0.1/24 ====== veth ======= PFX-u2 198.18.0.2/24
//                                    (set down in PFX-h2: the cut)
//
//  network blue: VNI 256, 10.77.0.0/28: address blocks of four (/30)

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// small is a /28 network, so that a host's first block (/30) fills after
// a few endpoints and the next one needs a quorum.
var small = netConf{name: "blue", vni: 256, subnet: "10.77.0.0/28", gateway: "10.77.0.1"}

// attachFails runs `vxwire attach` and returns its output, failing the
// test if it succeeds.
func (e *env) attachFails(h *host, c *netns, name string, extra ...string) string {
	e.t.Helper()
	args := append([]string{"attach", "--socket", e.socket(h), "--network", "blue", "--netns", c.path(), "--name", name}, extra...)
	so, se, code := vx(args...)
	if code == 0 {
		e.t.Fatalf("vxwire %s succeeded:\n%s", strings.Join(args, " "), so)
	}
	return so + se
}

// prefixAddr returns the address of a CIDR string.
func prefixAddr(t *testing.T, cidr string) netip.Addr {
	t.Helper()
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		t.Fatalf("address %q: %v", cidr, err)
	}
	return p.Addr()
}

// TestAdversaryIPAMPartition cuts host 2 from host 1 for longer than
// peer_timeout while host 2's container b1 holds address A. Before this
// fix, once host 2's records had expired on host 1, host 1 granted A to
// the next container that asked for it (its gossip claim saw no other
// member and so no one to refuse), and both containers answered ARP for
// A after healing. Now A lies in host 2's address block in the
// replicated log: host 1 refuses it, and hands out only addresses of its
// own block; either side that needs a new block gets a clear "no quorum"
// error, and after healing no address is held twice.
func TestAdversaryIPAMPartition(t *testing.T) {
	e := newEnv(t, "dig")
	h1, h2 := e.twoHosts()
	conf := func(peer *host) hostConf {
		return hostConf{peers: []*host{peer}, networks: []netConf{small}, peerTimeout: "3s"}
	}
	d1 := e.startDaemon(h1, e.writeConfig(h1, conf(h2)))
	d2 := e.startDaemon(h2, e.writeConfig(h2, conf(h1)))
	d1.waitReady()
	d2.waitReady()
	b1, b2, b3 := e.container("b1"), e.container("b2"), e.container("b3")
	a1, a2, a3, a4, a5 := e.container("a1"), e.container("a2"), e.container("a3"), e.container("a4"), e.container("a5")

	held := map[netip.Addr]string{}
	keep := func(who string, cidr string) netip.Addr {
		ip := prefixAddr(t, cidr)
		if o, dup := held[ip]; dup {
			t.Fatalf("%s got %s, which %s holds", who, ip, o)
		}
		held[ip] = who
		return ip
	}
	A := keep("b1 on h2", e.cliAttach(h2, "blue", b1, "b1").Address)
	keep("a1 on h1", e.cliAttach(h1, "blue", a1, "a1").Address)
	e.eventually(dnsTimeout, "a1 resolves b1", func() error { return e.resolvesTo(a1, small.gateway, "b1", A.String()) })

	// The cut, until host 1 has forgotten host 2's records.
	e.must("ip", "-n", h2.name, "link", "set", h2.link, "down")
	cut := time.Now()
	e.eventually(30*time.Second, "h1 forgets b1", func() error { return e.hasStatus(a1, small.gateway, "b1", "NXDOMAIN") })
	t.Logf("h1 forgot h2's records %v after the cut", time.Since(cut).Round(time.Millisecond))

	// The attack: host 1 asks for A outright.
	out := e.attachFails(h1, a2, "a2", "--ip", A.String())
	if !strings.Contains(out, A.String()) || !strings.Contains(out, "address block") || !strings.Contains(out, "h2") {
		t.Errorf("h1's refusal of %s does not name h2's address block:\n%s", A, out)
	}
	// Host 1 allocates inside its own block without a round trip...
	for _, c := range []*netns{a2, a3, a4} {
		start := time.Now()
		ip := keep("h1's "+c.name, e.cliAttach(h1, "blue", c, strings.TrimPrefix(c.name, e.prefix)).Address)
		if ip == A {
			t.Fatalf("h1 handed out %s, held by b1 on h2, during the cut", A)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("attach inside h1's own block took %v during the cut", d)
		}
	}
	// ...and needs a quorum for a new block: a clear error, bounded.
	start := time.Now()
	out = e.attachFails(h1, a5, "a5")
	if !strings.Contains(out, "no quorum: cannot take a new address block; 1 of 2 hosts reachable") {
		t.Errorf("h1 needing a new block during the cut:\n%s", out)
	}
	t.Logf("h1's block request gave up after %v", time.Since(start).Round(time.Millisecond))
	// Host 2, alone on its side, also keeps allocating inside its block.
	keep("b2 on h2", e.cliAttach(h2, "blue", b2, "b2").Address)
	out = e.attachFails(h2, b3, "b3")
	if !strings.Contains(out, "no quorum: cannot take a new address block; 1 of 2 hosts reachable") {
		t.Errorf("h2 needing a new block during the cut:\n%s", out)
	}
	t.Logf("cut lasted %v", time.Since(cut).Round(time.Millisecond))

	// Healing: the block request goes through and nothing is held twice.
	e.must("ip", "-n", h2.name, "link", "set", h2.link, "up")
	e.eventually(30*time.Second, "a1 resolves b1 again", func() error { return e.resolvesTo(a1, small.gateway, "b1", A.String()) })
	var ep3 string
	e.eventually(30*time.Second, "h2 takes a new block", func() error {
		so, se, code := vx("attach", "--socket", e.socket(h2), "--json", "--network", "blue", "--netns", b3.path(), "--name", "b3")
		if code != 0 {
			return errors.New(so + se)
		}
		ep3 = so
		return nil
	})
	var got api.Endpoint
	if err := json.Unmarshal([]byte(ep3), &got); err != nil {
		t.Fatalf("attach b3 --json: %v\n%s", err, ep3)
	}
	keep("b3 on h2", got.Address)
	var all []string
	for _, h := range []*host{h1, h2} {
		for _, ep := range e.mustStatus(h).Endpoints {
			all = append(all, fmt.Sprintf("%s=%s", ep.Name, ep.Address))
		}
	}
	seen := map[string]string{}
	for _, s := range all {
		name, ip, _ := strings.Cut(s, "=")
		if o, dup := seen[ip]; dup {
			t.Errorf("after healing %s is held by %s and %s", ip, o, name)
		}
		seen[ip] = name
	}
	slices.Sort(all)
	t.Logf("endpoints after healing: %v", all)
}
