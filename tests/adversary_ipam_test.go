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
	"path/filepath"
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
	start := time.Now()
	A := keep("b1 on h2", e.cliAttach(h2, "blue", b1, "b1").Address)
	keep("a1 on h1", e.cliAttach(h1, "blue", a1, "a1").Address)
	t.Logf("two attaches that each took a new block: %v", time.Since(start).Round(time.Millisecond))
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
		start = time.Now()
		ip := keep("h1's "+c.name, e.cliAttach(h1, "blue", c, strings.TrimPrefix(c.name, e.prefix)).Address)
		if ip == A {
			t.Fatalf("h1 handed out %s, held by b1 on h2, during the cut", A)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("attach inside h1's own block took %v during the cut", d)
		} else {
			t.Logf("attach inside h1's own block during the cut: %v", d.Round(time.Millisecond))
		}
	}
	// ...and needs a quorum for a new block: a clear error, bounded.
	start = time.Now()
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

// TestAdversaryNetnsReuse saves an endpoint whose namespace path is a bind
// mount, stops the daemon, lets the container's namespace die and puts a
// new, unrelated namespace at the same path (as PID reuse does for
// /proc/PID/ns/net). Before this fix the restarted daemon attached the
// saved endpoint to whatever the path named: the newcomer got the dead
// container's eth0, address and DNS name. Now the saved namespace identity
// (device and inode) no longer matches: the endpoint is reported as
// failed, its name and address stay reserved until it is detached, while
// an endpoint whose namespace is unchanged is attached again as before.
func TestAdversaryNetnsReuse(t *testing.T) {
	e := newEnv(t, "dig")
	h1, _ := e.twoHosts()
	cfg := e.writeConfig(h1, hostConf{networks: []netConf{blue}})
	d := e.startDaemon(h1, cfg)
	d.waitReady()
	victim, keeper, probe, later := e.container("vic"), e.container("kp"), e.container("pr"), e.container("lt")
	x := prefixAddr(t, e.cliAttach(h1, "blue", victim, "victim").Address)
	kAddr := prefixAddr(t, e.cliAttach(h1, "blue", keeper, "keeper").Address)
	if err := d.stop(); err != nil {
		t.Fatalf("daemon on SIGTERM: %v", err)
	}

	// The container's namespace dies; a stranger's takes its path.
	e.must("ip", "netns", "del", victim.name)
	e.must("ip", "netns", "add", victim.name)
	e.must("ip", "-n", victim.name, "link", "set", "lo", "up")

	d = e.startDaemon(h1, cfg)
	st := d.waitReady("keeper")
	if len(missingEndpoints(st, []string{"victim"})) == 0 {
		t.Fatalf("the restarted daemon attached victim to the namespace that took its path: %+v", st.Endpoints)
	}
	if out, err := e.in(victim, "ip", "link", "show", "eth0"); err == nil {
		t.Errorf("the new namespace at the old path got the dead container's eth0:\n%s", out)
	}
	i := slices.IndexFunc(st.Failed, func(f api.FailedEndpoint) bool { return f.Name == "victim" })
	if i < 0 || !strings.Contains(st.Failed[i].Reason, "another namespace") {
		t.Fatalf("status does not report victim as failed for its namespace: %+v", st.Failed)
	}
	t.Logf("reported: %s", st.Failed[i].Reason)
	// The probe that can fail: the unchanged namespace is attached again.
	e.mustIn(keeper, "ip", "link", "show", "eth0")

	// Neither the name nor the address goes to anyone else meanwhile.
	pAddr := prefixAddr(t, e.cliAttach(h1, "blue", probe, "probe").Address)
	if pAddr == x {
		t.Fatalf("a new container got the failed endpoint's address %s", x)
	}
	e.eventually(dnsTimeout, "probe resolves keeper", func() error { return e.resolvesTo(probe, blue.gateway, "keeper", kAddr.String()) })
	if err := e.hasStatus(probe, blue.gateway, "victim", "NXDOMAIN"); err != nil {
		t.Error(err)
	}
	out := e.attachFails(h1, later, "lt", "--ip", x.String())
	if !strings.Contains(out, x.String()) {
		t.Errorf("attach asking for the failed endpoint's address: %s", out)
	}
	// Detach frees both.
	e.mustVX("detach", "--socket", e.socket(h1), "--network", "blue", "--name", "victim")
	if st := e.mustStatus(h1); len(st.Failed) != 0 {
		t.Errorf("failed endpoints after detach: %+v", st.Failed)
	}
	so := e.mustVX("attach", "--socket", e.socket(h1), "--json", "--network", "blue", "--netns", later.path(), "--name", "victim", "--ip", x.String())
	var ep api.Endpoint
	if err := json.Unmarshal([]byte(so), &ep); err != nil || prefixAddr(t, ep.Address) != x {
		t.Fatalf("after detach, attach of %s as victim: %v\n%s", x, err, so)
	}
}

