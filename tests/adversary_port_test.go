package tests

//  PFX-a 10.77.0.10 (attacker)   PFX-v 10.77.0.11 (victim)        PFX-c2 10.77.0.20
//    eth0 (TAP) <- AF_PACKET        eth0 (TAP)                       eth0 (TAP)
//         \                         /                                  |
//          vxwire up (PFX-h1), blue                            vxwire up (PFX-h2), blue
//  PFX-u1 198.18.0.1/24 ================== veth ================== PFX-u2 198.18.0.2/24
//
// The attacker is root in its container: it writes whole Ethernet frames
// to its eth0 through a raw AF_PACKET socket, with its own MAC (vxwire
// already drops others) but forged contents.

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"

	"github.com/vxwire/vxwire/internal/api"
)

// portTopo is the topology drawn above.
type portTopo struct {
	h1, h2   *host
	a, v, c2 *netns
	d1, d2   *daemon
}

func (e *env) portTopo() portTopo { return e.portTopoWith("") }

// portTopoWith builds the topology drawn above, with h1Extra added to
// h1's [host] table.
func (e *env) portTopoWith(h1Extra string) portTopo {
	e.t.Helper()
	var p portTopo
	p.h1, p.h2 = e.twoHosts()
	p.a, p.v, p.c2 = e.container("a"), e.container("v"), e.container("c2")
	c1 := e.render(p.h1, hostConf{
		peers: []*host{p.h2}, networks: []netConf{blue},
		endpoints: []epConf{
			{network: "blue", name: "a", ns: p.a, addr: "10.77.0.10"},
			{network: "blue", name: "v", ns: p.v, addr: "10.77.0.11"},
		},
	})
	p.d1 = e.startDaemon(p.h1, e.file(p.h1.id+".toml", strings.Replace(c1, "[host]\n", "[host]\n"+h1Extra, 1)))
	p.d2 = e.startDaemon(p.h2, e.writeConfig(p.h2, hostConf{
		peers: []*host{p.h1}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c2", ns: p.c2, addr: "10.77.0.20"}},
	}))
	p.d1.waitReady("a", "v")
	p.d2.waitReady("c2")
	return p
}

// rawSocket is an AF_PACKET socket bound to an interface of a container:
// what a container's root uses to write arbitrary frames.
type rawSocket struct {
	fd      int
	ifindex int
}

// rawSocket opens a raw socket on ifname inside n; cleanup closes it.
func (e *env) rawSocket(n *netns, ifname string) *rawSocket {
	e.t.Helper()
	s := &rawSocket{fd: -1}
	err := ns.WithNetNSPath(n.path(), func(ns.NetNS) error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		s.ifindex = ifc.Index
		s.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		e.t.Fatalf("raw socket on %s in %s: %v", ifname, n.name, err)
	}
	e.t.Cleanup(func() { unix.Close(s.fd) })
	return s
}

// send writes frame, a whole Ethernet frame, to the interface.
func (s *rawSocket) send(frame []byte) error {
	// sll_protocol is in network byte order.
	proto := uint16(frame[12]) | uint16(frame[13])<<8
	return unix.Sendto(s.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: s.ifindex, Protocol: proto, Halen: 6})
}

