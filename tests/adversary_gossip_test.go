package tests

// Attacks on the control plane: strangers and members on the underlay
// talking gossip, and hosts that disagree about what they can carry.
//
//   PFX-c1 10.77.0.10         PFX-c2 10.77.0.20
//        |                         |
//   vxwire up (PFX-h1)       vxwire up (PFX-h2)      PFX-h3: a configured peer
//   198.18.0.1               198.18.0.2              address; the attacker's
//        \                        |                  gossip process, or a
//         \______ PFX-sw br0 _____|_____ 198.18.0.3  vxwire with another secret
//                     |
//               PFX-x 198.18.0.9: a stranger on the segment, in no config
//
// The attacker process is this test binary started again inside a
// namespace with attackerEnv set: it runs vxwire's own gossip package
// (memberlist) with the peer list the attacker knows, and announces an
// endpoint record, as a forged host would.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/consensus"
	"github.com/vxwire/vxwire/internal/gossip"
)

// attackerEnv carries an attackSpec (JSON) to the attacker process.
const attackerEnv = "VXWIRE_TEST_GOSSIP_ATTACKER"

// attackSpec is what the attacker process does: join seed from bind as
// name, with the secret in secretFile ("" for none), and announce one
// record name at ip in network.
type attackSpec struct {
	Name       string `json:"name"`
	Bind       string `json:"bind"`
	Seed       string `json:"seed"`
	SecretFile string `json:"secret_file"`
	Network    string `json:"network"`
	Record     string `json:"record"`
	IP         string `json:"ip"`
}

// runGossipAttacker runs the attacker until SIGTERM; it returns the exit
// status.
func runGossipAttacker(spec string) int {
	var s attackSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, "attacker:", err)
		return 2
	}
	cfg := gossip.Config{
		NodeName:  s.Name,
		BindAddr:  netip.MustParseAddr(s.Bind),
		Seeds:     []netip.AddrPort{netip.MustParseAddrPort(s.Seed)},
		DeadAfter: 3 * time.Second,
	}
	if s.SecretFile != "" {
		b, err := os.ReadFile(s.SecretFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "attacker:", err)
			return 2
		}
		// As config.Load reads it.
		cfg.Secret = bytes.TrimRight(b, "\r\n")
	}
	l := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := gossip.New(cfg, l)
	if err != nil {
		fmt.Fprintln(os.Stderr, "attacker:", err)
		return 2
	}
	ip := netip.MustParseAddr(s.IP)
	a := ip.As4()
	c.SetLocal([]gossip.Record{{Network: s.Network, Name: s.Record, IP: ip, MAC: [6]byte{2, 0x66, a[0], a[1], a[2], a[3]}}})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	c.Close()
	return 0
}

// startAttacker runs the attacker process in namespace n; cleanup stops
// it by its pid. stop ends it earlier.
func (e *env) startAttacker(n *netns, s attackSpec) *proc {
	e.t.Helper()
	self, err := os.Executable()
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		e.t.Fatal(err)
	}
	os.Setenv(attackerEnv, string(b))
	defer os.Unsetenv(attackerEnv)
	return e.startProc(n, "attacker-"+s.Record, self, "-test.run=^$")
}

// stop ends p with SIGTERM (SIGKILL after termTimeout), by its pid.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(termTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// gossipTrio is h1 and h2 running vxwire with c1 and c2 on blue, h3 a
// configured peer of both that runs nothing, and x a stranger on the same
// segment.
type gossipTrio struct {
	h1, h2, h3 *host
	x          *netns
	c1, c2     *netns
	d1, d2     *daemon
}

func (e *env) gossipTrio() *gossipTrio {
	e.t.Helper()
	hosts, sw := e.threeHosts()
	g := &gossipTrio{h1: hosts[0], h2: hosts[1], h3: hosts[2]}
	g.x = e.newNS("x")
	e.attachUnderlay(sw, g.x, e.prefix+"ux", "x", "198.18.0.9")
	g.c1, g.c2 = e.container("c1"), e.container("c2")
	g.d1 = e.startDaemon(g.h1, e.writeConfig(g.h1, hostConf{
		peers: []*host{g.h2, g.h3}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c1", ns: g.c1, addr: "10.77.0.10"}},
	}))
	g.d2 = e.startDaemon(g.h2, e.writeConfig(g.h2, hostConf{
		peers: []*host{g.h1, g.h3}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c2", ns: g.c2, addr: "10.77.0.20"}},
	}))
	g.d1.waitReady("c1")
	g.d2.waitReady("c2")
	// The probe of every attack here: a real peer's record arrives.
	e.eventually(readyTimeout, "c1 resolves c2 (h2's record reached h1)", func() error {
		return e.resolvesTo(g.c1, blue.gateway, "c2", "10.77.0.20")
	})
	return g
}

