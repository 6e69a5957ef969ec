package tests

//  PFX-ca 10.79.0.10 (sec)  PFX-pa 10.77.0.10 (blue)   PFX-cb 10.79.0.20 (sec)  PFX-pb 10.77.0.20 (blue)
//        eth0 (TAP, MTU 1390)   eth0 (TAP, MTU 1450)         eth0 (TAP)              eth0 (TAP)
//               \                 /                                \                 /
//              vxwire up (PFX-h1)                                 vxwire up (PFX-h2)
//              key A, UAPI PFX-wh1                                key B, UAPI PFX-wh2
//              tunnel 100.82.0.1                                  tunnel 100.82.0.2
//              PFX-u1 198.18.0.1/24 ============ veth ============ PFX-u2 198.18.0.2/24
//                 ^ tshark -f udp, -d udp.port==51820,wg
//
//  sec: VNI 4000, encrypted: VXLAN inside WireGuard on udp/51820
//  blue: VNI 256, plain VXLAN on udp/4789

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// encPair is two vxwire hosts sharing the encrypted network sec and the
// plain network blue, with one container per network per host.
type encPair struct {
	h1, h2         *encHost
	d1, d2         *daemon
	ca, cb, pa, pb *netns
}

// startEncPair builds encPair's topology with rotation period rotate
// ("" for the default) and starts both daemons.
func (e *env) startEncPair(rotate string) *encPair {
	e.t.Helper()
	u1, u2 := e.twoHosts()
	p := &encPair{h1: e.withKey(u1), h2: e.withKey(u2)}
	p.ca, p.cb, p.pa, p.pb = e.container("ca"), e.container("cb"), e.container("pa"), e.container("pb")
	secret := e.clusterSecret()
	nets := []encNetwork{{secNet, true}, {blue, false}}
	p.d1 = e.startEnc(p.h1, encConf{
		peers: []*encHost{p.h2}, networks: nets, secret: secret, rotate: rotate,
		endpoints: []epConf{
			{network: "sec", name: "ca", ns: p.ca, addr: "10.79.0.10"},
			{network: "blue", name: "pa", ns: p.pa, addr: "10.77.0.10"},
		},
	})
	p.d2 = e.startEnc(p.h2, encConf{
		peers: []*encHost{p.h1}, networks: nets, secret: secret, rotate: rotate,
		endpoints: []epConf{
			{network: "sec", name: "cb", ns: p.cb, addr: "10.79.0.20"},
			{network: "blue", name: "pb", ns: p.pb, addr: "10.77.0.20"},
		},
	})
	return p
}

