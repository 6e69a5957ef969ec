package tunnel

import (
	"net/netip"
	"testing"

	"github.com/vxwire/vxwire/internal/config"
)

// roamingH2 turns peer h2 into a peer without an address, known by its
// key and tunnel address.
func roamingH2(c *config.Config) {
	p := &c.Peers[0]
	p.Address, p.GossipAddress = netip.Addr{}, netip.Addr{}
	p.HasPublicKey, p.PublicKey = true, [32]byte{1}
	p.TunnelAddress = netip.MustParseAddr("100.82.9.2")
}

// TestRoamingPeerNeverPlain: a peer without an address is known by its
// tunnel address, which only WireGuard can vouch for. Plain VXLAN from
// that address on the underlay is forged: it is dropped as plaintext,
// and the peer is on no plain network's flood list. Beside it, the same
// datagram from an addressed peer is delivered.
func TestRoamingPeerNeverPlain(t *testing.T) {
	e, devs := hotPathEngine(t, roamingH2)
	if got := e.peers["h2"].addr; got != netip.MustParseAddrPort("100.82.9.2:4789") {
		t.Fatalf("roaming peer known as %v, want its tunnel address", got)
	}
	for _, r := range e.sw.snap.Load().byVNI[256].peers {
		if r.name == "h2" {
			t.Fatal("a peer without an address is on a plain network's flood list")
		}
	}
	bufs, sizes, eps := underlayBatch(1, macOf("10.77.0.10"), netip.MustParseAddrPort("100.82.9.2:4789"))
	var s scratch
	e.sw.switchFromUnderlay(&s, bufs, sizes, eps, 1, false)
	if got := e.peers["h2"].stats.drops[dropPlaintext].Load(); got != 1 {
		t.Errorf("plaintext drops from the roaming peer = %d, want 1", got)
	}
	if devs["h1-a"].written != 0 {
		t.Fatal("forged plain VXLAN from a tunnel address was delivered")
	}

	// The probe: the same datagram from h2 with its address is delivered.
	e2, devs2 := hotPathEngine(t)
	bufs, sizes, eps = underlayBatch(1, macOf("10.77.0.10"), netip.MustParseAddrPort("198.18.0.2:4789"))
	e2.sw.switchFromUnderlay(&s, bufs, sizes, eps, 1, false)
	if devs2["h1-a"].written != 1 {
		t.Fatalf("an addressed peer's datagram: %d frames delivered, want 1", devs2["h1-a"].written)
	}
}
