package tests

// Attacks on VIP services, on the topology of vip_test.go: c1 (blue) and
// r1 (red) on h1 send raw frames to blue's VIP for web; web1 (h1) and
// web2 (h2) listen on UDP 7002.

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// vipMAC is the MAC proxy ARP answers for vip.
func vipMAC(vip string) net.HardwareAddr {
	a := netip.MustParseAddr(vip).As4()
	return net.HardwareAddr{0x02, 0x76, a[0], a[1], a[2], a[3]}
}

// vipInboxes listens on UDP 7002 on both replicas.
func (e *env) vipInboxes(v vipTopo) []*udpListener {
	return []*udpListener{e.listenUDP(v.web1, "10.77.0.11", 7002), e.listenUDP(v.web2, "10.77.0.100", 7002)}
}

// awaitControl sends the control frame until one replica receives it,
// and fails the test if bad arrives at either replica, before it or with
// it: the attack's frames were switched before the control's, so once the
// control is in, whatever else arrived is drained and checked too.
func (e *env) awaitControl(inboxes []*udpListener, send func(), own, bad []byte) {
	e.t.Helper()
	e.eventually(reachTimeout, "the control datagram reaches a replica through the VIP", func() error {
		send()
		for _, in := range inboxes {
			for {
				b, err := in.next(200 * time.Millisecond)
				if err != nil {
					break
				}
				if string(b) == string(bad) {
					return permanent(fmt.Errorf("the attack's datagram reached a replica"))
				}
				if string(b) == string(own) {
					return nil
				}
			}
		}
		return fmt.Errorf("not yet")
	})
	for _, in := range inboxes {
		for {
			b, err := in.next(100 * time.Millisecond)
			if err != nil {
				break
			}
			if string(b) == string(bad) {
				e.t.Fatal("the attack's datagram reached a replica")
			}
		}
	}
}

// TestAdversaryVIPSpoofedSource sends UDP from c1 to the VIP with forged
// source addresses (a replica's own, nobody's, a host's): the port guard
// checks the frame as the container wrote it, before the VIP's
// destination NAT, so they are dropped and counted as spoofed_ip and
// never reach a replica, while the same datagram with c1's own address,
// through the same socket, does.
func TestAdversaryVIPSpoofedSource(t *testing.T) {
	e := newEnv(t, "socat", "curl", "dig")
	v := e.vipCluster()
	inboxes := e.vipInboxes(v)
	raw := e.rawSocket(v.c1, "eth0")
	mc1, dst := mac(e.linkMAC(v.c1, "eth0")), vipMAC(v.vip)
	own, forged := e.marker("own-source"), e.marker("forged-source")

	before := e.mustStatus(v.h1)
	for _, src := range []string{"10.77.0.11", "10.77.0.99", "198.18.0.2"} {
		for range 5 {
			e.mustSend(raw, udpFrame(dst, mc1, src, v.vip, 4444, 7002, forged))
		}
	}
	e.dropDelta(v.h1, before, api.DropSpoofedIP, 15)
	e.awaitControl(inboxes, func() { e.mustSend(raw, udpFrame(dst, mc1, "10.77.0.10", v.vip, 4444, 7002, own)) }, own, forged)
}

// TestAdversaryVIPOtherNetwork sends UDP from r1, on network red, to blue's
// VIP, with the VIP's MAC and r1's own address: VIPs belong to their
// network's switch, so red has no such address and the datagram reaches
// no replica; the same datagram from c1 on blue does.
func TestAdversaryVIPOtherNetwork(t *testing.T) {
	e := newEnv(t, "socat", "curl", "dig")
	v := e.vipCluster()
	inboxes := e.vipInboxes(v)
	rawRed, rawBlue := e.rawSocket(v.r1, "eth0"), e.rawSocket(v.c1, "eth0")
	mr1, mc1, dst := mac(e.linkMAC(v.r1, "eth0")), mac(e.linkMAC(v.c1, "eth0")), vipMAC(v.vip)
	own, cross := e.marker("blue-client"), e.marker("red-attacker")
	for range 5 {
		e.mustSend(rawRed, udpFrame(dst, mr1, "10.78.0.11", v.vip, 4444, 7002, cross))
	}
	e.awaitControl(inboxes, func() { e.mustSend(rawBlue, udpFrame(dst, mc1, "10.77.0.10", v.vip, 4444, 7002, own)) }, own, cross)
}