// waitRefused waits until h's daemon counts at least one refusal for
// reason more than before.
func (e *env) waitRefused(h *host, reason string, before uint64) {
	e.t.Helper()
	e.eventually(readyTimeout, fmt.Sprintf("%s counts %s", h.id, reason), func() error {
		st, err := e.status(h)
		if err != nil {
			return err
		}
		if st.Refused[reason] <= before {
			return fmt.Errorf("refused %v", st.Refused)
		}
		return nil
	})
}

// unknownTo checks that name does not resolve from c on blue.
func (e *env) unknownTo(c *netns, name string) {
	e.t.Helper()
	if err := e.hasStatus(c, blue.gateway, name, "NXDOMAIN"); err != nil {
		e.t.Errorf("forged record accepted: %v", err)
	}
}

// TestAdversaryGossipWithoutSecret forges gossip as a process that knows
// only the peer list: it joins h1 with vxwire's gossip and announces a
// record, first from a stranger's address, then from a configured peer's
// address. Before this fix secret_file was optional and memberlist took
// anyone: the test configs had no secret, and both forged records
// resolved on every host. Now the stranger is dropped at the gate
// (gossip_stranger) and the peer-address one fails authentication
// (gossip_unauthenticated). The probe: the same process from the peer
// address with the cluster secret gets its record in.
func TestAdversaryGossipWithoutSecret(t *testing.T) {
	e := newEnv(t, "dig")
	g := e.gossipTrio()
	seed := g.h1.addr + ":7946"

	before := e.mustStatus(g.h1).Refused
	a := e.startAttacker(g.x, attackSpec{Name: "h3", Bind: "198.18.0.9", Seed: seed, Network: "blue", Record: "evil", IP: "10.77.0.66"})
	e.waitRefused(g.h1, gossip.RefusedStranger, before[gossip.RefusedStranger])
	// A stranger that holds the secret fares no better.
	a.stop(t)
	before = e.mustStatus(g.h1).Refused
	a = e.startAttacker(g.x, attackSpec{Name: "h3", Bind: "198.18.0.9", Seed: seed, SecretFile: e.clusterSecret(), Network: "blue", Record: "evil2", IP: "10.77.0.67"})
	e.waitRefused(g.h1, gossip.RefusedStranger, before[gossip.RefusedStranger])
	a.stop(t)

	before = e.mustStatus(g.h1).Refused
	a = e.startAttacker(g.h3.netns, attackSpec{Name: "h3", Bind: g.h3.addr, Seed: seed, Network: "blue", Record: "evil3", IP: "10.77.0.68"})
	e.waitRefused(g.h1, gossip.RefusedUnauthenticated, before[gossip.RefusedUnauthenticated])
	for _, c := range []*netns{g.c1, g.c2} {
		for _, name := range []string{"evil", "evil2", "evil3"} {
			e.unknownTo(c, name)
		}
	}
	a.stop(t)

	// The probe: the same process, from the peer address, with the secret.
	e.startAttacker(g.h3.netns, attackSpec{Name: "h3", Bind: g.h3.addr, Seed: seed, SecretFile: e.clusterSecret(), Network: "blue", Record: "legit", IP: "10.77.0.69"})
	e.eventually(readyTimeout, "c1 resolves the authenticated peer's record", func() error {
		return e.resolvesTo(g.c1, blue.gateway, "legit", "10.77.0.69")
	})
}

