package gossip

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vxwire/vxwire/internal/safe"
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
	srv, err := netstack.NewInnerStack(srvTunnel, 1420, fwd(&laptop), nil, safe.Reporter{})
	if err != nil {
		tb.Fatal(err)
	}
	laptop, err = netstack.NewInnerStack(laptopTunnel, 1420, fwd(&srv), nil, safe.Reporter{})
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

// fakeUnderlay is an underlay transport whose packets and connections a
// test sends in by hand.
type fakeUnderlay struct {
	memberlist.NodeAwareTransport // nil: only the methods below are called
	packets                       chan *memberlist.Packet
	streams                       chan net.Conn
}

func (f *fakeUnderlay) PacketCh() <-chan *memberlist.Packet { return f.packets }
func (f *fakeUnderlay) StreamCh() <-chan net.Conn           { return f.streams }
func (f *fakeUnderlay) Shutdown() error                     { return nil }

// remoteConn is one end of a pipe that says it comes from addr.
type remoteConn struct {
	net.Conn
	addr net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.addr }

// sendIn hands v to the transport under test, failing when it is not
// taken: a forwarded packet that memberlist never reads blocks the next.
func sendIn[T any](tb testing.TB, ch chan<- T, v T) {
	tb.Helper()
	select {
	case ch <- v:
	case <-time.After(2 * time.Second):
		tb.Fatal("the transport stopped taking packets: an earlier one was forwarded")
	}
}

// TestTunnelTransportRefusesSpoofedUnderlay sends a tunnelTransport's
// underlay side a packet and a connection from the laptop's tunnel
// address: both are refused (counted, the connection closed) and never
// reach memberlist, while the same from a peer's underlay address pass.
func TestTunnelTransportRefusesSpoofedUnderlay(t *testing.T) {
	ts, _ := tunnelPair(t)
	under := &fakeUnderlay{packets: make(chan *memberlist.Packet), streams: make(chan net.Conn)}
	var refused atomic.Int32
	tt, err := newTunnelTransport(under, ts, 17947, map[netip.Addr]netip.Addr{laptopTunnel: laptopTunnel}, func() { refused.Add(1) }, safe.Reporter{})
	if err != nil {
		t.Fatal(err)
	}
	defer tt.Shutdown()

	spoofed, peer := netip.AddrPortFrom(laptopTunnel, 17946), netip.AddrPortFrom(loopback, 17946)
	sendIn(t, under.packets, &memberlist.Packet{Buf: []byte("forged"), From: net.UDPAddrFromAddrPort(spoofed)})
	sendIn(t, under.packets, &memberlist.Packet{Buf: []byte("genuine"), From: net.UDPAddrFromAddrPort(peer)})
	select {
	case p := <-tt.PacketCh():
		if string(p.Buf) != "genuine" {
			t.Fatalf("memberlist got %q from %v", p.Buf, p.From)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the peer's packet did not pass")
	}

	forged, attacker := net.Pipe()
	defer attacker.Close()
	sendIn(t, under.streams, net.Conn(remoteConn{forged, net.TCPAddrFromAddrPort(spoofed)}))
	attacker.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := attacker.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("the spoofed connection was not closed: %v", err)
	}
	genuine, other := net.Pipe()
	defer other.Close()
	sendIn(t, under.streams, net.Conn(remoteConn{genuine, net.TCPAddrFromAddrPort(peer)}))
	select {
	case c := <-tt.StreamCh():
		if c.RemoteAddr().String() != peer.String() {
			t.Fatalf("memberlist got a connection from %v", c.RemoteAddr())
		}
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the peer's connection did not pass")
	}
	if got := refused.Load(); got != 2 {
		t.Fatalf("refused %d, want 2 (a packet and a connection)", got)
	}
}

// TestSetViaTunnelAddsPeer: a server started with a tunnel but no peer
// behind it (ViaTunnel empty) gets the laptop by SetViaTunnel, as on a
// reload: records then cross both ways, and the laptop's tunnel address
// becomes one the underlay may not claim.
func TestSetViaTunnelAddsPeer(t *testing.T) {
	ts, tl := tunnelPair(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	srv := newTestCluster(t, "h1", nil, func(c *Config) {
		c.Port = 17948
		c.Secret = secret
		c.Tunnel = ts
	})
	tt := srv.transport.NodeAwareTransport.(*tunnelTransport)
	if tt.spoofed(&net.UDPAddr{IP: laptopTunnel.AsSlice(), Port: 17948}) {
		t.Fatal("the laptop's tunnel address is refused before the laptop is configured")
	}
	lapGossip := netip.AddrPortFrom(laptopTunnel, 17948).String()
	if tt.tunneled(lapGossip) {
		t.Fatal("gossip to the laptop goes through the tunnel before the laptop is configured")
	}
	srv.SetPeers([]netip.Addr{laptopTunnel})
	srv.SetViaTunnel(map[netip.Addr]netip.Addr{laptopTunnel: laptopTunnel})
	laptop := newTestCluster(t, "laptop", []netip.AddrPort{netip.AddrPortFrom(loopback, 17948)}, func(c *Config) {
		c.BindAddr = laptopTunnel
		c.Port = 17948
		c.Secret = secret
		c.Tunnel = tl
		c.NoUnderlay = true
		c.ViaTunnel = map[netip.Addr]netip.Addr{loopback: srvTunnel}
		c.Peers = []netip.Addr{loopback, srvTunnel}
	})
	srv.SetLocal([]Record{rec("", "blue", "web", "10.77.0.10")})
	laptop.SetLocal([]Record{rec("", "blue", "laptop", "10.77.0.20")})
	both := []string{"laptop/laptop", "h1/web"}
	for _, c := range []*Cluster{laptop, srv} {
		eventually(t, 15*time.Second, func() bool { return hasExactly(c, both...) }, "%s: records %v", c.cfg.NodeName, names(c.Records()))
	}
	if !tt.tunneled(lapGossip) {
		t.Fatal("after SetViaTunnel gossip to the laptop does not go through the tunnel")
	}
	if !tt.spoofed(&net.UDPAddr{IP: laptopTunnel.AsSlice(), Port: 17948}) {
		t.Fatal("after SetViaTunnel an underlay packet from the laptop's tunnel address is not refused")
	}
}
