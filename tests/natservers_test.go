package tests

// A laptop behind NAT names two servers. The servers run the address-block
// log between them and know the laptop by its WireGuard key alone; the
// laptop's endpoints have no configured address: its servers commit its
// address blocks for it, over TCP inside its tunnels.
//
//   PFX-h1 (server) PFX-u1 198.18.0.1/24 ─┐   PFX-nat
//                                          ├── PFX-br 198.18.0.254/24 (bridge of PFX-n0, PFX-n2)
//   PFX-h2 (server) PFX-u2 198.18.0.2/24 ─┘   PFX-n1 198.18.7.1/24 ==== PFX-l1 198.18.7.2/24 PFX-lap (laptop)
//                                              nftables: masquerade 198.18.7.0/24 out of PFX-br
//   c1 (blue, on h1)  c2 (blue, on h2)                                  c3 (blue), lapep (host endpoint)
//
// No endpoint has an address in any file: every one comes from a block.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// natServers is the topology above.
type natServers struct {
	h1, h2, lap *encHost
	c1, c2, c3  *netns
	nat         *netns
	br          string
	secret      string
}

func (e *env) natServers() *natServers {
	e.t.Helper()
	h1 := &host{netns: e.newNS("h1"), id: "h1", link: e.prefix + "u1", addr: "198.18.0.1"}
	h2 := &host{netns: e.newNS("h2"), id: "h2", link: e.prefix + "u2", addr: "198.18.0.2"}
	nat := e.newNS("nat")
	lap := &host{netns: e.newNS("lap"), id: "laptop", link: e.prefix + "l1", addr: "198.18.7.2"}
	br, n0, n1, n2 := e.prefix+"br", e.prefix+"n0", e.prefix+"n1", e.prefix+"n2"
	e.must("ip", "link", "add", h1.link, "netns", h1.name, "type", "veth", "peer", "name", n0, "netns", nat.name)
	e.must("ip", "link", "add", h2.link, "netns", h2.name, "type", "veth", "peer", "name", n2, "netns", nat.name)
	e.must("ip", "link", "add", lap.link, "netns", lap.name, "type", "veth", "peer", "name", n1, "netns", nat.name)
	e.must("ip", "-n", nat.name, "link", "add", br, "type", "bridge")
	for _, p := range []string{n0, n2} {
		e.must("ip", "-n", nat.name, "link", "set", p, "master", br)
	}
	e.must("ip", "-n", h1.name, "addr", "add", "198.18.0.1/24", "dev", h1.link)
	e.must("ip", "-n", h2.name, "addr", "add", "198.18.0.2/24", "dev", h2.link)
	e.must("ip", "-n", nat.name, "addr", "add", natAddr+"/24", "dev", br)
	e.must("ip", "-n", nat.name, "addr", "add", "198.18.7.1/24", "dev", n1)
	e.must("ip", "-n", lap.name, "addr", "add", "198.18.7.2/24", "dev", lap.link)
	for _, l := range [][2]string{{h1.name, h1.link}, {h2.name, h2.link}, {nat.name, br}, {nat.name, n0}, {nat.name, n1}, {nat.name, n2}, {lap.name, lap.link}} {
		e.must("ip", "-n", l[0], "link", "set", l[1], "up")
	}
	e.must("ip", "-n", lap.name, "route", "add", "default", "via", "198.18.7.1")
	e.sysctl(nat, "net/ipv4/ip_forward", "1")
	e.mustIn(nat, "nft", "add table ip nat; add chain ip nat post { type nat hook postrouting priority 100 ; }; add rule ip nat post ip saddr 198.18.7.0/24 oifname "+br+" masquerade")

	t := &natServers{h1: e.withKey(h1), h2: e.withKey(h2), lap: e.withKey(lap), nat: nat, br: br, secret: e.clusterSecret()}
	t.lap.tunnel = "100.82.9.2"
	t.c1, t.c2, t.c3 = e.container("c1"), e.container("c2"), e.container("c3")
	return t
}

// natServersBlue is the encrypted network every host of natServers has.
const natServersBlue = "\n[[network]]\nname = \"blue\"\nvni = 256\nsubnet = \"10.77.0.0/24\"\nencrypted = true\n"