// TestAdversaryGossipWrongSecret runs a real vxwire member on h3 whose
// secret differs from the cluster's: it is not admitted, and its
// container's name never reaches h1; its replicated-log connections fail
// their handshake and are counted (raft_unauthenticated, not counted
// before that counter existed). Before this fix a host with no
// secret_file at all ran unauthenticated gossip and was admitted. The
// probe: the same daemon restarted with the right secret is admitted.
func TestAdversaryGossipWrongSecret(t *testing.T) {
	e := newEnv(t, "dig")
	g := e.gossipTrio()
	c3 := e.container("c3")
	conf := hostConf{
		peers: []*host{g.h1, g.h2}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c3", ns: c3, addr: "10.77.0.30"}},
		secret:    e.newSecret("wrong.secret"),
	}
	before := e.mustStatus(g.h1).Refused
	d3 := e.startDaemon(g.h3, e.writeConfig(g.h3, conf))
	d3.waitReady("c3")
	e.waitRefused(g.h1, gossip.RefusedUnauthenticated, before[gossip.RefusedUnauthenticated])
	// Its log member's handshakes (votes it asks for) fail too.
	e.waitRefused(g.h1, consensus.RefusedUnauthenticated, before[consensus.RefusedUnauthenticated])
	e.unknownTo(g.c1, "c3")
	e.unknownTo(g.c2, "c3")
	if err := d3.stop(); err != nil {
		t.Fatalf("stop h3: %v", err)
	}

	conf.secret = ""
	d3 = e.startDaemon(g.h3, e.writeConfig(g.h3, conf))
	d3.waitReady("c3")
	e.eventually(readyTimeout, "c1 resolves c3 once h3 has the right secret", func() error {
		return e.resolvesTo(g.c1, blue.gateway, "c3", "10.77.0.30")
	})
}

// TestAdversaryKeylessEncryptedNetwork: h1 has a WireGuard key, h2 none.
// An encrypted network created on h1 replicates to h2. Before this fix
// h2 applied it, `vxwire attach` there succeeded, and the first ping from
// that container panicked h2's daemon (nil connection in flush). Now h2
// leaves the network out, counts it, says why in network inspect, and
// refuses the attach; its daemon keeps running. The probe: the same
// attach on h1, which has the key, works and its container reaches the
// gateway.
func TestAdversaryKeylessEncryptedNetwork(t *testing.T) {
	e := newEnv(t)
	h1, h2 := e.twoHosts()
	c1, c2 := e.container("c1"), e.container("c2")
	k1 := e.withKey(h1)
	cfg1 := strings.Replace(e.render(h1, hostConf{peers: []*host{h2}}), "[host]\n",
		fmt.Sprintf("[host]\nprivate_key_file = %q\nwg_name = %q\n", k1.key.file, k1.wgName), 1)
	d1 := e.startDaemon(h1, e.file("h1.toml", cfg1))
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{peers: []*host{h1}}))
	d1.waitReady()
	d2.waitReady()
	s1, s2 := e.socket(h1), e.socket(h2)

	e.mustVX("network", "create", "--socket", s1, "--subnet", "10.90.0.0/24", "--opt", "encrypted", "sec")
	var inspect string
	e.eventually(readyTimeout, "h2 reports sec as not applied", func() error {
		so, se, code := vx("network", "inspect", "--socket", s2, "sec")
		if code != 0 {
			return fmt.Errorf("exit code %d\n%s%s", code, so, se)
		}
		inspect = so
		if !strings.Contains(so, "not applied on h2: no private_key_file") {
			return fmt.Errorf("inspect says:\n%s", so)
		}
		return nil
	})
	t.Logf("vxwire network inspect sec on h2:\n%s", inspect)
	if st := e.mustStatus(h2); st.Refused["network_no_private_key"] == 0 {
		t.Errorf("h2 does not count the refusal: %v", st.Refused)
	}

	so, se, code := vx("attach", "--socket", s2, "--network", "sec", "--netns", c2.path(), "--name", "c2")
	if code != exitConflict || !strings.Contains(se, "not applied on h2") {
		t.Errorf("attach to sec on h2: exit code %d, want %d with a clear reason\n%s%s", code, exitConflict, so, se)
	}
	e.noStackTrace("vxwire attach on h2", so+se)
	if _, err := e.in(c2, "ip", "link", "show", "eth0"); err == nil {
		t.Error("c2 got an eth0 although the attach was refused")
	}
	if !d2.running() {
		t.Fatalf("h2's daemon exited: %v", d2.err)
	}

	// The probe: h1 carries sec.
	ep := e.cliAttach(h1, "sec", c1, "c1")
	e.mustPing(c1, ep.Gateway)
	if !d2.running() {
		t.Fatalf("h2's daemon exited: %v", d2.err)
	}
}

