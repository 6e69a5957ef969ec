package netstack

// Egress NAT. With GatewayConfig.Egress the NIC is promiscuous (it accepts
// packets to any address) and spoofing (it replies from any address), and
// the TCP and UDP default handlers are wrapped so that only packets from
// the subnet to outside addresses the policy allows reach the forwarders;
// everything else gets the stack's usual answer (RST, ICMP port
// unreachable), sent from the address the container asked for.
//
//	TCP  SYN ─▶ policy (RST if denied) ─▶ tcp.Forwarder ─▶ go handleTCP:
//	     reserve a flow slot (RST beyond the source's cap), dial the
//	     destination with cfg.Dial (RST on failure), complete the
//	     handshake, then splice: this goroutine copies container → host,
//	     one more copies host → container. EOF in one direction is passed on
//	     as a half-close (FIN); an error in either aborts both.
//	UDP  first datagram ─▶ policy and source cap (ICMP if refused) ─▶
//	     udp.Forwarder ─▶ handleUDP (on the Write goroutine, non-blocking):
//	     reserve a slot, create the connected endpoint, go routineUDPFlow:
//	     dial, then splice as above.
//
// Per flow: two goroutines and two bounded copy buffers, an idle timer
// (time.AfterFunc, no goroutine while idle) that aborts the flow when no
// byte moved for UDPIdle/TCPIdle. Flows are capped per protocol twice: at
// MaxFlowsPerSource for one container (refused with RST or ICMP, so the
// container learns at once) and at MaxFlows for the whole network (dropped
// without an answer: the client retries once others have closed). ICMP
// echo is relayed apart (ping.go); other ICMP is never forwarded: the
// frame filter drops it.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Kinds under which GatewayConfig.Crash counts recovered panics.
const (
	// RecoveredTCP is a panic while setting up or relaying a TCP flow.
	RecoveredTCP = "egress tcp"
	// RecoveredUDP is a panic while setting up or relaying a UDP flow.
	RecoveredUDP = "egress udp"
	// RecoveredCopy is a panic while copying a flow's host side back.
	RecoveredCopy = "egress copy"
)

const (
	dialTimeout  = 15 * time.Second
	tcpCopyBuf   = 32 << 10 // per direction per TCP flow
	pendingRetry = 20 * time.Millisecond
)

// MaxUDPDatagram is the largest UDP payload egress relays, either way;
// larger datagrams (only possible with IP fragmentation, or jumbo frames
// past 16 KiB) are dropped and counted as DropsUDPTooLarge. It bounds a UDP
// flow's two copy buffers to 32 KiB, where a whole 64 KiB datagram each
// would let a network's MaxFlows flows pin half a gigabyte.
const MaxUDPDatagram = 16 << 10

// udpCopyBuf holds one byte more than MaxUDPDatagram, so that a read that
// fills it reveals a truncated datagram.
const udpCopyBuf = MaxUDPDatagram + 1

// Copy buffers: a flow takes one per direction when it starts copying and
// returns it when the direction ends, so memory is bounded by
// 2 × MaxFlows × size per protocol and idle gateways hold none.
var (
	tcpBufPool = sync.Pool{New: func() any { return new([tcpCopyBuf]byte) }}
	udpBufPool = sync.Pool{New: func() any { return new([udpCopyBuf]byte) }}
)

// enableEgress turns the NIC into a NAT: promiscuous, spoofing, forwarders.
func (g *Gateway) enableEgress() error {
	if e := g.stack.SetPromiscuousMode(nicID, true); e != nil {
		return errors.New("cannot make gateway nic promiscuous: " + e.String())
	}
	if e := g.stack.SetSpoofing(nicID, true); e != nil {
		return errors.New("cannot enable spoofing on gateway nic: " + e.String())
	}
	// A handler that returns false leaves the packet to the stack, which
	// answers a TCP segment with a RST and a UDP datagram with an ICMP
	// port unreachable, from the packet's destination (spoofing).
	// Handshakes in progress (each dialling the destination for up to
	// dialTimeout) are bounded by the flow caps, which openFlow checks
	// and counts: MaxFlowsPerSource bounds one container's share. The
	// forwarder's own cap, which drops SYNs silently, is set above
	// MaxFlows so that it never decides first; under a fixed 512, two
	// containers dialling black holes took every slot of the network.
	tf := tcp.NewForwarder(g.stack, 0, 2*g.cfg.MaxFlows, g.handleTCP)
	g.stack.SetTransportProtocolHandler(tcp.ProtocolNumber, func(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
		if !g.isEgress(id) {
			return false
		}
		if g.cfg.Deny.Denies(ProtoTCP, endpointAddr(id)) {
			if isSYN(pkt) {
				g.st.dropDenied.Add(1)
			}
			return false
		}
		return tf.HandlePacket(id, pkt)
	})
	uf := udp.NewForwarder(g.stack, g.handleUDP)
	g.stack.SetTransportProtocolHandler(udp.ProtocolNumber, func(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
		if !g.isEgress(id) {
			return false
		}
		if g.cfg.Deny.Denies(ProtoUDP, endpointAddr(id)) {
			g.st.dropDenied.Add(1)
			return false
		}
		if g.st.udpOpen.Load() >= int64(g.cfg.MaxFlows) {
			g.st.dropFlowLimit.Add(1)
			g.warnLimited("egress udp flow limit reached, dropping new flows", "limit", g.cfg.MaxFlows)
			return true
		}
		if g.sourceFull(false, id) {
			g.st.dropSourceLimit.Add(1)
			g.warnLimited("egress udp flow limit of a container reached, refusing its new flows",
				"limit", g.cfg.MaxFlowsPerSource, "source", endpointSource(id).String())
			return false
		}
		return uf.HandlePacket(id, pkt)
	})
	return nil
}

