package tests

// Path MTU across a router with a smaller link: no black holes.
//
//   PFX-h1                  PFX-r1                      PFX-r2                  PFX-h2
//   u1 198.18.1.1/24 ==== a 198.18.1.254 | m1 198.18.3.1/24 ==== m2 198.18.3.2 | b 198.18.2.254 ==== u2 198.18.2.1/24
//         MTU 1500               MTU 1500   MTU 1300 (middle link)   MTU 1300     MTU 1500              MTU 1500
//
// Both hosts see a 1500-byte underlay interface, so their networks get MTU
// 1450 (plain) and 1390 (encrypted); the path between them carries 1300.
// The routers forward with the kernel's rules: a datagram with DF that
// does not fit the middle link is dropped and answered with ICMP
// "fragmentation needed, mtu 1300".

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// middleMTU is the MTU of the link between the two routers.
const middleMTU = 1300

// routedHosts creates hosts h1 (198.18.1.1) and h2 (198.18.2.1) joined
// through two routers whose middle link has MTU middleMTU.
func (e *env) routedHosts() (h1, h2 *host) {
	e.t.Helper()
	h1 = &host{netns: e.newNS("h1"), id: "h1", link: e.prefix + "u1", addr: "198.18.1.1"}
	h2 = &host{netns: e.newNS("h2"), id: "h2", link: e.prefix + "u2", addr: "198.18.2.1"}
	r1, r2 := e.newNS("r1"), e.newNS("r2")
	veth := func(a *netns, an string, b *netns, bn string, mtu int) {
		m := strconv.Itoa(mtu)
		e.must("ip", "link", "add", an, "netns", a.name, "mtu", m, "type", "veth", "peer", "name", bn, "netns", b.name, "mtu", m)
	}
	veth(h1.netns, h1.link, r1, e.prefix+"a", 1500)
	veth(r1, e.prefix+"m1", r2, e.prefix+"m2", middleMTU)
	veth(r2, e.prefix+"b", h2.netns, h2.link, 1500)
	addr := func(n *netns, ifname, cidr string) {
		e.must("ip", "-n", n.name, "addr", "add", cidr, "dev", ifname)
		e.must("ip", "-n", n.name, "link", "set", ifname, "up")
	}
	addr(h1.netns, h1.link, "198.18.1.1/24")
	addr(r1, e.prefix+"a", "198.18.1.254/24")
	addr(r1, e.prefix+"m1", "198.18.3.1/24")
	addr(r2, e.prefix+"m2", "198.18.3.2/24")
	addr(r2, e.prefix+"b", "198.18.2.254/24")
	addr(h2.netns, h2.link, "198.18.2.1/24")
	e.must("ip", "-n", h1.name, "route", "add", "default", "via", "198.18.1.254")
	e.must("ip", "-n", h2.name, "route", "add", "default", "via", "198.18.2.254")
	e.must("ip", "-n", r1.name, "route", "add", "198.18.2.0/24", "via", "198.18.3.2")
	e.must("ip", "-n", r2.name, "route", "add", "198.18.1.0/24", "via", "198.18.3.1")
	for _, r := range []*netns{r1, r2} {
		e.sysctl(r, "net/ipv4/ip_forward", "1")
	}
	return h1, h2
}

// fragNeededRE matches what ping prints for an ICMP "fragmentation needed"
// from the gateway, or for the path MTU the container's kernel learnt
// from one.
var fragNeededRE = regexp.MustCompile(`From (\S+) icmp_seq=\d+ Frag needed and DF set \(mtu = (\d+)\)|local error: message too long, mtu=(\d+)`)

// mustFragNeeded sends DF pings of size bytes (IP) from c to ip until one
// is answered with "fragmentation needed" from gateway, and returns the
// MTU it carried. The first pings may vanish: the host learns the path
// from the router's answer to them.
func (e *env) mustFragNeeded(c *netns, ip, gateway string, size int) int {
	e.t.Helper()
	mtu := 0
	var seen []string
	e.eventually(reachTimeout, fmt.Sprintf("frag needed from %s for %d-byte pings to %s", gateway, size, ip), func() error {
		out, _ := e.in(c, "ping", "-M", "do", "-s", strconv.Itoa(size-28), "-c", "1", "-W", "1", ip)
		m := fragNeededRE.FindStringSubmatch(out)
		switch {
		case m == nil:
			return fmt.Errorf("no frag needed yet:\n%s", out)
		case m[1] != "" && m[1] != gateway:
			return permanent(fmt.Errorf("frag needed from %s, want the gateway %s:\n%s", m[1], gateway, out))
		case m[1] == "" && len(seen) == 0:
			// The kernel's own cache: only good after the gateway's
			// message was seen.
			return fmt.Errorf("local error before any frag needed was seen:\n%s", out)
		}
		seen = append(seen, out)
		mtu, _ = strconv.Atoi(m[2] + m[3])
		return nil
	})
	return mtu
}

// peerPathMTU is h's view of peer's path MTU through `vxwire peers --json`.
func (e *env) peerPathMTU(h *host, peer string) (int, error) {
	so, se, code := vx("peers", "--socket", e.socket(h), "--json")
	if code != 0 {
		return 0, fmt.Errorf("vxwire peers: exit code %d\n%s%s", code, so, se)
	}
	var ps []api.PeerStatus
	if err := json.Unmarshal([]byte(so), &ps); err != nil {
		return 0, permanent(fmt.Errorf("vxwire peers --json: %w\n%s", err, so))
	}
	for _, p := range ps {
		if p.Name == peer {
			return p.PathMTU, nil
		}
	}
	return 0, permanent(fmt.Errorf("no peer %s in\n%s", peer, so))
}

