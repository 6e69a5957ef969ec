package tunnel

import (
	"testing"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/ether"
)

// TestGatewayARPGoesToItsTarget checks that the gateway's ARP request for
// a local container's address reaches that container alone, while one
// for an address the network does not know still reaches every local
// port. Before, every request of the gateway was written to every port:
// with 4096 containers, each new neighbour of the gateway cost 4096
// writes.
func TestGatewayARPGoesToItsTarget(t *testing.T) {
	e, devs := hotPathEngine(t)
	gw := e.networks["blue"].gw
	b := e.sw.poolFor(gw.net.mtu).get()
	ask := func(target string) {
		putFrame(b, 0, arpFrame(ether.ARPRequest, Broadcast, gw.mac, gw.mac, "10.77.0.1", target))
		e.sw.switchFromPort(gw, b, 1)
	}
	ask("10.77.0.11")
	if a, bb := devs["h1-a"].written, devs["h1-b"].written; a != 0 || bb != 1 {
		t.Fatalf("request for b's address: a got %d frames, b %d; want 0 and 1", a, bb)
	}
	ask("10.77.0.99")
	if a, bb := devs["h1-a"].written, devs["h1-b"].written; a != 1 || bb != 2 {
		t.Fatalf("request for an unknown address: a got %d frames, b %d in all; want 1 and 2", a, bb)
	}
	if n := e.sw.snap.Load().byVNI[256].net.stats.drops[dropFloodLimit].Load(); n != 0 {
		t.Fatalf("%d flood_limit drops", n)
	}
}

// TestFloodKeepsNoGroupPerPort checks that a broadcast from a port
// reaches every other port and the peer, without leaving a frame group per
// destination port in the sender's scratch: with thousands of ports, those
// groups made each flood quadratic and stayed allocated for every port
// that ever flooded. Nor does a port hold a flood list before its first
// flood: most containers never flood.
func TestFloodKeepsNoGroupPerPort(t *testing.T) {
	e, devs := hotPathEngine(t, func(c *config.Config) { c.Host.FloodRate, c.Host.FloodBurst = 1000, 1000 })
	p := e.ports[epKey{"blue", "a"}]
	if p.sc.flood != nil {
		t.Fatal("a port that never flooded holds a flood list")
	}
	b := e.sw.poolFor(p.net.mtu).get()
	fillBatch(b, 3, Broadcast, p.mac)
	e.sw.switchFromPort(p, b, 3)
	if got := devs["h1-b"].written; got != 3 {
		t.Fatalf("b got %d broadcasts, want 3", got)
	}
	if got := devs["h1-a"].written; got != 0 {
		t.Fatalf("the sender got %d of its own broadcasts", got)
	}
	if got := e.peers["h2"].stats.txFrames.Load(); got != 3 {
		t.Fatalf("peer got %d broadcasts, want 3", got)
	}
	if len(p.sc.local) != 0 {
		t.Fatalf("the sender's scratch keeps %d port groups after a flood", len(p.sc.local))
	}
}
