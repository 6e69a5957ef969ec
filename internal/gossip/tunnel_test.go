package gossip

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vxwire/vxwire/netstack"
)

var (
	srvTunnel    = netip.MustParseAddr("100.82.1.1")
	laptopTunnel = netip.MustParseAddr("100.82.9.2")
)

// tunnelPair returns two inner stacks wired back to back, standing in for
// the two ends of a WireGuard tunnel.
func tunnelPair(tb testing.TB) (srv, laptop *netstack.InnerStack) {
	tb.Helper()
	ready := make(chan struct{})
	fwd := func(to **netstack.InnerStack) func([]byte) {
		return func(p []byte) { <-ready; (*to).Deliver(p) }
	}
	srv, err := netstack.NewInnerStack(srvTunnel, 1420, fwd(&laptop), nil)
	if err != nil {
		tb.Fatal(err)
	}
	laptop, err = netstack.NewInnerStack(laptopTunnel, 1420, fwd(&srv), nil)
	if err != nil {
		tb.Fatal(err)
	}
	close(ready)
	tb.Cleanup(func() { srv.Close(); laptop.Close() })
	return srv, laptop
}

// A host behind NAT gossips with a server only inside the tunnel: records
// cross both ways, though nothing of the laptop's binds on the underlay.
// A datagram on the server's underlay claiming the laptop's tunnel
// address is refused, while the same path admits the configured peer.
func TestGossipInsideTunnel(t *testing.T) {
	ts, tl := tunnelPair(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	srv := newTestCluster(t, "h1", nil, func(c *Config) {
		c.Port = 17946
		c.Secret = secret
		c.Tunnel = ts
		c.ViaTunnel = map[netip.Addr]netip.Addr{laptopTunnel: laptopTunnel}
		c.Peers = []netip.Addr{laptopTunnel}
	})
	laptop := newTestCluster(t, "laptop", []netip.AddrPort{netip.AddrPortFrom(loopback, 17946)}, func(c *Config) {
		c.BindAddr = laptopTunnel
		c.Port = 17946
		c.Secret = secret
		c.Tunnel = tl
		c.NoUnderlay = true
		c.ViaTunnel = map[netip.Addr]netip.Addr{loopback: srvTunnel}
		c.Peers = []netip.Addr{loopback, srvTunnel}
	})
	srv.SetLocal([]Record{rec("", "blue", "web", "10.77.0.10")})
	laptop.SetLocal([]Record{rec("", "blue", "laptop", "10.77.0.20")})
	both := []string{"laptop/laptop", "h1/web"} // sorted by name
	for _, c := range []*Cluster{laptop, srv} {
		eventually(t, 15*time.Second, func() bool { return hasExactly(c, both...) }, "%s: records %v refused %v / %v", c.cfg.NodeName, names(c.Records()), srv.Refused(), laptop.Refused())
	}

	// An underlay packet or connection claiming the laptop's tunnel
	// address is refused before memberlist sees it; only WireGuard may
	// vouch for that address. A peer's underlay address passes.
	tt := srv.transport.NodeAwareTransport.(*tunnelTransport)
	if !tt.spoofed(&net.UDPAddr{IP: laptopTunnel.AsSlice(), Port: 17946}) {
		t.Fatal("an underlay packet from the laptop's tunnel address is not refused")
	}
	if tt.spoofed(&net.TCPAddr{IP: loopback.AsSlice(), Port: 17946}) {
		t.Fatal("an underlay connection from a peer's address is refused")
	}
}