// checkPathMTU requires both hosts to show the middle link's MTU for each
// other in `vxwire peers`, in its JSON and in its table.
func (e *env) checkPathMTU(h1, h2 *host) {
	e.t.Helper()
	for _, p := range [][2]*host{{h1, h2}, {h2, h1}} {
		e.eventually(reachTimeout, p[0].id+" shows the path mtu to "+p[1].id, func() error {
			got, err := e.peerPathMTU(p[0], p[1].id)
			if err == nil && got != middleMTU {
				err = fmt.Errorf("path mtu %d, want %d", got, middleMTU)
			}
			return err
		})
	}
	table := e.mustVX("peers", "--socket", e.socket(h1))
	if !strings.Contains(table, "PATH MTU") || !regexp.MustCompile(`(?m)^h2\s+\S+\s+1300\s`).MatchString(table) {
		e.t.Fatalf("vxwire peers does not show path mtu 1300 for h2:\n%s", table)
	}
}

// TestPathMTUPlain: across a 1300-byte middle link, a 64 MiB transfer
// between containers of a plain network completes with equal SHA-256 both
// ways, a DF ping at the network's MTU (1450) gets "fragmentation needed"
// with mtu 1250 from the gateway, and `vxwire peers` shows path mtu 1300.
// Before this change the transfers completed too, but only because the
// host kernel fragmented every full-size outer datagram after the
// router's ICMP (each segment crossed as two fragments to reassemble),
// and the DF ping of 1450 bytes was answered instead of refused: DF was
// silently ignored and no "fragmentation needed" ever reached a container.
func TestPathMTUPlain(t *testing.T) {
	e := newEnv(t, "ping")
	h1, h2 := e.routedHosts()
	c1, c2 := e.container("c1"), e.container("c2")
	e.startDaemon(h1, e.writeConfig(h1, hostConf{
		peers: []*host{h2}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c1", ns: c1, addr: "10.77.0.10"}},
	})).waitReady("c1")
	e.startDaemon(h2, e.writeConfig(h2, hostConf{
		peers: []*host{h1}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c2", ns: c2, addr: "10.77.0.20"}},
	})).waitReady("c2")
	e.mustPing(c1, "10.77.0.20")
	if mtu := e.linkMTU(c1, "eth0"); mtu != 1450 {
		t.Fatalf("container mtu %d, want 1450 (the hosts' interfaces are 1500)", mtu)
	}

	// Cold: nobody knows the path yet when the transfer starts; h2
	// learns it from the router on the way. c1 only sends ACKs, so h1
	// and c1 are still cold for the DF ping that follows.
	e.transfer(c2, c1, "10.77.0.10", 64<<20, 3*time.Minute)
	if mtu := e.mustFragNeeded(c1, "10.77.0.20", "10.77.0.1", 1450); mtu > 1250 || mtu < 1200 {
		t.Fatalf("frag needed carries mtu %d, want 1250 (1300 - 50)", mtu)
	}
	e.transfer(c1, c2, "10.77.0.20", 64<<20, 3*time.Minute)
	if d := drops(e.mustStatus(h1), api.DropTooBig); d == 0 {
		t.Fatal("h1 counted no too_big drop")
	}
	e.checkPathMTU(h1, h2)
	// Packets that fit still go through with DF.
	if out, err := e.in(c1, "ping", "-M", "do", "-s", "1222", "-c", "2", "-W", "2", "10.77.0.20"); err != nil {
		t.Fatalf("DF ping of 1250 bytes: %v\n%s", err, out)
	}
}

// TestPathMTUEncrypted is TestPathMTUPlain for an encrypted network: the
// usable size is the path less 110 bytes and WireGuard's padding to 16
// bytes (1182), and the transfer crosses the router as WireGuard.
// Before this change the transfer stalled for good: once the kernel knew
// the path, wireguard-go's GSO sends of full-size packets failed with
// EMSGSIZE and were dropped, and nothing told the container.
func TestPathMTUEncrypted(t *testing.T) {
	e := newEnv(t, "ping", "wg")
	h1, h2 := e.routedHosts()
	k1, k2 := e.withKey(h1), e.withKey(h2)
	c1, c2 := e.container("c1"), e.container("c2")
	sec := encNetwork{netConf{name: "sec", vni: 300, subnet: "10.79.0.0/24", gateway: "10.79.0.1"}, true}
	e.startEnc(k1, encConf{peers: []*encHost{k2}, networks: []encNetwork{sec},
		endpoints: []epConf{{network: "sec", name: "c1", ns: c1, addr: "10.79.0.10"}}})
	e.startEnc(k2, encConf{peers: []*encHost{k1}, networks: []encNetwork{sec},
		endpoints: []epConf{{network: "sec", name: "c2", ns: c2, addr: "10.79.0.20"}}})
	e.mustPing(c1, "10.79.0.20")
	if mtu := e.linkMTU(c1, "eth0"); mtu != 1390 {
		t.Fatalf("container mtu %d, want 1390", mtu)
	}
	e.transfer(c2, c1, "10.79.0.10", 64<<20, 3*time.Minute) // cold, as in TestPathMTUPlain
	mtu := e.mustFragNeeded(c1, "10.79.0.20", "10.79.0.1", 1390)
	if mtu > 1190 || mtu < 1100 {
		t.Fatalf("frag needed carries mtu %d, want 1182 (1300 - 110, padding)", mtu)
	}
	e.transfer(c1, c2, "10.79.0.20", 64<<20, 3*time.Minute)
	e.checkPathMTU(h1, h2)
	if out, err := e.in(c1, "ping", "-M", "do", "-s", strconv.Itoa(mtu-28), "-c", "2", "-W", "2", "10.79.0.20"); err != nil {
		t.Fatalf("DF ping of %d bytes: %v\n%s", mtu, err, out)
	}
}