// TestEncryptedTwoHosts checks an encrypted network next to a plain one:
// both carry traffic both ways; on the wire the encrypted one is only
// WireGuard (no VXLAN with its VNI, no container payload in the clear)
// while the plain one is readable VXLAN; its MTU is the underlay's minus
// 110 and a larger datagram is refused locally; wg(8) reads the device
// and cannot change it.
func TestEncryptedTwoHosts(t *testing.T) {
	e := newEnv(t, "tshark", "wg")
	p := e.startEncPair("")

	capt := e.startCapture(p.h1.netns, p.h1.link, "udp")
	e.mustPing(p.ca, "10.79.0.20")
	e.mustPing(p.cb, "10.79.0.10")
	e.mustPing(p.pa, "10.77.0.20")
	e.mustPing(p.pb, "10.77.0.10")

	// A marker on each network; the capture is stopped once it holds the
	// plain one, sent last, so it covers the encrypted one.
	encMarker, plainMarker := e.marker("sec"), e.marker("blue")
	e.deliverUDP(p.ca, "10.79.0.10", e.listenUDP(p.cb, "10.79.0.20", 7001), "10.79.0.20", 7001, encMarker)
	e.deliverUDP(p.pa, "10.77.0.10", e.listenUDP(p.pb, "10.77.0.20", 7001), "10.77.0.20", 7001, plainMarker)
	e.eventually(30*time.Second, "capture holds the marker sent on blue", func() error {
		if ok, err := capt.holds(plainMarker); err != nil || !ok {
			return fmt.Errorf("not yet (%v)", err)
		}
		return nil
	})
	capt.stop()
	checkEncryptedWire(t, capt, p.h1.addr, p.h2.addr)
	if ok, err := capt.holds(encMarker); err != nil || ok {
		t.Errorf("the marker sent on the encrypted network appears in the clear in the underlay capture (err %v)", err)
	}

	// MTU: status, the container's link, and what fits through.
	st1 := e.mustStatus(p.h1.host)
	if got, want := statusMTU(st1, "sec"), encMTU; got != want {
		t.Errorf("status: network sec has MTU %d, want %d (underlay 1500 - 110)", got, want)
	}
	if got := statusMTU(st1, "blue"); got != 1450 {
		t.Errorf("status: network blue has MTU %d, want 1450", got)
	}
	for _, c := range []struct {
		from *netns
		dst  string
	}{{p.ca, "10.79.0.20"}, {p.cb, "10.79.0.10"}} {
		if mtu := e.linkMTU(c.from, "eth0"); mtu != encMTU {
			t.Errorf("eth0 of %s has MTU %d, want %d", c.from.name, mtu, encMTU)
		}
		size := fmt.Sprint(encMTU - 28)
		out, err := e.in(c.from, "ping", "-M", "do", "-s", size, "-c", "3", "-W", "2", c.dst)
		if err != nil || !strings.Contains(out, " 3 received") {
			t.Errorf("ping -M do -s %s from %s (a full-MTU packet): want 3 replies: %v\n%s", size, c.from.name, err, out)
		}
		size = fmt.Sprint(encMTU - 27)
		out, err = e.in(c.from, "ping", "-M", "do", "-s", size, "-c", "1", "-W", "2", c.dst)
		if err == nil || !strings.Contains(out, "message too long") {
			t.Errorf("ping -M do -s %s from %s (one byte over the MTU): want a local \"message too long\": %v\n%s", size, c.from.name, err, out)
		}
	}

	e.transfer(p.ca, p.cb, "10.79.0.20", 64<<20, 2*time.Minute)

	// The derived tunnel address: 100.64.0.0 | the low 22 bits of 198.18.0.2.
	if p.h2.tunnel != "100.82.0.2" {
		t.Errorf("tunnel address derived from %s: %s, want 100.82.0.2", p.h2.addr, p.h2.tunnel)
	}
	checkStatusWireGuard(t, e.mustStatus(p.h1.host), p.h2, 64<<20)
	e.checkWGShow(p.h1, p.h2, 64<<20)

	// wg set is refused: the config file owns the device.
	out, err := e.in(p.h1.netns, "wg", "set", p.h1.wgName, "peer", p.h2.key.pub, "remove")
	if err == nil {
		t.Errorf("wg set %s peer ... remove succeeded; want it refused\n%s", p.h1.wgName, out)
	} else {
		t.Logf("wg set ... remove refused as it should be: %s", strings.TrimSpace(out))
	}
	t.Run("RefusalReadsEPERM", func(t *testing.T) {
		if !strings.Contains(out, "Operation not permitted") {
			t.Errorf("wg set refused with %q, want \"Operation not permitted\"", strings.TrimSpace(out))
		}
	})
	e.mustPing(p.ca, "10.79.0.20")
	e.mustPing(p.cb, "10.79.0.10")
	if _, _, peers, err := e.wgDump(p.h1.netns, p.h1.wgName); err != nil {
		t.Error(err)
	} else if _, ok := peers[p.h2.key.pub]; !ok {
		t.Errorf("after the refused removal, wg show %s no longer lists peer %s", p.h1.wgName, p.h2.key.pub)
	}

	for _, h := range []*encHost{p.h1, p.h2} {
		if n := drops(e.mustStatus(h.host), api.DropPlaintext); n != 0 {
			t.Errorf("%s dropped %d plaintext datagrams; none were sent", h.id, n)
		}
	}
}

// checkEncryptedWire fails the test unless the capture (taken on h1's
// underlay) holds WireGuard transport data both ways between a and b on
// wgPort, every datagram on that port is a WireGuard message, no VXLAN
// datagram carries the encrypted VNI, and plain VXLAN of blue is there
// (which shows the VXLAN check can see VXLAN).
func checkEncryptedWire(t *testing.T, capt *capture, a, b string) {
	t.Helper()
	rows, err := capt.decodeAs("ip.src", "ip.dst", "udp.srcport", "udp.dstport", "wg.type", "vxlan.vni")
	if err != nil {
		t.Fatal(err)
	}
	wgTypes := map[string]int{}
	dataAB, dataBA, blueVX := 0, 0, 0
	port := fmt.Sprint(wgPort)
	for i, r := range rows {
		src, dst, sport, dport, typ, vni := r[0], r[1], r[2], r[3], r[4], r[5]
		if sport == port || dport == port {
			if typ == "" {
				t.Errorf("frame %d: %s:%s -> %s:%s is not a WireGuard message to tshark", i+1, src, sport, dst, dport)
				continue
			}
			wgTypes[typ]++
			if typ == "4" && src == a && dst == b {
				dataAB++
			}
			if typ == "4" && src == b && dst == a {
				dataBA++
			}
		}
		if dport == "4789" || sport == "4789" {
			switch vni {
			case fmt.Sprint(secNet.vni):
				t.Errorf("frame %d: plain VXLAN with the encrypted VNI %s on the underlay: %q", i+1, vni, r)
			case fmt.Sprint(blue.vni):
				blueVX++
			}
		}
	}
	if dataAB == 0 || dataBA == 0 {
		t.Errorf("WireGuard transport data captured: %d from %s to %s, %d back; want some each way", dataAB, a, b, dataBA)
	}
	if blueVX == 0 {
		t.Errorf("no VXLAN of blue (VNI %d) captured: the check for the encrypted VNI proves nothing", blue.vni)
	}
	t.Logf("underlay capture: %d UDP frames; WireGuard messages by type (1 initiation, 2 response, 3 cookie, 4 data): %v; VXLAN of blue: %d; VXLAN of sec: none",
		len(rows), wgTypes, blueVX)
}

