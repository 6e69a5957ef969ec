package tests

// A laptop behind NAT joins an encrypted network. Its server names it by
// its WireGuard key alone; the laptop names the server, keeps its NAT
// mapping open with a persistent keepalive, and gossips inside WireGuard.
//
//   PFX-h1 (server)                PFX-nat                             PFX-lap (laptop)
//   PFX-u1 198.18.0.1/24 ==== PFX-n0 198.18.0.254/24
//                             PFX-n1 198.18.7.1/24 ==== PFX-l1 198.18.7.2/24, default via .1
//                             nftables: masquerade out of PFX-n0
//   c1 10.77.0.10 (blue)                                            c2 10.77.0.20 (blue)
//
// h1 has no route to 198.18.7.0/24: all it ever sees of the laptop is the
// NAT's address.

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// natLaptop is the topology above, with the daemons running.
type natLaptop struct {
	h1, lap       *encHost
	c1, c2        *netns
	nat           *netns
	n0            string // the NAT's interface towards h1
	d1, dl        *daemon
	laptopTunnel  string
	serverTunnel  string
	natUnderlayIP string
}

const natAddr = "198.18.0.254"

func (e *env) natLaptop() *natLaptop {
	e.t.Helper()
	h1 := &host{netns: e.newNS("h1"), id: "h1", link: e.prefix + "u1", addr: "198.18.0.1"}
	nat := e.newNS("nat")
	lap := &host{netns: e.newNS("lap"), id: "laptop", link: e.prefix + "l1", addr: "198.18.7.2"}
	n0, n1 := e.prefix+"n0", e.prefix+"n1"
	e.must("ip", "link", "add", h1.link, "netns", h1.name, "type", "veth", "peer", "name", n0, "netns", nat.name)
	e.must("ip", "link", "add", lap.link, "netns", lap.name, "type", "veth", "peer", "name", n1, "netns", nat.name)
	e.must("ip", "-n", h1.name, "addr", "add", "198.18.0.1/24", "dev", h1.link)
	e.must("ip", "-n", nat.name, "addr", "add", natAddr+"/24", "dev", n0)
	e.must("ip", "-n", nat.name, "addr", "add", "198.18.7.1/24", "dev", n1)
	e.must("ip", "-n", lap.name, "addr", "add", "198.18.7.2/24", "dev", lap.link)
	for _, l := range [][2]string{{h1.name, h1.link}, {nat.name, n0}, {nat.name, n1}, {lap.name, lap.link}} {
		e.must("ip", "-n", l[0], "link", "set", l[1], "up")
	}
	e.must("ip", "-n", lap.name, "route", "add", "default", "via", "198.18.7.1")
	e.sysctl(nat, "net/ipv4/ip_forward", "1")
	e.mustIn(nat, "nft", "add table ip nat; add chain ip nat post { type nat hook postrouting priority 100 ; }; add rule ip nat post oifname "+n0+" masquerade")

	t := &natLaptop{h1: e.withKey(h1), lap: e.withKey(lap), n0: n0, nat: nat, natUnderlayIP: natAddr}
	t.lap.tunnel = "100.82.9.2"
	t.laptopTunnel, t.serverTunnel = t.lap.tunnel, t.h1.tunnel
	t.c1, t.c2 = e.container("c1"), e.container("c2")
	return t
}

// configs returns the server's and the laptop's config files.
func (e *env) natConfigs(t *natLaptop) (server, laptop string) {
	secret := e.clusterSecret()
	blue := "\n[[network]]\nname = \"blue\"\nvni = 256\nsubnet = \"10.77.0.0/24\"\nencrypted = true\n"
	head := func(h *encHost) string {
		return fmt.Sprintf("[host]\nname = %q\naddress = %q\nstate_dir = %q\napi_socket = %q\nprivate_key_file = %q\nwg_port = %d\nwg_name = %q\ntunnel_address = %q\nsecret_file = %q\n",
			h.id, h.addr, e.dir+"/"+h.id+"-state", e.socket(h.host), h.key.file, wgPort, h.wgName, h.tunnel, secret)
	}
	ep := func(name string, ns *netns, addr string) string {
		return fmt.Sprintf("\n[[endpoint]]\nnetwork = \"blue\"\nname = %q\nnetns = %q\naddress = %q\n", name, ns.path(), addr)
	}
	server = head(t.h1) +
		fmt.Sprintf("\n[[peer]]\nname = %q\npublic_key = %q\nwg_port = %d\ntunnel_address = %q\n", t.lap.id, t.lap.key.pub, wgPort, t.lap.tunnel) +
		blue + ep("c1", t.c1, "10.77.0.10")
	laptop = head(t.lap) + "behind_nat = true\n" +
		fmt.Sprintf("\n[[peer]]\nname = %q\naddress = %q\npublic_key = %q\nwg_port = %d\ntunnel_address = %q\nkeepalive = \"25s\"\n", t.h1.id, t.h1.addr, t.h1.key.pub, wgPort, t.h1.tunnel) +
		blue + ep("c2", t.c2, "10.77.0.20")
	return server, laptop
}

func (e *env) startNATLaptop() *natLaptop {
	e.t.Helper()
	t := e.natLaptop()
	server, laptop := e.natConfigs(t)
	t.d1 = e.startDaemon(t.h1.host, e.file("h1.toml", server))
	t.d1.waitReady("c1")
	t.dl = e.startDaemon(t.lap.host, e.file("laptop.toml", laptop))
	t.dl.waitReady("c2")
	return t
}

