package tests

//  PFX-ca 10.79.0.10 (sec)           PFX-cb 10.79.0.20 (sec)        PFX-c3 10.79.0.30 (sec)
//  PFX-pa 10.77.0.10 (blue)                 |                              |
//        \      /                           |                              |
//   vxwire up (PFX-h1), key A       vxwire up (PFX-h2), key B     vxwire up (PFX-h3), key X
//   peers: h2                       peers: h1                     peers: h1 (A's real key);
//   tunnel 100.82.0.1               tunnel 100.82.0.2             tunnel 100.82.0.2 (B's!),
//                                                                 same cluster secret, gossip
//                                                                 on 7947; A does not know X
//   PFX-u1 198.18.0.1 -------------- PFX-u2 198.18.0.2 ----------- PFX-u3 198.18.0.3
//      ^ tshark                \__________ bridge br0 in PFX-sw ___________/
//        'udp port 51820 and host 198.18.0.3'
//
//   <-- plaintext VXLAN to 198.18.0.1:4789 from a Go socket in PFX-h2 (B's own address)

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// TestEncryptedInjection attacks an encrypted network from the underlay.
// Plaintext VXLAN for its VNI from a peer's own address is dropped,
// counted as plaintext, and never reaches the container, while the same
// frame for a plain network does (so the attack frame is right). A host
// with a key A does not know, even one holding the cluster secret and
// claiming B's tunnel address, gets no handshake and delivers nothing.
func TestEncryptedInjection(t *testing.T) {
	e := newEnv(t, "tshark")
	hosts, _ := e.threeHosts()
	h1, h2, h3 := e.withKey(hosts[0]), e.withKey(hosts[1]), e.withKey(hosts[2])
	h3.tunnel = h2.tunnel
	ca, pa, cb, c3 := e.container("ca"), e.container("pa"), e.container("cb"), e.container("c3")
	secret := e.clusterSecret()
	nets := []encNetwork{{secNet, true}, {blue, false}}
	d1 := e.startEnc(h1, encConf{peers: []*encHost{h2}, networks: nets, secret: secret, endpoints: []epConf{
		{network: "sec", name: "ca", ns: ca, addr: "10.79.0.10"},
		{network: "blue", name: "pa", ns: pa, addr: "10.77.0.10"},
	}})
	e.startEnc(h2, encConf{peers: []*encHost{h1}, networks: nets, secret: secret, endpoints: []epConf{
		{network: "sec", name: "cb", ns: cb, addr: "10.79.0.20"},
	}})
	e.mustPing(cb, "10.79.0.10")
	inbox, plainInbox := e.listenUDP(ca, "10.79.0.10", 7002), e.listenUDP(pa, "10.77.0.10", 7002)
	macCA, macPA := e.linkMAC(ca, "eth0"), e.linkMAC(pa, "eth0")

	// The control: a hand-made frame in plaintext VXLAN from B's address
	// reaches a container of the plain network.
	to := netip.AddrPortFrom(netip.MustParseAddr(h1.addr), 4789)
	src := net.HardwareAddr{0x02, 0, 0, 0, 0x99, 2}
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	ctrl := e.marker("plain-injection")
	e.eventually(reachTimeout, "hand-made VXLAN frame for blue delivered to pa", func() error {
		e.sendUDP(h2.netns, h2.addr, to, vxlanDatagram(0x08, uint32(blue.vni), udpFrame(mac(macPA), src, "10.77.0.99", "10.77.0.10", 4444, 7002, ctrl)))
		b, err := plainInbox.next(time.Second)
		if err == nil && !bytes.Equal(b, ctrl) {
			err = fmt.Errorf("pa received %q", b)
		}
		return err
	})

	// The same frame for the encrypted network is dropped.
	inj := e.marker("sec-injection")
	frame := vxlanDatagram(0x08, uint32(secNet.vni), udpFrame(mac(macCA), src, "10.79.0.99", "10.79.0.10", 4444, 7002, inj))
	before := e.mustStatus(h1.host)
	const n = 3
	e.sendUDP(h2.netns, h2.addr, to, frame, frame, frame)
	var after api.Status
	e.eventually(readyTimeout, "plaintext drops counted", func() error {
		st, err := e.status(h1.host)
		if err != nil {
			return err
		}
		if got := drops(st, api.DropPlaintext) - drops(before, api.DropPlaintext); got < n {
			return fmt.Errorf("drops[%s] grew by %d, want %d; drops now %v", api.DropPlaintext, got, n, st.Counters.Drops)
		}
		after = st
		return nil
	})
	if got := drops(after, api.DropPlaintext) - drops(before, api.DropPlaintext); got != n {
		t.Errorf("drops[%s] grew by %d, want exactly %d (one per datagram)", api.DropPlaintext, got, n)
	}
	e.checkInbox(cb, "10.79.0.20", inbox, inj)

	// An impostor: a vxwire host with an unknown key, A as its peer. It
	// holds the cluster secret, so it derives the preshared keys as A's
	// peers do; its gossip runs on a port of its own, so that it talks to
	// A only through WireGuard.
	capt := e.startCapture(h1.netns, h1.link, fmt.Sprintf("udp port %d and host %s", wgPort, h3.addr))
	e.startEnc(h3, encConf{peers: []*encHost{h1}, networks: []encNetwork{{secNet, true}}, secret: secret, gossip: 7947,
		endpoints: []epConf{{network: "sec", name: "c3", ns: c3, addr: "10.79.0.30"}}})
	e.mustIn(c3, "ip", "neigh", "replace", "10.79.0.10", "lladdr", macCA, "dev", "eth0", "nud", "permanent")
	imp := e.marker("impostor")
	e.eventually(reachTimeout, "h3 sends two handshake initiations to h1", func() error {
		e.sendUDP(c3, "10.79.0.30", netip.MustParseAddrPort("10.79.0.10:7002"), imp)
		st, err := e.status(h3.host)
		if err != nil {
			return err
		}
		w, err := wgPeer(st, h1.id)
		if err != nil {
			return permanent(err)
		}
		if !w.LastHandshake.IsZero() || w.RxBytes > 0 {
			return permanent(fmt.Errorf("h3 completed a handshake with h1 or received from it: %+v", w))
		}
		if err := onlyPeer(e, h1, h2); err != nil {
			return permanent(err)
		}
		if w.TxBytes < 2*148 { // a handshake initiation is 148 bytes
			return fmt.Errorf("h3 sent %d bytes to h1 so far", w.TxBytes)
		}
		return nil
	})
	capt.stop()
	rows, err := capt.decodeAs("ip.src", "ip.dst", "wg.type")
	if err != nil {
		t.Fatal(err)
	}
	inits, answers := 0, 0
	for _, r := range rows {
		switch {
		case r[0] == h3.addr && r[2] == "1":
			inits++
		case r[0] == h1.addr:
			answers++
			t.Errorf("h1 answered the impostor: %q", r)
		}
	}
	if inits == 0 {
		t.Errorf("no handshake initiation from %s captured at h1: the impostor check proves nothing", h3.addr)
	}
	t.Logf("at h1: %d handshake initiations from the impostor, %d datagrams back to it", inits, answers)

	if err := onlyPeer(e, h1, h2); err != nil {
		t.Error(err)
	}
	e.checkInbox(cb, "10.79.0.20", inbox, imp)
	if !d1.running() {
		t.Errorf("h1's daemon exited: %v", d1.err)
	}
}