func (e *env) mustSend(s *rawSocket, frame []byte) {
	e.t.Helper()
	if err := s.send(frame); err != nil {
		e.t.Fatalf("raw send: %v", err)
	}
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// arpFrame returns an Ethernet/IPv4 ARP packet of op (1 request, 2 reply)
// from src to dst, saying that spa is at sha, for tpa at tha.
func arpFrame(op uint16, dst, src, sha net.HardwareAddr, spa string, tha net.HardwareAddr, tpa string) []byte {
	b := make([]byte, 0, 60)
	b = append(b, dst...)
	b = append(b, src...)
	b = append(b, 0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, byte(op>>8), byte(op))
	b = append(b, sha...)
	b = append(b, netip.MustParseAddr(spa).AsSlice()...)
	b = append(b, tha...)
	b = append(b, netip.MustParseAddr(tpa).AsSlice()...)
	return append(b, make([]byte, 60-len(b))...)
}

// dropDelta waits until h's host counter of reason has grown by at least
// n since before, and returns the status it saw.
func (e *env) dropDelta(h *host, before api.Status, reason string, n uint64) api.Status {
	e.t.Helper()
	var st api.Status
	e.eventually(readyTimeout, fmt.Sprintf("%s drops on %s grow by %d", reason, h.id, n), func() error {
		var err error
		if st, err = e.status(h); err != nil {
			return err
		}
		if got := drops(st, reason) - drops(before, reason); got < n {
			return fmt.Errorf("grew by %d; drops now %v", got, st.Counters.Drops)
		}
		return nil
	})
	return st
}

// TestAdversarySpoofedIPv4Source sends UDP from the attacker's container
// with a forged source address, another container's and one of nobody's.
// Before this fix vxwire checked only the source MAC, so both reached c2
// on the other host and its answers went to the forged address. Now they
// are dropped at the attacker's port and counted as spoofed_ip, while the
// same datagram with the attacker's own address, through the same socket,
// arrives.
func TestAdversarySpoofedIPv4Source(t *testing.T) {
	e := newEnv(t)
	p := e.portTopo()
	e.mustPing(p.a, "10.77.0.20")
	inbox := e.listenUDP(p.c2, "10.77.0.20", 7002)
	raw := e.rawSocket(p.a, "eth0")
	ma, mc2 := mac(e.linkMAC(p.a, "eth0")), mac(e.linkMAC(p.c2, "eth0"))

	// The control: the attacker's own address gets through.
	own := e.marker("own-source")
	e.eventually(reachTimeout, "datagram with the container's own source arrives", func() error {
		e.mustSend(raw, udpFrame(mc2, ma, "10.77.0.10", "10.77.0.20", 4444, 7002, own))
		b, err := inbox.next(time.Second)
		if err != nil {
			return err
		}
		if string(b) != string(own) {
			return fmt.Errorf("got %q", b)
		}
		return nil
	})

	before := e.mustStatus(p.h1)
	forged := e.marker("forged-source")
	for _, src := range []string{"10.77.0.11", "10.77.0.99", "198.18.0.2"} {
		for range 5 {
			e.mustSend(raw, udpFrame(mc2, ma, src, "10.77.0.20", 4444, 7002, forged))
		}
	}
	// The control datagram is sent after the forged ones: once it is in,
	// a forged one would have been in before it.
	e.mustSend(raw, udpFrame(mc2, ma, "10.77.0.10", "10.77.0.20", 4444, 7002, own))
	for {
		b, err := inbox.next(readyTimeout)
		if err != nil {
			t.Fatalf("the control datagram after the forged ones did not arrive: %v", err)
		}
		if string(b) == string(forged) {
			t.Fatal("a datagram with a forged source address reached c2")
		}
		if string(b) == string(own) {
			break
		}
	}
	e.dropDelta(p.h1, before, api.DropSpoofedIP, 15)
}

// TestAdversaryARPPoisoning answers ARP from the attacker's container for
// the gateway's address and for another container's, to the victim on
// the same host. The victim accepts unsolicited ARP (arp_accept = 1), the
// most gullible a neighbour can be. Before this fix vxwire checked only
// the Ethernet source MAC, so the victim's neighbour table sent its
// traffic for the gateway and for c2 to the attacker. Now such ARP is
// dropped and counted as spoofed_arp, while an ARP reply about the
// attacker's own address, through the same socket, is accepted.
func TestAdversaryARPPoisoning(t *testing.T) {
	e := newEnv(t)
	p := e.portTopo()
	e.mustPing(p.v, "10.77.0.20")
	e.mustPing(p.v, "10.77.0.1")
	e.sysctl(p.v, "net/ipv4/conf/all/arp_accept", "1")
	raw := e.rawSocket(p.a, "eth0")
	ma, mv := e.linkMAC(p.a, "eth0"), mac(e.linkMAC(p.v, "eth0"))
	neigh := func(ip string) string { return e.mustIn(p.v, "ip", "neigh", "show", ip) }

	before := e.mustStatus(p.h1)
	e.must("ip", "-n", p.v.name, "neigh", "flush", "all")
	bcast := mac("ff:ff:ff:ff:ff:ff")
	attacks := [][]byte{
		arpFrame(2, mv, mac(ma), mac(ma), "10.77.0.1", mv, "10.77.0.11"),                         // gateway is-at attacker
		arpFrame(2, mv, mac(ma), mac(ma), "10.77.0.20", mv, "10.77.0.11"),                        // c2 is-at attacker
		arpFrame(1, bcast, mac(ma), mac(ma), "10.77.0.1", mac("00:00:00:00:00:00"), "10.77.0.1"), // gratuitous, as the gateway
		arpFrame(2, mv, mac(ma), mac("02:76:0a:4d:00:01"), "10.77.0.10", mv, "10.77.0.11"),       // sender MAC of the gateway
	}
	for range 5 {
		for _, f := range attacks {
			e.mustSend(raw, f)
		}
	}
	// The control, sent after the attacks through the same socket: the
	// victim learns the attacker's own address from an unsolicited reply.
	// Once it has, an attack that got through would have been learned too.
	e.eventually(reachTimeout, "victim learns 10.77.0.10 from the attacker's reply", func() error {
		e.mustSend(raw, arpFrame(2, mv, mac(ma), mac(ma), "10.77.0.10", mv, "10.77.0.11"))
		if out := neigh("10.77.0.10"); !strings.Contains(out, ma) {
			return fmt.Errorf("neighbour entry: %q", out)
		}
		return nil
	})
	for _, ip := range []string{"10.77.0.1", "10.77.0.20"} {
		if out := neigh(ip); strings.Contains(out, ma) {
			t.Fatalf("victim's neighbour table is poisoned: %s", out)
		}
	}
	e.dropDelta(p.h1, before, api.DropSpoofedARP, uint64(5*len(attacks)))
	e.mustPing(p.v, "10.77.0.20")
	e.mustPing(p.v, "10.77.0.1")
}

// TestAdversaryForeignEtherTypes sends an IPv6 frame, an 802.1Q-tagged
// and an 802.1ad-tagged IPv4 frame from the attacker's container. The
// overlay carries IPv4 and ARP only; before this fix the others were
// switched and flooded to every peer like any frame (a tagged frame
// reaches whatever VLAN a receiver's stack decodes). Now they are dropped
// and counted as ethertype, and a plain IPv4 frame from the same socket
// arrives.
func TestAdversaryForeignEtherTypes(t *testing.T) {
	e := newEnv(t)
	p := e.portTopo()
	e.mustPing(p.a, "10.77.0.20")
	inbox := e.listenUDP(p.c2, "10.77.0.20", 7002)
	raw := e.rawSocket(p.a, "eth0")
	ma, mc2 := mac(e.linkMAC(p.a, "eth0")), mac(e.linkMAC(p.c2, "eth0"))
	plain := udpFrame(mc2, ma, "10.77.0.10", "10.77.0.20", 4444, 7002, e.marker("plain"))
	tagged := func(tpid uint16) []byte {
		f := append([]byte(nil), plain[:12]...)
		f = binary.BigEndian.AppendUint16(f, tpid)
		f = binary.BigEndian.AppendUint16(f, 256) // VLAN 256
		return append(f, plain[12:]...)
	}
	ipv6 := append(append([]byte(nil), plain[:12]...), 0x86, 0xdd, 0x60)
	ipv6 = append(ipv6, make([]byte, 39)...)

	before := e.mustStatus(p.h1)
	for _, f := range [][]byte{ipv6, tagged(0x8100), tagged(0x88a8)} {
		e.mustSend(raw, f)
	}
	e.dropDelta(p.h1, before, api.DropEtherType, 3)
	e.mustSend(raw, plain)
	if b, err := inbox.next(reachTimeout); err != nil || string(b) != string(plain[42:]) {
		t.Fatalf("plain IPv4 frame from the same socket: %q, %v", b, err)
	}
}

// TestAdversaryBroadcastFlood sends 20000 broadcast frames from the
// attacker's container in about 2 s. Before this fix
// every one was replicated to every peer and every local container. Now
// the port's flood bucket (flood_rate 1000/s, flood_burst 2000 by
// default) lets through at most its burst plus its rate, the rest are
// counted as flood_limit, and the victim's ping to c2 keeps working
// during the flood.
func TestAdversaryBroadcastFlood(t *testing.T) {
	e := newEnv(t)
	p := e.portTopo()
	e.mustPing(p.v, "10.77.0.20")
	raw := e.rawSocket(p.a, "eth0")
	ma := mac(e.linkMAC(p.a, "eth0"))
	frame := udpFrame(mac("ff:ff:ff:ff:ff:ff"), ma, "10.77.0.10", "10.77.0.255", 4444, 9, make([]byte, 64))

	// 10000 frames/s for 2 s, ten times the default rate, so that the
	// victim's ping runs while the flood does. Up to burst + rate ×
	// (duration of the flood, plus the time the switch may still be
	// reading it) may pass, plus the ping's frames.
	e.floodDuringPing(p, raw, frame, 20000, 200, 20*time.Millisecond, "broadcast",
		func(elapsed time.Duration) uint64 { return uint64(2000 + 1000*(elapsed.Seconds()+1) + 100) })
}

// TestAdversaryAttachInUse attaches a new container with a MAC already in
// use: the attacker's on the same host, c2's on the other host (known
// from its gossip record), the gateway's; and with an address in use:
// the gateway's, the victim's on the same host and c2's on the other.
// Before this fix the first three attached, and the new port took frames
// meant for the MAC's owner (or answered for the gateway). Each is now
// refused as a conflict (exit code 5), and the same attach with a free
// MAC succeeds.
func TestAdversaryAttachInUse(t *testing.T) {
	e := newEnv(t, "dig")
	p := e.portTopo()
	n := e.container("n")
	s1 := e.socket(p.h1)
	ma, mc2 := e.linkMAC(p.a, "eth0"), e.linkMAC(p.c2, "eth0")
	e.eventually(readyTimeout, "h1 knows c2's record", func() error {
		return e.resolvesTo(p.a, "10.77.0.1", "c2", "10.77.0.20")
	})
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--mac", ma}, `is already used by endpoint "a"`},
		{[]string{"--mac", mc2}, `is already used by endpoint "c2" on host h2`},
		{[]string{"--mac", "02:76:0a:4d:00:01"}, "is the gateway's"},
		{[]string{"--ip", "10.77.0.1"}, "is the gateway's"},
		{[]string{"--ip", "10.77.0.11"}, "address 10.77.0.11 of network blue is in use by v on h1"},
		{[]string{"--ip", "10.77.0.20"}, "address 10.77.0.20 of network blue is in use by c2 on h2"},
	} {
		args := append([]string{"attach", "--socket", s1, "--network", "blue", "--netns", n.path(), "--name", "n"}, bad.args...)
		so, se, code := vx(args...)
		t.Logf("vxwire %s: %s", strings.Join(bad.args, " "), strings.TrimSpace(se))
		if code != exitConflict || !strings.Contains(se, bad.want) {
			t.Errorf("vxwire %s: exit code %d, want %d saying %q\n%s%s", strings.Join(args, " "), code, exitConflict, bad.want, so, se)
		}
	}
	e.mustVX("attach", "--socket", s1, "--network", "blue", "--netns", n.path(), "--name", "n", "--mac", "02:00:00:00:77:01")
	e.mustPing(n, "10.77.0.20")
	if got := e.linkMAC(n, "eth0"); got != "02:00:00:00:77:01" {
		t.Errorf("attached with MAC %s", got)
	}
}