// isSYN reports whether pkt is a TCP segment opening a connection, so
// that a refused connection is counted once, not once per segment.
func isSYN(pkt *stack.PacketBuffer) bool {
	h := header.TCP(pkt.TransportHeader().Slice())
	return len(h) >= header.TCPMinimumSize && h.Flags()&(header.TCPFlagSyn|header.TCPFlagAck) == header.TCPFlagSyn
}

// isEgress reports whether a packet of id (local = its destination) is a
// container talking to the outside. The frame filter already ensured it;
// this guards the forwarders on their own.
func (g *Gateway) isEgress(id stack.TransportEndpointID) bool {
	if id.LocalAddress.BitLen() != 32 || id.RemoteAddress.BitLen() != 32 {
		return false
	}
	dst, src := id.LocalAddress.As4(), id.RemoteAddress.As4()
	d, s := be32(dst[:]), be32(src[:])
	return g.inSubnet(s) && !g.inSubnet(d) && forwardable(d)
}

// flow is one egress connection: the stack side (sc) and the host side
// (hc), with the wait queue of the stack endpoint.
type flow struct {
	g    *Gateway
	tcp  bool
	src  uint32         // the container's address, for the per-source cap
	dst  netip.AddrPort // the destination, for AbortDenied
	idle time.Duration
	wq   waiter.Queue

	last atomic.Int64 // nanoseconds since g.epoch of the last byte moved

	mu      sync.Mutex
	sc, hc  net.Conn    // guarded by mu; nil until attached
	timer   *time.Timer // guarded by mu
	aborted bool        // guarded by mu
}

// srcFlows counts one source address's open egress flows.
type srcFlows struct{ tcp, udp int }

// refusal is why openFlow did not open a flow.
type refusal int

const (
	admitted     refusal = iota
	refuseClosed         // the gateway is closing
	refuseLimit          // the network's MaxFlows is reached
	refuseSource         // the container's MaxFlowsPerSource is reached
)

// openFlow reserves a slot for a new flow and registers one goroutine with
// g.wg; it reports why not (counting a drop) at a cap or after Close.
func (g *Gateway) openFlow(isTCP bool, id stack.TransportEndpointID) (*flow, refusal) {
	open, total, idle := &g.st.udpOpen, &g.st.udpTotal, g.cfg.UDPIdle
	if isTCP {
		open, total, idle = &g.st.tcpOpen, &g.st.tcpTotal, g.cfg.TCPIdle
	}
	src := id.RemoteAddress.As4()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, refuseClosed
	}
	if open.Load() >= int64(g.cfg.MaxFlows) {
		g.st.dropFlowLimit.Add(1)
		g.warnLimited("egress flow limit reached, dropping new flows", "limit", g.cfg.MaxFlows)
		return nil, refuseLimit
	}
	if g.unlockedSourceFull(isTCP, be32(src[:])) {
		g.st.dropSourceLimit.Add(1)
		g.warnLimited("egress flow limit of a container reached, refusing its new flows",
			"limit", g.cfg.MaxFlowsPerSource, "source", endpointSource(id).String())
		return nil, refuseSource
	}
	open.Add(1)
	total.Add(1)
	f := &flow{g: g, tcp: isTCP, idle: idle, src: be32(src[:]), dst: endpointAddr(id)}
	sf := g.bySource[f.src]
	if sf == nil {
		sf = new(srcFlows)
		g.bySource[f.src] = sf
	}
	if isTCP {
		sf.tcp++
	} else {
		sf.udp++
	}
	f.touch()
	g.flows[f] = struct{}{}
	g.wg.Add(1)
	return f, admitted
}