// TestAdversaryIPAMStaleEndpoint restarts host 2 with a saved endpoint
// whose address the overlay has given to host 1 meanwhile (its address
// store is rewritten to hold host 1's address, as a store kept from
// before the address-block log, or restored from a backup, would). The
// daemon starts anyway: the endpoint is reported as failed, naming the
// holder, and host 1 keeps its address; before this fix the endpoint was
// only logged and forgotten, with nothing in the status.
func TestAdversaryIPAMStaleEndpoint(t *testing.T) {
	e := newEnv(t, "dig")
	h1, h2 := e.twoHosts()
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{peers: []*host{h2}, networks: []netConf{blue}}))
	cfg2 := e.writeConfig(h2, hostConf{peers: []*host{h1}, networks: []netConf{blue}})
	d2 := e.startDaemon(h2, cfg2)
	d1.waitReady()
	d2.waitReady()
	a1, b1, b2 := e.container("a1"), e.container("b1"), e.container("b2")
	held := prefixAddr(t, e.cliAttach(h1, "blue", a1, "a1").Address)
	e.cliAttach(h2, "blue", b1, "b1")
	if err := d2.stop(); err != nil {
		t.Fatalf("daemon h2 on SIGTERM: %v", err)
	}
	store := filepath.Join(e.dir, "h2-state", "ipam", "ipam.json")
	e.file("h2-state/ipam/ipam.json", fmt.Sprintf(`{"version":1,"allocations":[{"network":"blue","endpoint":"b1","address":%q}]}`, held))
	t.Logf("rewrote %s: b1 holds %s, in h1's block", store, held)

	d2 = e.startDaemon(h2, cfg2)
	st := d2.waitReady()
	i := slices.IndexFunc(st.Failed, func(f api.FailedEndpoint) bool { return f.Name == "b1" })
	if i < 0 || !strings.Contains(st.Failed[i].Reason, held.String()) || !strings.Contains(st.Failed[i].Reason, "h1") {
		t.Fatalf("status of the restarted h2 does not report b1 failed, naming %s and h1: %+v", held, st.Failed)
	}
	t.Logf("reported: %s", st.Failed[i].Reason)
	if len(missingEndpoints(st, []string{"b1"})) == 0 {
		t.Fatalf("h2 attached b1 with %s, held by a1 on h1", held)
	}
	if out, err := e.in(b1, "ip", "-4", "addr", "show"); err == nil && strings.Contains(out, held.String()) {
		t.Errorf("b1 carries h1's address %s:\n%s", held, out)
	}
	// The probe that can fail: the restarted host attaches as usual.
	b2Addr := prefixAddr(t, e.cliAttach(h2, "blue", b2, "b2").Address)
	if b2Addr == held {
		t.Fatalf("b2 got %s, held by a1 on h1", held)
	}
	e.eventually(dnsTimeout, "b2 resolves a1", func() error { return e.resolvesTo(b2, blue.gateway, "a1", held.String()) })
	e.mustPing(b2, held.String())
}