// TestAdversaryNetworkCreateClashesWithConfig creates, through h1's API,
// networks that take the VNI or overlap the subnet of a network that only
// h2's config file defines. Before this fix h1 checked only its own
// networks: the create succeeded, and h2 silently kept its file's network
// while h1 carried the new one under the same VNI. Now both are refused
// with a conflict naming h2 and red. The probe: a network that clashes
// with nothing is created.
func TestAdversaryNetworkCreateClashesWithConfig(t *testing.T) {
	e := newEnv(t, "dig")
	h1, h2 := e.twoHosts()
	c1, c2 := e.container("c1"), e.container("c2")
	red := netConf{name: "red", vni: 300, subnet: "10.78.0.0/24", gateway: "10.78.0.1"}
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{peers: []*host{h2}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c1", ns: c1, addr: "10.77.0.10"}}}))
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{peers: []*host{h1}, networks: []netConf{blue, red},
		endpoints: []epConf{{network: "blue", name: "c2", ns: c2, addr: "10.77.0.20"}}}))
	d1.waitReady("c1")
	d2.waitReady("c2")
	// h2's state, which lists its file's networks, has reached h1.
	e.eventually(readyTimeout, "c1 resolves c2", func() error { return e.resolvesTo(c1, blue.gateway, "c2", "10.77.0.20") })
	s1 := e.socket(h1)

	for _, args := range [][]string{
		{"--subnet", "10.90.0.0/24", "--vni", "300", "green"},
		{"--subnet", "10.78.0.128/25", "green"},
		{"--subnet", "10.91.0.0/24", "red"},
	} {
		so, se, code := vx(append([]string{"network", "create", "--socket", s1}, args...)...)
		if code != exitConflict || !strings.Contains(se, "red") || !strings.Contains(se, "h2") {
			t.Errorf("network create %v on h1: exit code %d, want %d naming h2 and red\n%s%s", args, code, exitConflict, so, se)
		}
		e.noStackTrace("vxwire network create", so+se)
	}
	ns, err := e.cliNetworks(h1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := findNetwork(ns, "green"); ok {
		t.Fatalf("h1 lists green after the refused creates: %+v", ns)
	}
	// The probe.
	e.mustVX("network", "create", "--socket", s1, "--subnet", "10.90.0.0/24", "--vni", "301", "green")
	e.eventually(readyTimeout, "h2 lists green", func() error {
		ns, err := e.cliNetworks(h2)
		if err != nil {
			return err
		}
		if n, ok := findNetwork(ns, "green"); !ok || n.Error != "" {
			return fmt.Errorf("green on h2: %+v", ns)
		}
		return nil
	})
}

// TestAdversaryNetworkRmWithRemoteEndpoint removes, on h1, a network that
// still has an endpoint on h2. Before this fix only h1's own endpoints
// were checked: the network was deleted everywhere under h2's container.
// Now the removal is refused naming h2's endpoint; the probe: after the
// detach on h2 it succeeds.
func TestAdversaryNetworkRmWithRemoteEndpoint(t *testing.T) {
	e := newEnv(t)
	h1, h2 := e.twoHosts()
	g1, g2 := e.container("g1"), e.container("g2")
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{peers: []*host{h2}}))
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{peers: []*host{h1}}))
	d1.waitReady()
	d2.waitReady()
	s1, s2 := e.socket(h1), e.socket(h2)
	e.mustVX("network", "create", "--socket", s1, "--subnet", "10.88.0.0/24", "green")
	e.eventually(readyTimeout, "h2 lists green", func() error {
		ns, err := e.cliNetworks(h2)
		if err != nil {
			return err
		}
		if _, ok := findNetwork(ns, "green"); !ok {
			return errors.New("not yet")
		}
		return nil
	})
	ep2 := e.cliAttach(h2, "green", g2, "g2")
	// g1 shows that h1 knows g2; then it leaves, so only h2 has an endpoint.
	e.cliAttach(h1, "green", g1, "g1")
	a2, _, _ := strings.Cut(ep2.Address, "/")
	e.mustPing(g1, a2)
	e.mustVX("detach", "--socket", s1, "--network", "green", "--name", "g1")
	e.waitDetached(h1, "g1")

	so, se, code := vx("network", "rm", "--socket", s1, "green")
	if code != exitConflict || !strings.Contains(se, "h2/g2") {
		t.Errorf("network rm green on h1 with g2 on h2: exit code %d, want %d naming h2/g2\n%s%s", code, exitConflict, so, se)
	}
	e.noStackTrace("vxwire network rm", so+se)
	e.mustPing(g2, ep2.Gateway)

	e.mustVX("detach", "--socket", s2, "--network", "green", "--name", "g2")
	e.waitDetached(h2, "g2")
	e.eventually(readyTimeout, "network rm green after the detach", func() error {
		so, se, code := vx("network", "rm", "--socket", s1, "green")
		switch code {
		case 0:
			return nil
		case exitConflict:
			return fmt.Errorf("exit code %d\n%s%s", code, so, se)
		}
		return permanent(fmt.Errorf("exit code %d\n%s%s", code, so, se))
	})
}