// sourceFull reports whether the source of id has MaxFlowsPerSource flows
// of the protocol open.
func (g *Gateway) sourceFull(isTCP bool, id stack.TransportEndpointID) bool {
	src := id.RemoteAddress.As4()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.unlockedSourceFull(isTCP, be32(src[:]))
}

func (g *Gateway) unlockedSourceFull(isTCP bool, src uint32) bool {
	sf := g.bySource[src]
	if sf == nil {
		return false
	}
	n := sf.udp
	if isTCP {
		n = sf.tcp
	}
	return n >= g.cfg.MaxFlowsPerSource
}

// AbortDenied ends the open egress flows whose destination the policy
// (GatewayConfig.Deny) now refuses, counting each as refused, and returns
// how many it ended. Whoever changes the policy calls it: a policy change
// alone affects new flows only.
func (g *Gateway) AbortDenied() int {
	var denied []*flow
	g.mu.Lock()
	for f := range g.flows {
		proto := ProtoUDP
		if f.tcp {
			proto = ProtoTCP
		}
		if g.cfg.Deny.Denies(proto, f.dst) {
			denied = append(denied, f)
		}
	}
	g.mu.Unlock()
	for _, f := range denied {
		f.abort()
	}
	g.st.dropDenied.Add(uint64(len(denied)))
	return len(denied)
}

// release undoes openFlow once the flow's goroutines are done.
func (g *Gateway) release(f *flow) {
	f.abort()
	g.mu.Lock()
	delete(g.flows, f)
	if sf := g.bySource[f.src]; sf != nil {
		if f.tcp {
			sf.tcp--
		} else {
			sf.udp--
		}
		if sf.tcp <= 0 && sf.udp <= 0 {
			delete(g.bySource, f.src)
		}
	}
	g.mu.Unlock()
	if f.tcp {
		g.st.tcpOpen.Add(-1)
	} else {
		g.st.udpOpen.Add(-1)
	}
	g.wg.Done()
}

