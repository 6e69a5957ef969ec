package netstack

// ICMP echo egress: a container's ping to an address outside the overlay
// is answered through the gateway, NATed like TCP and UDP. gVisor is not
// involved: in promiscuous mode it would answer every echo itself, for any
// address, so the frame filter hands echo requests here instead.
//
//	echo request, from the subnet to outside (admitIPv4 → verdictEcho)
//	  ─▶ ParseEcho (malformed: dropped, counted)
//	  ─▶ policy (Deny, ProtoICMP: only rules without a port match)
//	       refused ─▶ ICMP unreachable "administratively prohibited" from
//	                  the gateway (the answer a TCP RST gives), counted
//	  ─▶ flow of (source, destination, identifier): found, or opened
//	       within MaxFlowsPerSource (refused as above) and MaxFlows
//	       (dropped: the next request tries again)
//	  ─▶ EchoConn.Send: the host sends its own echo request
//	routineEcho, one per flow: EchoConn.Recv ─▶ echo reply frame to the
//	  container (from the destination, with the container's identifier),
//	  queued like the stack's own frames; closes after UDPIdle without a
//	  request or reply, or on Close
//
// The host side is an ICMP datagram socket ("ping socket", SOCK_DGRAM
// with IPPROTO_ICMP), which needs no privilege when the daemon's group is
// in net.ipv4.ping_group_range (systemd's default allows every group);
// the kernel then picks the identifier and hands each socket only its own
// replies. Where the range refuses it, a raw ICMP socket connected to the
// destination is used, which needs CAP_NET_RAW; it sees every echo reply
// from the destination, so replies are matched by the identifier the flow
// chose. Without either, echo egress is off and requests are dropped.

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxwire/vxwire/internal/ether"
	"github.com/vxwire/vxwire/internal/ipv4"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// RecoveredEcho is the kind under which GatewayConfig.Crash counts a
// panic while relaying an ICMP echo flow.
const RecoveredEcho = "egress icmp"

// ProtoICMP selects ICMP echo in EgressPolicy.Denies. Rules for ProtoAny
// without a port refuse it too; rules with a port never do.
const ProtoICMP Proto = 1

// EchoConn is the host side of one ICMP echo flow to one destination.
// Send and Recv may be called concurrently; Close ends a pending Recv.
type EchoConn interface {
	// Send sends an echo request with seq and data, without blocking:
	// it runs on the switch's goroutines.
	Send(seq uint16, data []byte) error
	// Recv waits until deadline for the next echo reply of the flow and
	// returns its sequence number and payload (data aliases buf).
	Recv(buf []byte, deadline time.Time) (seq uint16, data []byte, err error)
	// Close closes the connection.
	Close() error
}

// echoKey identifies an echo flow.
type echoKey struct {
	src, dst uint32
	id       uint16
}

// echoFlow is one container's pings to one destination.
type echoFlow struct {
	key  echoKey
	mac  [6]byte // the container's, for the replies
	conn EchoConn
	last atomic.Int64 // nanoseconds since g.epoch of the last echo either way
}

// echoState is the gateway's echo flows, guarded by Gateway.mu.
type echoState struct {
	flows    map[echoKey]*echoFlow
	bySource map[uint32]int
	open     atomic.Int64
	total    atomic.Uint64
}

// handleEcho relays one echo request frame f (from admitIPv4). It runs on
// the writer's goroutine and does not block beyond a send.
func (g *Gateway) handleEcho(f []byte) {
	e, ok := ipv4.ParseEcho(f[ether.HeaderLen:])
	if !ok || e.Type != ipv4.ICMPEchoRequest {
		g.st.dropMalformed.Add(1)
		return
	}
	dst := netip.AddrFrom4(e.Dst)
	if g.cfg.Deny.Denies(ProtoICMP, netip.AddrPortFrom(dst, 0)) {
		g.st.dropDenied.Add(1)
		g.refuseEcho(f)
		return
	}
	k := echoKey{be32(e.Src[:]), be32(e.Dst[:]), e.ID}
	fl, why := g.echoFlowFor(k, [6]byte(f[ether.OffSrc:ether.OffSrc+6]), dst)
	switch why {
	case refuseSource:
		g.refuseEcho(f)
		return
	case admitted:
	default:
		return
	}
	fl.touch(g)
	if err := fl.conn.Send(e.Seq, e.Data); err != nil {
		g.st.dialErrors.Add(1)
	}
}

// echoFlowFor returns the flow of k, opening it (and its goroutine) if
// needed within the caps.
func (g *Gateway) echoFlowFor(k echoKey, mac [6]byte, dst netip.Addr) (*echoFlow, refusal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, refuseClosed
	}
	if fl := g.echo.flows[k]; fl != nil {
		return fl, admitted
	}
	if g.echo.open.Load() >= int64(g.cfg.MaxFlows) {
		g.st.dropFlowLimit.Add(1)
		g.warnLimited("egress icmp flow limit reached, dropping new flows", "limit", g.cfg.MaxFlows)
		return nil, refuseLimit
	}
	if g.echo.bySource[k.src] >= g.cfg.MaxFlowsPerSource {
		g.st.dropSourceLimit.Add(1)
		g.warnLimited("egress icmp flow limit of a container reached, refusing its new flows",
			"limit", g.cfg.MaxFlowsPerSource, "source", netip.AddrFrom4([4]byte{byte(k.src >> 24), byte(k.src >> 16), byte(k.src >> 8), byte(k.src)}).String())
		return nil, refuseSource
	}
	c, err := g.cfg.DialEcho(dst)
	if err != nil {
		g.st.dialErrors.Add(1)
		return nil, refuseLimit
	}
	fl := &echoFlow{key: k, mac: mac, conn: c}
	fl.touch(g)
	if g.echo.flows == nil {
		g.echo.flows = make(map[echoKey]*echoFlow)
		g.echo.bySource = make(map[uint32]int)
	}
	g.echo.flows[k] = fl
	g.echo.bySource[k.src]++
	g.echo.open.Add(1)
	g.echo.total.Add(1)
	g.wg.Add(1)
	go g.routineEcho(fl)
	return fl, admitted
}