// checkStatusWireGuard checks the status's WireGuard view of peer: its
// key, endpoint and derived tunnel address, a recent handshake, traffic
// of at least minTx bytes to it, and the preshared-key epoch of the
// default 12 h rotation.
func checkStatusWireGuard(t *testing.T, st api.Status, peer *encHost, minTx uint64) {
	t.Helper()
	w, err := wgPeer(st, peer.id)
	if err != nil {
		t.Error(err)
		return
	}
	t.Logf("status of %s, peer %s: %+v", st.Host, peer.id, w)
	if w.PublicKey != peer.key.pub {
		t.Errorf("status: peer %s public_key %s, want %s", peer.id, w.PublicKey, peer.key.pub)
	}
	if want := fmt.Sprintf("%s:%d", peer.addr, wgPort); w.Endpoint != want {
		t.Errorf("status: peer %s endpoint %q, want %q", peer.id, w.Endpoint, want)
	}
	if w.TunnelAddress != peer.tunnel {
		t.Errorf("status: peer %s tunnel_address %q, want %q", peer.id, w.TunnelAddress, peer.tunnel)
	}
	if age := time.Since(w.LastHandshake); w.LastHandshake.IsZero() || age > 3*time.Minute || age < -5*time.Second {
		t.Errorf("status: peer %s last_handshake %v, want within the last 3 minutes", peer.id, w.LastHandshake)
	}
	if w.RxBytes == 0 || w.TxBytes < minTx {
		t.Errorf("status: peer %s rx_bytes %d, tx_bytes %d; want some received and at least %d sent", peer.id, w.RxBytes, w.TxBytes, minTx)
	}
	if now := uint64(time.Now().Unix() / (12 * 3600)); w.KeyEpoch+1 < now || w.KeyEpoch > now {
		t.Errorf("status: peer %s key_epoch %d, want %d (unix time / 12 h)", peer.id, w.KeyEpoch, now)
	}
}

// checkWGShow has wg(8), run in h's namespace, read h's device: it must
// list h's public key and port and the peer with its endpoint, its tunnel
// address as allowed-ips, a recent handshake and at least minTx bytes sent.
func (e *env) checkWGShow(h, peer *encHost, minTx uint64) {
	e.t.Helper()
	t := e.t
	out, err := e.in(h.netns, "wg", "show", h.wgName)
	if err != nil {
		t.Errorf("wg show %s: %v", h.wgName, err)
		return
	}
	t.Logf("wg show %s:\n%s", h.wgName, out)
	for _, want := range []string{"interface: " + h.wgName, "peer: " + peer.key.pub, "latest handshake:", "transfer:"} {
		if !strings.Contains(out, want) {
			t.Errorf("wg show %s does not say %q", h.wgName, want)
		}
	}
	pub, port, peers, err := e.wgDump(h.netns, h.wgName)
	if err != nil {
		t.Error(err)
		return
	}
	if pub != h.key.pub || port != wgPort {
		t.Errorf("wg show %s dump: public key %s port %d, want %s port %d", h.wgName, pub, port, h.key.pub, wgPort)
	}
	w, ok := peers[peer.key.pub]
	if !ok {
		t.Errorf("wg show %s dump lists no peer %s", h.wgName, peer.key.pub)
		return
	}
	if want := fmt.Sprintf("%s:%d", peer.addr, wgPort); w.endpoint != want {
		t.Errorf("wg show %s: peer endpoint %q, want %q", h.wgName, w.endpoint, want)
	}
	if want := peer.tunnel + "/32"; w.allowedIPs != want {
		t.Errorf("wg show %s: peer allowed ips %q, want %q", h.wgName, w.allowedIPs, want)
	}
	if age := time.Since(w.handshake); w.handshake.IsZero() || age > 3*time.Minute || age < -5*time.Second {
		t.Errorf("wg show %s: peer latest handshake %v, want within the last 3 minutes", h.wgName, w.handshake)
	}
	if w.rx == 0 || w.tx < minTx {
		t.Errorf("wg show %s: peer transfer %d received, %d sent; want some received and at least %d sent", h.wgName, w.rx, w.tx, minTx)
	}
}
