package gossip

// Gossip inside WireGuard. A peer without an underlay address (a laptop
// behind NAT) cannot be reached on the underlay: its servers know it only
// by its WireGuard key. Its gossip runs inside its tunnel instead, between
// tunnel addresses, on a TCP/IP stack the WireGuard device serves there
// (Config.Tunnel). tunnelTransport puts the two paths behind one memberlist
// transport:
//
//	WriteTo / Dial to an address in Config.ViaTunnel ─▶ the tunnel's UDP socket / TCP, to the mapped tunnel address
//	anything else                                    ─▶ the underlay transport (none on a host behind NAT)
//	tunnel UDP socket and listener ─┐
//	underlay transport ─────────────┴─▶ PacketCh / StreamCh ─▶ filterTransport's gate
//
// WireGuard authenticates the tunnel path: an inner packet's source is its
// peer's tunnel address or it is dropped before the stack sees it. The
// underlay path has no such proof, so an underlay packet or connection
// claiming a tunnel address is refused here.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vxwire/vxwire/internal/safe"
)

// Tunnel is the stack on this host's WireGuard tunnel address that gossip
// uses to reach peers through their tunnels (crypto.Device's inner stack
// implements it).
type Tunnel interface {
	// Addr is this host's tunnel address.
	Addr() netip.Addr
	// ListenUDP opens a UDP socket on the tunnel address.
	ListenUDP(port uint16) (net.PacketConn, error)
	// ListenTCP opens a TCP listener on the tunnel address.
	ListenTCP(port uint16) (net.Listener, error)
	// DialTCP opens a TCP connection from the tunnel address.
	DialTCP(ctx context.Context, dst netip.AddrPort) (net.Conn, error)
}

// tunnelTransport is memberlist's transport over the underlay and a
// Tunnel; see the top of this file.
type tunnelTransport struct {
	relay
	under memberlist.NodeAwareTransport // nil: everything goes through the tunnel
	tun   Tunnel
	port  int
	// routes is the current tunnelRoutes; a reload replaces it
	// (setVia), so that a peer without an address added then gossips
	// through its tunnel at once.
	routes atomic.Pointer[tunnelRoutes]

	pc net.PacketConn
	ln net.Listener
}

var _ memberlist.NodeAwareTransport = (*tunnelTransport)(nil)

// tunnelRoutes are the peers reached through the tunnel. Immutable.
type tunnelRoutes struct {
	// via maps a peer's gossip address to its tunnel address.
	via     map[netip.Addr]netip.Addr
	tunnels map[netip.Addr]bool // the values of via
}

// setVia replaces the peers reached through the tunnel (see
// newTunnelTransport's via).
func (t *tunnelTransport) setVia(via map[netip.Addr]netip.Addr) {
	r := &tunnelRoutes{via: via, tunnels: make(map[netip.Addr]bool, len(via))}
	for _, a := range via {
		r.tunnels[a] = true
	}
	t.routes.Store(r)
}

// newTunnelTransport listens on the tunnel's port and starts forwarding.
// under may be nil (a host behind NAT). via maps peers' gossip addresses
// to their tunnel addresses; on a host behind NAT it must name every
// peer. refused is called once per underlay packet or connection turned
// away for claiming a tunnel address.
func newTunnelTransport(under memberlist.NodeAwareTransport, tun Tunnel, port int, via map[netip.Addr]netip.Addr, refused func(), crash safe.Reporter) (*tunnelTransport, error) {
	t := &tunnelTransport{relay: newRelay(), under: under, tun: tun, port: port}
	t.setVia(via)
	var err error
	if t.pc, err = tun.ListenUDP(uint16(port)); err != nil {
		return nil, err
	}
	if t.ln, err = tun.ListenTCP(uint16(port)); err != nil {
		t.pc.Close()
		return nil, err
	}
	t.wg.Add(2)
	crash.Go("gossip tunnel packets", t.routineTunnelPackets)
	crash.Go("gossip tunnel streams", t.routineTunnelStreams)
	if under != nil {
		t.gate(under, "gossip underlay", func(a net.Addr) bool { return !t.spoofed(a) }, refused, crash)
	}
	return t, nil
}

// route returns the tunnel address to use for addr ("ip:port"), if any.
func (t *tunnelTransport) route(addr string) (netip.AddrPort, bool, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return ap, false, fmt.Errorf("gossip: bad address %q: %w", addr, err)
	}
	a := ap.Addr().Unmap()
	r := t.routes.Load()
	if r.tunnels[a] {
		return netip.AddrPortFrom(a, uint16(t.port)), true, nil
	}
	if a, ok := r.via[a]; ok {
		return netip.AddrPortFrom(a, uint16(t.port)), true, nil
	}
	if t.under == nil {
		return ap, false, fmt.Errorf("gossip: no tunnel to %s", addr)
	}
	return ap, false, nil
}

// tunneled reports whether addr is reached through the tunnel.
func (t *tunnelTransport) tunneled(addr string) bool {
	_, ok, _ := t.route(addr)
	return ok || t.under == nil
}

// FinalAdvertiseAddr implements memberlist.Transport: the underlay's, or
// on a host behind NAT the tunnel address.
func (t *tunnelTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if t.under != nil {
		return t.under.FinalAdvertiseAddr(ip, port)
	}
	return t.tun.Addr().AsSlice(), t.port, nil
}

// WriteTo implements memberlist.Transport.
func (t *tunnelTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *tunnelTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	ap, in, err := t.route(a.Addr)
	if err != nil {
		return time.Time{}, err
	}
	if !in {
		return t.under.WriteToAddress(b, a)
	}
	_, err = t.pc.WriteTo(b, net.UDPAddrFromAddrPort(ap))
	return time.Now(), err
}

// DialTimeout implements memberlist.Transport.
func (t *tunnelTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *tunnelTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	ap, in, err := t.route(a.Addr)
	if err != nil {
		return nil, err
	}
	if !in {
		return t.under.DialAddressTimeout(a, timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return t.tun.DialTCP(ctx, ap)
}

// PacketCh implements memberlist.Transport.
func (t *tunnelTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// StreamCh implements memberlist.Transport.
func (t *tunnelTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown implements memberlist.Transport. It is idempotent.
func (t *tunnelTransport) Shutdown() error {
	return t.shutdown(func() error {
		t.pc.Close()
		t.ln.Close()
		if t.under != nil {
			return t.under.Shutdown()
		}
		return nil
	})
}

func (t *tunnelTransport) routineTunnelPackets() {
	defer t.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := t.pc.ReadFrom(buf)
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p := &memberlist.Packet{Buf: append([]byte(nil), buf[:n]...), From: from, Timestamp: time.Now()}
		select {
		case t.packets <- p:
		case <-t.done:
			return
		}
	}
}

func (t *tunnelTransport) routineTunnelStreams() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			time.Sleep(10 * time.Millisecond) // a failing accept must not spin
			continue
		}
		select {
		case t.streams <- c:
		case <-t.done:
			c.Close()
			return
		}
	}
}

// spoofed reports whether a came over the underlay claiming a tunnel
// address, which only WireGuard may vouch for.
func (t *tunnelTransport) spoofed(a net.Addr) bool {
	addr, ok := addrOf(a)
	return ok && t.routes.Load().tunnels[addr]
}