func (e *env) natHead(h *encHost, rotate string) string {
	s := fmt.Sprintf("[host]\nname = %q\naddress = %q\nstate_dir = %q\napi_socket = %q\nprivate_key_file = %q\nwg_port = %d\nwg_name = %q\ntunnel_address = %q\nsecret_file = %q\n",
		h.id, h.addr, e.dir+"/"+h.id+"-state", e.socket(h.host), h.key.file, wgPort, h.wgName, h.tunnel, e.clusterSecret())
	if rotate != "" {
		s += fmt.Sprintf("rotate_every = %q\n", rotate)
	}
	return s
}

// natServerConf is server h's file: the other server as a peer, the laptop
// by its key alone when withLaptop, and container c without an address.
func (e *env) natServerConf(t *natServers, h, other *encHost, c *netns, name string, withLaptop bool, rotate string) string {
	s := e.natHead(h, rotate) +
		fmt.Sprintf("\n[[peer]]\nname = %q\naddress = %q\npublic_key = %q\nwg_port = %d\ntunnel_address = %q\n", other.id, other.addr, other.key.pub, wgPort, other.tunnel)
	if withLaptop {
		s += fmt.Sprintf("\n[[peer]]\nname = %q\npublic_key = %q\nwg_port = %d\ntunnel_address = %q\n", t.lap.id, t.lap.key.pub, wgPort, t.lap.tunnel)
	}
	return s + natServersBlue + fmt.Sprintf("\n[[endpoint]]\nnetwork = \"blue\"\nname = %q\nnetns = %q\n", name, c.path())
}

// natLaptopConf is the laptop's file: both servers, a container c3 and a
// host endpoint lapep, neither with an address.
func (e *env) natLaptopConf(t *natServers) string {
	s := e.natHead(t.lap, "") + "behind_nat = true\n"
	for _, h := range []*encHost{t.h1, t.h2} {
		s += fmt.Sprintf("\n[[peer]]\nname = %q\naddress = %q\npublic_key = %q\nwg_port = %d\ntunnel_address = %q\nkeepalive = \"25s\"\n", h.id, h.addr, h.key.pub, wgPort, h.tunnel)
	}
	return s + natServersBlue +
		fmt.Sprintf("\n[[endpoint]]\nnetwork = \"blue\"\nname = \"c3\"\nnetns = %q\n", t.c3.path()) +
		"\n[[endpoint]]\nnetwork = \"blue\"\nname = \"lapep\"\n"
}

// epAddress waits until h lists endpoint name and returns its address.
func (e *env) epAddress(h *host, name string) string {
	e.t.Helper()
	var addr string
	e.eventually(allocTimeoutE2E, name+" has an address on "+h.id, func() error {
		st, err := e.status(h)
		if err != nil {
			return err
		}
		for _, ep := range st.Endpoints {
			if ep.Name == name && ep.Address != "" {
				addr, _, _ = strings.Cut(ep.Address, "/")
				return nil
			}
		}
		return fmt.Errorf("%s not listed", name)
	})
	return addr
}

// allocTimeoutE2E bounds an allocation that waits for a block.
const allocTimeoutE2E = 60 * time.Second

// logBlock is one address block of the log.
type logBlock struct {
	Network string       `json:"network"`
	Prefix  netip.Prefix `json:"prefix"`
	Host    string       `json:"host"`
}

