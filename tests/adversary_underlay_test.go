package tests

// A stranger on the underlay sending VXLAN, in gossipTrio's topology
// (adversary_gossip_test.go): h1 and h2 run vxwire with c1 and c2 on
// blue, h3 is a configured peer running none, x (198.18.0.9) is a
// namespace on the same segment that no config names.

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// TestAdversaryStrangerVXLAN: x sends well-formed VXLAN for blue to h1,
// each datagram carrying a UDP datagram for c1, as any machine on the
// segment can. None reaches c1, and each is counted as unknown_peer.
// vxwire has refused datagrams from addresses that are not peers since
// its first engine; this test pins it with the sender in a namespace of
// its own. The probe: the same datagram from h3, a configured peer,
// reaches c1. (A sender that forges a peer's source address is stopped
// only by an encrypted network: TestEncryptedInjection.)
func TestAdversaryStrangerVXLAN(t *testing.T) {
	e := newEnv(t, "dig")
	g := e.gossipTrio()
	mc1 := mac(e.linkMAC(g.c1, "eth0"))
	to := netip.AddrPortFrom(netip.MustParseAddr(g.h1.addr), 4789)
	inbox := e.listenUDP(g.c1, "10.77.0.10", 7002)

	before := e.mustStatus(g.h1)
	const n = 20
	var attack [][]byte
	for range n {
		attack = append(attack, forged(mc1, mac("02:00:00:00:99:09"), []byte("stranger")))
	}
	e.sendUDP(g.x, "198.18.0.9", to, attack...)
	e.dropDelta(g.h1, before, api.DropUnknownPeer, n)

	ctrl := e.marker("peer-frame")
	e.eventually(reachTimeout, "a frame from peer h3 reaches c1", func() error {
		e.sendUDP(g.h3.netns, g.h3.addr, to, forged(mc1, mac("02:00:00:00:99:03"), ctrl))
		b, err := inbox.next(time.Second)
		switch {
		case err != nil:
			return err
		case string(b) == "stranger":
			return permanent(fmt.Errorf("a datagram from the stranger x reached c1"))
		case string(b) != string(ctrl):
			return fmt.Errorf("got %q", b)
		}
		return nil
	})
	for {
		b, err := inbox.next(200 * time.Millisecond)
		if err != nil {
			break
		}
		if string(b) == "stranger" {
			t.Fatal("a datagram from the stranger x reached c1")
		}
	}
}
