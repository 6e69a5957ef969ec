package netstack

// The inner stack. A WireGuard tunnel is an IP tunnel: besides the VXLAN
// datagrams of encrypted networks it can carry any IPv4 packet between two
// hosts' tunnel addresses, authenticated by WireGuard (its allowed-ips
// check binds the inner source address to the peer's key). The inner
// stack is a small TCP/IP stack on this host's tunnel address, fed with
// the inner packets that are not VXLAN, so that the control plane can talk
// to a peer that has no underlay address (a laptop behind NAT) inside its
// tunnel, with no kernel interface:
//
//	crypto.Device (decrypted, not VXLAN) ──Deliver──▶ channel endpoint ─▶ gVisor IPv4/UDP/TCP ─▶ gonet conns
//	gonet conns ─▶ gVisor ─▶ channel endpoint ─▶ routineSend ─▶ send(pkt) ─▶ crypto.Device (encrypt)

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/vxwire/vxwire/internal/safe"
)

// innerQueueLen bounds the packets the inner stack may have waiting for
// send; beyond it gVisor drops, and TCP retransmits.
const innerQueueLen = 256

// InnerStack is a userspace IPv4 stack (UDP and TCP) on one address, with
// no link layer: it takes whole IPv4 packets in (Deliver) and hands whole
// IPv4 packets to a send function. It is safe for concurrent use.
type InnerStack struct {
	l      *slog.Logger
	addr   netip.Addr
	stack  *stack.Stack
	ep     *channel.Endpoint
	cancel context.CancelFunc
	done   chan struct{}
	close  sync.Once
}

// NewInnerStack starts a stack on addr (an IPv4 address) with the given
// MTU. Every packet it sends goes to send, from one goroutine; send must
// copy what it keeps. Close stops it. A panic of the sending goroutine
// (in send, or in gVisor's queue) goes to crash, which logs its stack and
// stops the daemon.
func NewInnerStack(addr netip.Addr, mtu int, send func(pkt []byte), l *slog.Logger, crash safe.Reporter) (*InnerStack, error) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	addr = addr.Unmap()
	if !addr.Is4() {
		return nil, fmt.Errorf("inner stack address %v is not ipv4", addr)
	}
	if mtu < minMTU || mtu > maxMTU {
		return nil, fmt.Errorf("inner stack mtu %d is outside %d-%d", mtu, minMTU, maxMTU)
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	ep := channel.New(innerQueueLen, uint32(mtu), "")
	if e := s.CreateNIC(nicID, ep); e != nil {
		s.Destroy()
		return nil, fmt.Errorf("cannot create inner nic: %s", e)
	}
	pa := tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddrFrom4(addr.As4()).WithPrefix(),
	}
	if e := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); e != nil {
		s.Destroy()
		return nil, fmt.Errorf("cannot add inner address %s: %s", addr, e)
	}
	// Every destination goes into the tunnel; WireGuard drops what no
	// peer's allowed-ips covers.
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}})
	ctx, cancel := context.WithCancel(context.Background())
	is := &InnerStack{l: l, addr: addr, stack: s, ep: ep, cancel: cancel, done: make(chan struct{})}
	crash.Go("inner stack send", func() { is.routineSend(ctx, send) })
	return is, nil
}

// routineSend hands each packet the stack sends to send.
func (is *InnerStack) routineSend(ctx context.Context, send func([]byte)) {
	defer close(is.done)
	var b []byte
	for {
		pkt := is.ep.ReadContext(ctx)
		if pkt == nil {
			return
		}
		b = b[:0]
		for _, s := range pkt.AsSlices() {
			b = append(b, s...)
		}
		pkt.DecRef()
		send(b)
	}
}

// Deliver gives the stack an inbound IPv4 packet; it is copied. Packets
// not addressed to the stack's address, and malformed ones, are dropped
// by the stack.
func (is *InnerStack) Deliver(pkt []byte) {
	if len(pkt) < header.IPv4MinimumSize {
		return
	}
	pb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
	is.ep.InjectInbound(ipv4.ProtocolNumber, pb)
	pb.DecRef()
}

// Addr is the stack's address.
func (is *InnerStack) Addr() netip.Addr { return is.addr }

func (is *InnerStack) full(port uint16) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(is.addr.As4()), Port: port}
}

// ListenUDP opens a UDP socket on the stack's address and port.
func (is *InnerStack) ListenUDP(port uint16) (net.PacketConn, error) {
	local := is.full(port)
	c, err := gonet.DialUDP(is.stack, &local, nil, ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on inner udp %s:%d: %w", is.addr, port, err)
	}
	return c, nil
}

// ListenTCP opens a TCP listener on the stack's address and port.
func (is *InnerStack) ListenTCP(port uint16) (net.Listener, error) {
	ln, err := gonet.ListenTCP(is.stack, is.full(port), ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on inner tcp %s:%d: %w", is.addr, port, err)
	}
	return ln, nil
}

// DialTCP opens a TCP connection from the stack's address to dst.
func (is *InnerStack) DialTCP(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
	remote := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(dst.Addr().Unmap().As4()), Port: dst.Port()}
	c, err := gonet.DialTCPWithBind(ctx, is.stack, is.full(0), remote, ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("cannot dial inner tcp %s: %w", dst, err)
	}
	return c, nil
}

// Close stops the stack; open conns fail afterwards. It is idempotent.
func (is *InnerStack) Close() {
	is.close.Do(func() {
		is.cancel()
		<-is.done
		is.stack.Close()
		is.ep.Close()
		is.stack.Wait()
	})
}