// logBlocks returns the blocks of the log as server h last applied them.
func (e *env) logBlocks(h *encHost) ([]logBlock, error) {
	b, err := os.ReadFile(filepath.Join(e.dir, h.id+"-state", "raft", "blocks.json"))
	if err != nil {
		return nil, err
	}
	var st struct {
		Blocks []logBlock `json:"blocks"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	return st.Blocks, nil
}

// logBlock returns the block of network blue holding ip in server h's
// log, and its holder.
func (e *env) logBlock(h *encHost, ip string) (netip.Prefix, string, error) {
	blocks, err := e.logBlocks(h)
	if err != nil {
		return netip.Prefix{}, "", err
	}
	a := netip.MustParseAddr(ip)
	for _, bl := range blocks {
		if bl.Network == "blue" && bl.Prefix.Contains(a) {
			return bl.Prefix, bl.Host, nil
		}
	}
	return netip.Prefix{}, "", fmt.Errorf("no block of %s holds %s", h.id, ip)
}

// checkNATServers checks names and reachability both ways between the
// laptop's endpoints and a container on each server, and that every
// laptop address lies in a block the log gives the laptop.
func (e *env) checkNATServers(t *natServers) {
	e.t.Helper()
	a1, a2 := e.epAddress(t.h1.host, "c1"), e.epAddress(t.h2.host, "c2")
	a3, lapep := e.epAddress(t.lap.host, "c3"), e.epAddress(t.lap.host, "lapep")
	e.t.Logf("addresses: c1 %s (h1), c2 %s (h2), c3 %s and lapep %s (laptop)", a1, a2, a3, lapep)
	for _, ip := range []string{a3, lapep} {
		for _, h := range []*encHost{t.h1, t.h2} {
			e.eventually(30*time.Second, "the log of "+h.id+" holds "+ip+" for the laptop", func() error {
				p, holder, err := e.logBlock(h, ip)
				if err == nil && holder != "laptop" {
					return permanent(fmt.Errorf("%s lies in block %s of %s, not the laptop's", ip, p, holder))
				}
				return err
			})
		}
	}
	e.resolves(t.c3, "c1.blue", a1)
	e.resolves(t.c3, "c2.blue", a2)
	e.resolves(t.c1, "c3.blue", a3)
	e.resolves(t.c2, "lapep.blue", lapep)
	for _, p := range [][2]*netns{{t.c3, t.c1}, {t.c3, t.c2}} {
		dst := map[*netns]string{t.c1: a1, t.c2: a2}[p[1]]
		e.eventually(30*time.Second, p[0].name+" pings "+dst, func() error {
			_, err := e.in(p[0], "ping", "-c", "1", "-W", "1", dst)
			return err
		})
	}
	e.eventually(30*time.Second, "c1 and c2 ping the laptop's host endpoint", func() error {
		for _, c := range []*netns{t.c1, t.c2} {
			if _, err := e.in(c, "ping", "-c", "1", "-W", "1", lapep); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestNATLaptopTwoServersIPAM: a laptop behind NAT names two servers; its
// container and its host endpoint get addresses from a block the servers'
// log gives the laptop, and it resolves and reaches a container on each
// server, which resolve and reach it.
func TestNATLaptopTwoServersIPAM(t *testing.T) {
	e := newNetEnv(t, "dig", "nft")
	n := e.natServers()
	d1 := e.startDaemon(n.h1.host, e.file("h1.toml", e.natServerConf(n, n.h1, n.h2, n.c1, "c1", true, "")))
	d2 := e.startDaemon(n.h2.host, e.file("h2.toml", e.natServerConf(n, n.h2, n.h1, n.c2, "c2", true, "")))
	dl := e.startDaemon(n.lap.host, e.file("laptop.toml", e.natLaptopConf(n)))
	d1.waitReady("c1")
	d2.waitReady("c2")
	dl.waitReady("c3", "lapep")
	e.checkNATServers(n)
}

// TestNATLaptopReloadAddsPeer: the servers start without the laptop; a
// SIGHUP gives it to them, and the laptop then joins without a restart of
// either server: its gossip runs through the tunnels, names resolve both
// ways and its addresses come from the log.
func TestNATLaptopReloadAddsPeer(t *testing.T) {
	e := newNetEnv(t, "dig", "nft")
	n := e.natServers()
	f1 := e.file("h1.toml", e.natServerConf(n, n.h1, n.h2, n.c1, "c1", false, ""))
	f2 := e.file("h2.toml", e.natServerConf(n, n.h2, n.h1, n.c2, "c2", false, ""))
	d1, d2 := e.startDaemon(n.h1.host, f1), e.startDaemon(n.h2.host, f2)
	d1.waitReady("c1")
	d2.waitReady("c2")
	e.resolves(n.c1, "c2.blue", e.epAddress(n.h2.host, "c2"))

	for _, r := range []struct {
		d        *daemon
		file     string
		h, other *encHost
		c        *netns
		name     string
	}{{d1, f1, n.h1, n.h2, n.c1, "c1"}, {d2, f2, n.h2, n.h1, n.c2, "c2"}} {
		if err := os.WriteFile(r.file, []byte(e.natServerConf(n, r.h, r.other, r.c, r.name, true, "")), 0o600); err != nil {
			t.Fatal(err)
		}
		r.d.signal(syscall.SIGHUP)
	}
	for _, h := range []*encHost{n.h1, n.h2} {
		e.eventually(readyTimeout, h.id+" has the laptop as a peer after the reload", func() error {
			_, err := wgPeer(e.mustStatus(h.host), "laptop")
			return err
		})
	}
	dl := e.startDaemon(n.lap.host, e.file("laptop.toml", e.natLaptopConf(n)))
	dl.waitReady("c3", "lapep")
	e.checkNATServers(n)
	if !d1.running() || !d2.running() {
		t.Fatal("a server stopped")
	}
}