// waitFlows aborts every flow and waits for the egress goroutines. A TCP
// handler may enter its handshake after the stack closed, where only a
// wait-queue notification ends it, so pending flows are nudged until all
// goroutines are gone.
func (g *Gateway) waitFlows() {
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	tick := time.NewTicker(pendingRetry)
	defer tick.Stop()
	var pending []*flow
	for {
		pending = pending[:0]
		g.mu.Lock()
		for f := range g.flows {
			pending = append(pending, f)
		}
		g.mu.Unlock()
		for _, f := range pending {
			f.abort()
		}
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}

// handleTCP runs on a goroutine gVisor starts per SYN (at most
// maxTCPInFlight at once) and lives as long as the connection.
func (g *Gateway) handleTCP(r *tcp.ForwarderRequest) {
	var f *flow
	completed := false
	complete := func(rst bool) {
		if !completed { // a second Complete panics in gVisor
			completed = true
			r.Complete(rst)
		}
	}
	defer g.cfg.Crash.Recover(RecoveredTCP, func() {
		complete(true)
		if f != nil {
			f.abort()
		}
	})
	f, why := g.openFlow(true, r.ID())
	if why != admitted {
		// Over its own cap the container is told at once; over the
		// network's cap its SYN is dropped and retried.
		complete(why == refuseSource)
		return
	}
	defer g.release(f)
	hc, err := g.dial(f, "tcp")
	if err != nil {
		complete(true)
		return
	}
	ep, terr := r.CreateEndpoint(&f.wq)
	complete(false)
	if terr != nil {
		hc.Close()
		return
	}
	if !f.attach(gonet.NewTCPConn(&f.wq, ep), hc) {
		return
	}
	f.splice(tcpCopy)
}

// handleUDP runs on the goroutine that called Write, for the first
// datagram of a flow; it must not block.
func (g *Gateway) handleUDP(r *udp.ForwarderRequest) {
	f, why := g.openFlow(false, r.ID())
	if why != admitted {
		return
	}
	ep, terr := r.CreateEndpoint(&f.wq)
	if terr != nil {
		g.release(f)
		return
	}
	sc := gonet.NewUDPConn(&f.wq, ep)
	go g.routineUDPFlow(f, sc)
}

// routineUDPFlow dials the destination of a UDP flow and splices it.
func (g *Gateway) routineUDPFlow(f *flow, sc net.Conn) {
	defer g.cfg.Crash.Recover(RecoveredUDP, func() {
		f.abort()
		sc.Close()
	})
	defer g.release(f)
	hc, err := g.dial(f, "udp")
	if err != nil {
		sc.Close()
		return
	}
	if f.attach(sc, hc) {
		f.splice(udpCopy)
	}
}

// dial opens the host side of f, bounded by dialTimeout and Close.
func (g *Gateway) dial(f *flow, network string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(g.ctx, dialTimeout)
	defer cancel()
	c, err := g.cfg.Dial(ctx, network, f.dst.String())
	if err != nil {
		g.st.dialErrors.Add(1)
		if g.l.Enabled(context.Background(), slog.LevelDebug) {
			g.l.Debug("egress dial failed", "error", err, "proto", network, "address", f.dst.String())
		}
		return nil, err
	}
	return c, nil
}

// attach gives f its two connections and starts the idle timer; if f was
// aborted meanwhile (Close), it closes them and reports false.
func (f *flow) attach(sc, hc net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.aborted {
		sc.Close()
		hc.Close()
		return false
	}
	f.sc, f.hc = sc, hc
	f.touch()
	f.timer = time.AfterFunc(f.idle, f.checkIdle)
	return true
}

// abort closes both sides, which ends both copy loops, and wakes a pending
// handshake. It is idempotent in effect.
func (f *flow) abort() {
	f.mu.Lock()
	f.aborted = true
	sc, hc, t := f.sc, f.hc, f.timer
	f.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	if sc != nil {
		sc.Close()
	}
	if hc != nil {
		hc.Close()
	}
	f.wq.Notify(waiter.EventHUp | waiter.EventErr | waiter.ReadableEvents | waiter.WritableEvents)
}

// touch records activity.
func (f *flow) touch() { f.last.Store(int64(time.Since(f.g.epoch))) }

// checkIdle runs on the idle timer: abort when idle, else re-arm for the
// remaining time.
func (f *flow) checkIdle() {
	idle := time.Since(f.g.epoch) - time.Duration(f.last.Load())
	if idle >= f.idle {
		f.abort()
		return
	}
	f.mu.Lock()
	if !f.aborted {
		f.timer.Reset(f.idle - idle)
	}
	f.mu.Unlock()
}

// splice copies both ways until both directions end: host → stack on a
// new goroutine, stack → host on this one.
func (f *flow) splice(copyFn func(f *flow, dst, src net.Conn)) {
	f.g.wg.Add(1)
	back := make(chan struct{})
	go func() {
		defer f.g.cfg.Crash.Recover(RecoveredCopy, f.abort)
		defer f.g.wg.Done()
		defer close(back)
		copyFn(f, f.sc, f.hc)
	}()
	copyFn(f, f.hc, f.sc)
	<-back
}

type closeWriter interface{ CloseWrite() error }

// tcpCopy copies one direction of a TCP flow. A clean EOF is passed on as
// a half-close; an error, or a peer that cannot half-close, aborts the
// flow.
func tcpCopy(f *flow, dst, src net.Conn) {
	buf := tcpBufPool.Get().(*[tcpCopyBuf]byte)
	defer tcpBufPool.Put(buf)
	for {
		n, rerr := src.Read(buf[:])
		if n > 0 {
			f.touch()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				f.abort()
				return
			}
		}
		if rerr == nil {
			continue
		}
		if rerr != io.EOF {
			f.abort()
			return
		}
		if cw, ok := dst.(closeWriter); !ok || cw.CloseWrite() != nil {
			f.abort()
		}
		return
	}
}

// udpCopy copies datagrams one way. ICMP errors surfacing on the host
// socket (ECONNREFUSED) do not end the flow; other errors abort it. A
// datagram larger than MaxUDPDatagram fills the buffer (both sides
// truncate silently) and is dropped rather than relayed cut short.
func udpCopy(f *flow, dst, src net.Conn) {
	buf := udpBufPool.Get().(*[udpCopyBuf]byte)
	defer udpBufPool.Put(buf)
	for {
		n, rerr := src.Read(buf[:])
		if rerr != nil {
			if errors.Is(rerr, syscall.ECONNREFUSED) {
				continue
			}
			f.abort()
			return
		}
		f.touch()
		if n > MaxUDPDatagram {
			f.g.st.dropUDPTooLarge.Add(1)
			continue
		}
		if _, werr := dst.Write(buf[:n]); werr != nil && !errors.Is(werr, syscall.ECONNREFUSED) {
			f.abort()
			return
		}
	}
}

// endpointAddr is the destination of a forwarded connection.
func endpointAddr(id stack.TransportEndpointID) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4(id.LocalAddress.As4()), id.LocalPort)
}

// endpointSource is the container address of a forwarded connection.
func endpointSource(id stack.TransportEndpointID) netip.Addr {
	return netip.AddrFrom4(id.RemoteAddress.As4())
}