func (fl *echoFlow) touch(g *Gateway) { fl.last.Store(int64(time.Since(g.epoch))) }

// routineEcho relays the replies of fl until it idles out or the gateway
// closes.
func (g *Gateway) routineEcho(fl *echoFlow) {
	defer g.wg.Done()
	defer g.releaseEcho(fl)
	defer g.cfg.Crash.Recover(RecoveredEcho, func() {})
	buf := make([]byte, ether.HeaderLen+ipv4.MinHeaderLen+ipv4.ICMPHeaderLen+g.cfg.MTU)
	data := buf[ether.HeaderLen+ipv4.MinHeaderLen+ipv4.ICMPHeaderLen:]
	for !g.closing.Load() {
		idle := time.Since(g.epoch) - time.Duration(fl.last.Load())
		if idle >= g.cfg.UDPIdle {
			return
		}
		seq, payload, err := fl.conn.Recv(data, time.Now().Add(min(g.cfg.UDPIdle-idle, time.Second)))
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // deadline, or an ICMP error surfacing on the socket
		}
		fl.touch(g)
		g.sendEchoReply(fl, seq, payload, buf)
	}
}

// sendEchoReply queues, towards the container of fl, the echo reply with
// seq and payload (which must lie in buf after the headers, or anywhere
// outside the first headers' bytes of buf).
func (g *Gateway) sendEchoReply(fl *echoFlow, seq uint16, payload, buf []byte) {
	k := fl.key
	e := ipv4.Echo{
		Src:  [4]byte{byte(k.dst >> 24), byte(k.dst >> 16), byte(k.dst >> 8), byte(k.dst)},
		Dst:  [4]byte{byte(k.src >> 24), byte(k.src >> 16), byte(k.src >> 8), byte(k.src)},
		Type: ipv4.ICMPEchoReply, ID: k.id, Seq: seq, TTL: 63, Data: payload,
	}
	frame := make([]byte, ether.HeaderLen+ipv4.EchoLen(&e))
	copy(frame[ether.OffDst:], fl.mac[:])
	copy(frame[ether.OffSrc:], g.mac[:])
	frame[ether.OffType], frame[ether.OffType+1] = ether.TypeIPv4>>8, ether.TypeIPv4&0xff
	ipv4.PutEcho(frame[ether.HeaderLen:], &e)
	g.queueFrame(frame)
}

// refuseEcho answers the echo request frame f with ICMP "communication
// administratively prohibited" from the gateway.
func (g *Gateway) refuseEcho(f []byte) {
	frame := make([]byte, ether.HeaderLen+ipv4.MaxUnreachableLen)
	n := ipv4.Unreachable(frame[ether.HeaderLen:], f[ether.HeaderLen:], g.gw, ipv4.ICMPCodeAdminDenied, 0)
	if n == 0 {
		return
	}
	copy(frame[ether.OffDst:], f[ether.OffSrc:ether.OffSrc+6])
	copy(frame[ether.OffSrc:], g.mac[:])
	frame[ether.OffType], frame[ether.OffType+1] = ether.TypeIPv4>>8, ether.TypeIPv4&0xff
	g.queueFrame(frame[:ether.HeaderLen+n])
}

// queueFrame puts a whole Ethernet frame on the gateway's outbound queue,
// where Read picks it up with the stack's own frames.
func (g *Gateway) queueFrame(frame []byte) {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	_ = g.link.WritePacket(pkt) // a full queue counts the drop
	pkt.DecRef()
}

// releaseEcho forgets fl and closes its connection.
func (g *Gateway) releaseEcho(fl *echoFlow) {
	fl.conn.Close()
	g.mu.Lock()
	delete(g.echo.flows, fl.key)
	if g.echo.bySource[fl.key.src]--; g.echo.bySource[fl.key.src] <= 0 {
		delete(g.echo.bySource, fl.key.src)
	}
	g.mu.Unlock()
	g.echo.open.Add(-1)
}

// closeEcho closes every echo flow's connection, which ends its goroutine.
func (g *Gateway) closeEcho() {
	var conns []EchoConn
	g.mu.Lock()
	for _, fl := range g.echo.flows {
		conns = append(conns, fl.conn)
	}
	g.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// echoOpener remembers which kind of socket works, once tried.
type echoOpener struct {
	mu  sync.Mutex
	raw bool // the ping socket was refused: use raw sockets
	id  atomic.Uint32
}

// defaultEcho opens echo flows for every gateway of the process.
var defaultEcho echoOpener

// DialEcho opens the host side of an echo flow to dst: an ICMP datagram
// socket, or a raw ICMP socket where net.ipv4.ping_group_range refuses
// the former (see the top of this file).
func DialEcho(dst netip.Addr) (EchoConn, error) { return defaultEcho.dial(dst) }
