package tunnel

import (
	"net/netip"
	"testing"

	"github.com/vxwire/vxwire/internal/config"
)

// withHostEndpoint adds host endpoint laptop (10.77.0.50) to blue.
func withHostEndpoint(c *config.Config) {
	c.Endpoints = append(c.Endpoints, config.Endpoint{Network: "blue", Name: "laptop", Address: netip.MustParseAddr("10.77.0.50")})
}

// TestHostEndpointGuarded checks that a host endpoint's port is no
// trusted gateway: a frame its stack sent with another source address or
// MAC is dropped and counted like a container's, and one with its own
// goes through.
func TestHostEndpointGuarded(t *testing.T) {
	e, devs := hotPathEngine(t, withHostEndpoint)
	p := e.ports[epKey{"blue", "laptop"}]
	if p == nil || p.host == nil || p.gateway {
		t.Fatalf("laptop port %+v is not a host endpoint", p)
	}
	if p.mac != deriveMAC(netip.MustParseAddr("10.77.0.50")) {
		t.Fatalf("mac %s", p.mac)
	}
	mb := macOf("10.77.0.11")
	for _, tc := range []struct {
		name  string
		frame []byte
		drop  dropReason
	}{
		{"own source", ipv4Frame(mb, p.mac, "10.77.0.50"), dropNone},
		{"source of a container", ipv4Frame(mb, p.mac, "10.77.0.10"), dropSpoofedIP},
		{"source of the gateway", ipv4Frame(mb, p.mac, "10.77.0.1"), dropSpoofedIP},
		{"MAC of a container", ipv4Frame(mb, mb, "10.77.0.50"), dropSpoofed},
	} {
		before := p.stats.drops[tc.drop%numDropReasons].Load()
		written := devs["h1-b"].written
		b := e.sw.poolFor(p.net.mtu).get()
		putFrame(b, 0, tc.frame)
		e.sw.switchFromPort(p, b, 1)
		e.sw.poolFor(p.net.mtu).put(b)
		delivered := devs["h1-b"].written - written
		if tc.drop == dropNone {
			if delivered != 1 {
				t.Errorf("%s: b got %d frames, want 1", tc.name, delivered)
			}
			continue
		}
		if delivered != 0 || p.stats.drops[tc.drop].Load() != before+1 {
			t.Errorf("%s: delivered %d, %s drops %d→%d", tc.name, delivered, name(tc.drop), before, p.stats.drops[tc.drop].Load())
		}
	}
}

// TestHostEndpointHotPathNoAllocs checks that switching a host endpoint's
// frames allocates nothing per frame, as for a TAP port.
func TestHostEndpointHotPathNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector (sync.Pool drops items on purpose); make race runs it without the detector too")
	}
	e, _ := hotPathEngine(t, withHostEndpoint)
	p := e.ports[epKey{"blue", "laptop"}]
	pool := e.sw.poolFor(p.net.mtu)
	allocs := testing.AllocsPerRun(100, func() {
		b := pool.get()
		fillBatch(b, 32, macOf("10.77.0.11"), p.mac)
		e.sw.switchFromPort(p, b, 32)
		pool.put(b)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch, want 0", allocs)
	}
}

// TestHostEndpointResolve checks the mapping of SOCKS destinations to the
// overlay (laptop.go).
func TestHostEndpointResolve(t *testing.T) {
	e, _ := hotPathEngine(t, withHostEndpoint)
	for _, tc := range []struct {
		host    string
		overlay bool
		to      string
		err     error
	}{
		{"a.blue", true, "10.77.0.10", nil},
		{"A.Blue.", true, "10.77.0.10", nil},
		{"a", true, "10.77.0.10", nil},
		{"10.77.0.11", true, "10.77.0.11", nil},
		{"nobody.blue", true, "", errNoSuchName},
		{"198.51.100.7", false, "", nil},
		{"example.com", false, "", nil},
		{"nobody", false, "", nil},
	} {
		d, overlay, err := e.sw.resolveOverlay(tc.host)
		if overlay != tc.overlay || (tc.err == nil) != (err == nil) || tc.to != "" && d.to.String() != tc.to {
			t.Errorf("%s: overlay %v to %v err %v; want %v %s %v", tc.host, overlay, d.to, err, tc.overlay, tc.to, tc.err)
		}
	}
}

// TestHostEndpointAllocated checks that a host endpoint without an
// address gets one from IPAM, like a container, and a MAC derived from it.
func TestHostEndpointAllocated(t *testing.T) {
	e, _ := hotPathEngine(t, func(c *config.Config) {
		c.Endpoints = append(c.Endpoints, config.Endpoint{Network: "blue", Name: "laptop"})
	})
	p := e.ports[epKey{"blue", "laptop"}]
	if p == nil || p.host == nil {
		t.Fatal("no host endpoint port")
	}
	a := p.addr.Addr()
	if !netip.MustParsePrefix("10.77.0.0/24").Contains(a) || a == netip.MustParseAddr("10.77.0.1") ||
		a == netip.MustParseAddr("10.77.0.10") || a == netip.MustParseAddr("10.77.0.11") {
		t.Fatalf("allocated %s", p.addr)
	}
	if p.mac != deriveMAC(a) {
		t.Fatalf("mac %s for %s", p.mac, a)
	}
	if got := e.sw.snap.Load().names.fwd["blue"]["laptop"]; len(got) != 1 || got[0] != a {
		t.Fatalf("name laptop resolves to %v", got)
	}
}
