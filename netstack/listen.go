package netstack

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// ListenUDP opens a UDP socket on the gateway address and port (0 picks a
// free one), for example the network's DNS server on port 53. The
// connection is closed by Gateway.Close if the caller has not closed it;
// after either, ReadFrom fails with an error wrapping net.ErrClosed.
func (g *Gateway) ListenUDP(port uint16) (net.PacketConn, error) {
	if g.closing.Load() {
		return nil, fmt.Errorf("cannot listen on udp %s: %w", g.addrPort(port), net.ErrClosed)
	}
	local := g.fullAddr(port)
	c, err := gonet.DialUDP(g.stack, &local, nil, ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on udp %s: %w", g.addrPort(port), err)
	}
	pc := &packetConn{PacketConn: c, g: g}
	if !g.track(pc) {
		c.Close()
		return nil, fmt.Errorf("cannot listen on udp %s: %w", g.addrPort(port), net.ErrClosed)
	}
	return pc, nil
}

// ListenTCP opens a TCP listener on the gateway address and port (0 picks
// a free one). The listener is closed by Gateway.Close if the caller has
// not closed it; after either, Accept fails with an error wrapping
// net.ErrClosed. Accepted connections end when the gateway closes.
func (g *Gateway) ListenTCP(port uint16) (net.Listener, error) {
	if g.closing.Load() {
		return nil, fmt.Errorf("cannot listen on tcp %s: %w", g.addrPort(port), net.ErrClosed)
	}
	ln, err := gonet.ListenTCP(g.stack, g.fullAddr(port), ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on tcp %s: %w", g.addrPort(port), err)
	}
	l := &listener{TCPListener: ln, g: g}
	if !g.track(l) {
		ln.Close()
		return nil, fmt.Errorf("cannot listen on tcp %s: %w", g.addrPort(port), net.ErrClosed)
	}
	return l, nil
}

// DialContext opens a connection from the gateway address to an address
// on the subnet: network is "tcp", "tcp4", "udp" or "udp4" and address an
// "ipv4:port" literal. It is what published ports use to reach a
// container. The connection ends when the gateway closes.
func (g *Gateway) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if g.closing.Load() {
		return nil, fmt.Errorf("cannot dial %s %s: %w", network, address, net.ErrClosed)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !ap.Addr().Unmap().Is4() {
		return nil, fmt.Errorf("cannot dial %s %q: not an ipv4 address and port", network, address)
	}
	remote := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(ap.Addr().Unmap().As4()), Port: ap.Port()}
	local := g.fullAddr(0)
	switch network {
	case "tcp", "tcp4":
		c, err := gonet.DialTCPWithBind(ctx, g.stack, local, remote, ipv4.ProtocolNumber)
		if err != nil {
			return nil, fmt.Errorf("cannot dial tcp %s: %w", address, err)
		}
		return c, nil
	case "udp", "udp4":
		c, err := gonet.DialUDP(g.stack, &local, &remote, ipv4.ProtocolNumber)
		if err != nil {
			return nil, fmt.Errorf("cannot dial udp %s: %w", address, err)
		}
		return c, nil
	default:
		return nil, fmt.Errorf("cannot dial %q: unsupported network", network)
	}
}

func (g *Gateway) fullAddr(port uint16) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(g.gw), Port: port}
}

func (g *Gateway) addrPort(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4(g.gw), port)
}

// packetConn is a UDP socket handed out by ListenUDP.
type packetConn struct {
	net.PacketConn
	g      *Gateway
	closed atomic.Bool
}

// ReadFrom reports net.ErrClosed once the socket is closed.
func (c *packetConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err != nil && c.closed.Load() {
		err = &net.OpError{Op: "read", Net: "udp", Addr: c.LocalAddr(), Err: net.ErrClosed}
	}
	return n, addr, err
}

// Close closes the socket; it is idempotent.
func (c *packetConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.g.untrack(c)
	return c.PacketConn.Close()
}

// listener is a TCP listener handed out by ListenTCP.
type listener struct {
	*gonet.TCPListener
	g      *Gateway
	closed atomic.Bool
}

// Accept reports net.ErrClosed once the listener is closed.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.TCPListener.Accept()
	if err != nil && l.closed.Load() {
		err = &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
	}
	return c, err
}

// Close closes the listener and unblocks Accept; it is idempotent.
func (l *listener) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.g.untrack(l)
	l.Shutdown()
	return l.TCPListener.Close()
}
