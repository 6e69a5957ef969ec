package tests

//  PFX-ca 10.79.0.10                         PFX-cb 10.79.0.20/24
//    eth0 (TAP, MTU 1390)                      eth0 (veth, MTU 1390)
//        |                                         |
//  vxwire up (PFX-h1)                        PFX-k0 - br0 - vx0 (kernel VXLAN, VNI 4000, MTU 1390,
//  rotate_every = "0"                                  local 100.82.0.2 remote 100.82.0.1 dev PFX-wg)
//  tunnel 100.82.0.1                         PFX-wg: Debian wireguard-go -f, 100.82.0.2/24, MTU 1440
//                                                    peer = h1's key, endpoint 198.18.0.1:51820,
//                                                    allowed-ips 100.82.0.1/32
//  PFX-u1 198.18.0.1/24 ============ veth ============ PFX-u2 198.18.0.2/24
//
//  Nothing of vxwire runs on h2: it is a stock host joining network sec.

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// stockWireGuard turns h into a host that joins network sec without vxwire:
// Debian's wireguard-go (interface PFX-wg, key from wg genkey, listening
// on wgPort, peer = vx with its tunnel address as allowed-ips), kernel
// VXLAN bound to that interface, and container c (address addr/24) on a
// bridge with it. It returns h's identity as vx's config must list it.
func (e *env) stockWireGuard(h *host, vx *encHost, c *netns, addr string) *encHost {
	e.t.Helper()
	s := &encHost{host: h, key: e.genKey("wg", h.id), wgName: e.prefix + "wg", tunnel: derivedTunnel(h.addr)}
	sock := "/var/run/wireguard/" + s.wgName + ".sock"
	e.t.Cleanup(func() { os.Remove(sock) }) // left behind only if wireguard-go was killed
	wgGo := e.startProc(h.netns, "wireguard-go", "wireguard-go", "-f", s.wgName)
	e.eventually(readyTimeout, "wireguard-go serving "+sock, func() error {
		if !wgGo.running() {
			return permanent(fmt.Errorf("wireguard-go exited; see its log %s", wgGo.log))
		}
		_, err := os.Stat(sock)
		return err
	})
	ipn := func(args ...string) { e.t.Helper(); e.must("ip", append([]string{"-n", h.name}, args...)...) }
	e.mustIn(h.netns, "wg", "set", s.wgName, "listen-port", fmt.Sprint(wgPort), "private-key", s.key.file,
		"peer", vx.key.pub, "endpoint", fmt.Sprintf("%s:%d", vx.addr, wgPort), "allowed-ips", vx.tunnel+"/32")
	// The /24 puts vx's tunnel address on link; the MTU leaves room for
	// WireGuard's 60 bytes on the 1500-byte underlay, as vxwire does.
	ipn("addr", "add", s.tunnel+"/24", "dev", s.wgName)
	ipn("link", "set", s.wgName, "mtu", fmt.Sprint(wgInnerMTU), "up")
	// The container's TCP/UDP checksums are left to offload (veth keeps
	// them partial). They are filled before the packet leaves this host as
	// long as the wg TUN device offers no transmit checksum offload: the
	// kernel then completes them before wireguard-go reads the packet.
	// Debian's wireguard-go sets no offloads; a build that does (TUN
	// IFF_VNET_HDR) completes them itself, but turn it off to stay on the
	// path this test means to check.
	if out := e.mustIn(h.netns, "ethtool", "-k", s.wgName); !strings.Contains(out, "tx-checksumming: off") {
		e.t.Logf("%s offers transmit checksum offload; turning it off", s.wgName)
		e.mustIn(h.netns, "ethtool", "-K", s.wgName, "tx", "off")
	}
	ipn("link", "add", "vx0", "type", "vxlan", "id", fmt.Sprint(secNet.vni), "dstport", "4789",
		"local", s.tunnel, "remote", vx.tunnel, "dev", s.wgName)
	ipn("link", "add", "br0", "type", "bridge")
	ipn("link", "set", "vx0", "mtu", fmt.Sprint(encMTU), "master", "br0", "up")
	hostEnd := e.prefix + "k0"
	e.must("ip", "link", "add", hostEnd, "netns", h.name, "mtu", fmt.Sprint(encMTU), "type", "veth",
		"peer", "name", "eth0", "netns", c.name, "mtu", fmt.Sprint(encMTU))
	ipn("link", "set", hostEnd, "master", "br0", "up")
	ipn("link", "set", "br0", "up")
	e.must("ip", "-n", c.name, "addr", "add", addr+"/24", "dev", "eth0")
	e.must("ip", "-n", c.name, "link", "set", "eth0", "up")
	return s
}

// TestWireGuardInterop joins a vxwire host and a stock host (Debian's
// wireguard-go with the kernel's VXLAN over it) in one encrypted network:
// the formats are standard end to end, so ICMP and TCP must pass both
// ways, and each side's WireGuard must show the other's handshake.
func TestWireGuardInterop(t *testing.T) {
	e := newEnv(t, "wg", "wireguard-go", "ethtool")
	u1, u2 := e.twoHosts()
	ca, cb := e.container("ca"), e.container("cb")
	h1 := e.withKey(u1)
	h2 := e.stockWireGuard(u2, h1, cb, "10.79.0.20")
	e.startEnc(h1, encConf{
		peers: []*encHost{h2}, networks: []encNetwork{{secNet, true}}, rotate: "0",
		endpoints: []epConf{{network: "sec", name: "ca", ns: ca, addr: "10.79.0.10"}},
	})

	e.mustPing(ca, "10.79.0.20")
	e.mustPing(cb, "10.79.0.10")
	e.transfer(ca, cb, "10.79.0.20", 16<<20, time.Minute)
	e.transfer(cb, ca, "10.79.0.10", 16<<20, time.Minute)

	w := e.waitHandshake(h1, h2.id)
	if w.KeyEpoch != 0 || w.PublicKey != h2.key.pub {
		t.Errorf("status of h1, peer h2: %+v; want public_key %s and key_epoch 0 (rotation off)", w, h2.key.pub)
	}
	_, _, peers, err := e.wgDump(u2.netns, h2.wgName)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := peers[h1.key.pub]; !ok || p.handshake.IsZero() || p.rx < 16<<20 || p.tx < 16<<20 {
		t.Errorf("wireguard-go on h2: peer h1 %+v; want a handshake and 16 MiB each way", p)
	}
	out, _ := e.in(u2.netns, "wg", "show", h2.wgName)
	t.Logf("wg show %s (Debian wireguard-go):\n%s", h2.wgName, strings.TrimSpace(out))
}