// resolves waits until name resolves to want in container ns, through the
// overlay DNS on the gateway.
func (e *env) resolves(ns *netns, name, want string) {
	e.t.Helper()
	e.eventually(60*time.Second, name+" in "+ns.name, func() error {
		return e.resolvesTo(ns, blue.gateway, name, want)
	})
}

// TestNATLaptopJoinsEncrypted: names resolve both ways, the containers
// ping each other, the server learnt the laptop's endpoint (the NAT's
// address) from its handshake, and the server's underlay carries nothing
// of the laptop's but WireGuard.
func TestNATLaptopJoinsEncrypted(t *testing.T) {
	e := newNetEnv(t, "dig", "tshark", "nft")
	n := e.startNATLaptop()
	capt := e.startCapture(n.h1.netns, n.h1.link, "ip and host "+natAddr)

	e.resolves(n.c2, "c1.blue", "10.77.0.10")
	e.resolves(n.c1, "c2.blue", "10.77.0.20")
	e.eventually(30*time.Second, "c2 pings c1", func() error {
		_, err := e.in(n.c2, "ping", "-c", "1", "-W", "1", "10.77.0.10")
		return err
	})
	e.mustIn(n.c1, "ping", "-c", "1", "-W", "2", "10.77.0.20")

	st := e.mustStatus(n.h1.host)
	p, err := wgPeer(st, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.Endpoint, natAddr+":") {
		t.Fatalf("server's endpoint for the laptop = %q, want the NAT's address %s", p.Endpoint, natAddr)
	}

	rows := capt.captureUntil("WireGuard from the NAT", func(rows [][]string) bool { return len(rows) > 10 },
		"ip.src", "ip.dst", "udp.srcport", "udp.dstport", "ip.proto")
	for _, r := range rows {
		if r[4] != "17" || (r[2] != fmt.Sprint(wgPort) && r[3] != fmt.Sprint(wgPort)) {
			t.Fatalf("non-WireGuard packet between the server and the NAT: %q", r)
		}
	}
	t.Logf("%d packets between the server and the NAT, all WireGuard on port %d", len(rows), wgPort)
}

// TestNATLaptopRootless: the same laptop behind NAT, its daemon run by an
// ordinary user without any capability, joins with a host endpoint
// without a configured address: the endpoint gets one from a block the
// server's log gives the laptop, the laptop lists c1 from gossip, and c1
// resolves and pings the laptop's endpoint by name.
func TestNATLaptopRootless(t *testing.T) {
	e := newNetEnv(t, "dig", "nft", "setpriv", "useradd")
	u := e.newUser()
	n := e.natLaptop()
	n.lap.key = u.genKey(e, "lap")
	server, _ := e.natConfigs(n)
	d1 := e.startDaemon(n.h1.host, e.file("h1.toml", server))
	d1.waitReady("c1")

	secret, err := os.ReadFile(e.clusterSecret())
	if err != nil {
		t.Fatal(err)
	}
	laptop := fmt.Sprintf("[host]\nname = %q\naddress = %q\nprivate_key_file = %q\nwg_name = %q\ntunnel_address = %q\nsecret_file = %q\nbehind_nat = true\n",
		n.lap.id, n.lap.addr, n.lap.key.file, e.prefix+"wl", n.lap.tunnel, u.file(e, "cluster.secret", string(secret))) +
		fmt.Sprintf("\n[[peer]]\nname = %q\naddress = %q\npublic_key = %q\ntunnel_address = %q\nkeepalive = \"25s\"\n", n.h1.id, n.h1.addr, n.h1.key.pub, n.h1.tunnel) +
		"\n[[network]]\nname = \"blue\"\nvni = 256\nsubnet = \"10.77.0.0/24\"\nencrypted = true\n" +
		"\n[[endpoint]]\nnetwork = \"blue\"\nname = \"lapep\"\n"
	e.startRootless(u, n.lap.host, u.file(e, "laptop.toml", laptop))

	e.waitLapSees(u, n.lap.host, "blue", "c1", "h1", "10.77.0.10")
	// The host endpoint has no configured address: it gets one from a
	// block the server's log gives the laptop.
	var lapep string
	e.eventually(60*time.Second, "lapep has an address", func() error {
		st, err := e.userStatus(u, n.lap.host)
		if err != nil {
			return err
		}
		for _, ep := range st.Endpoints {
			if ep.Name == "lapep" && ep.Address != "" {
				lapep, _, _ = strings.Cut(ep.Address, "/")
				return nil
			}
		}
		return fmt.Errorf("lapep not listed")
	})
	e.eventually(30*time.Second, "the server's log holds "+lapep+" for the laptop", func() error {
		p, holder, err := e.logBlock(n.h1, lapep)
		if err == nil && holder != "laptop" {
			return permanent(fmt.Errorf("%s lies in block %s of %s", lapep, p, holder))
		}
		return err
	})
	e.resolves(n.c1, "lapep.blue", lapep)
	e.eventually(30*time.Second, "c1 pings the laptop's endpoint", func() error {
		_, err := e.in(n.c1, "ping", "-c", "1", "-W", "1", lapep)
		return err
	})
}