// checkInbox sends a fence datagram from src in namespace from (a
// legitimate container) to inbox and fails the test if anything holding
// bad arrived before it.
func (e *env) checkInbox(from *netns, src string, inbox *udpListener, bad []byte) {
	e.t.Helper()
	laddr := inbox.pc.LocalAddr().(*net.UDPAddr)
	fence := e.marker("fence")
	for _, b := range e.deliverUDP(from, src, inbox, laddr.IP.String(), laddr.Port, fence) {
		if bytes.Contains(b, bad) {
			e.t.Errorf("a datagram that must have been dropped reached the container: %q", b)
		}
	}
}

// onlyPeer returns an error unless h's status lists peer alone, with its
// own key and WireGuard endpoint.
func onlyPeer(e *env, h, peer *encHost) error {
	st, err := e.status(h.host)
	if err != nil {
		return err
	}
	if len(st.Peers) != 1 || st.Peers[0].Name != peer.id {
		return fmt.Errorf("%s lists peers %+v; want %s alone", h.id, st.Peers, peer.id)
	}
	w, err := wgPeer(st, peer.id)
	if err != nil {
		return err
	}
	if w.Endpoint != fmt.Sprintf("%s:%d", peer.addr, wgPort) || w.PublicKey != peer.key.pub {
		return fmt.Errorf("%s's view of %s changed: %+v", h.id, peer.id, w)
	}
	return nil
}
