package netstack

import (
	"context"
	"errors"
	"fmt"
	"github.com/vxwire/vxwire/internal/ether"
	vxip "github.com/vxwire/vxwire/internal/ipv4"
	"github.com/vxwire/vxwire/internal/safe"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// outQueueLen bounds the packets queued between the stack and Read. The
// gateway's TCP senders (egress downloads, TCP DNS) have no pacing and burst
// up to their window; a queue longer than one default 1 MiB send buffer
// (about 740 segments) lets a single bulk flow be paced by its window rather
// than by tail drops and timeouts, which collapsed egress downloads to tens
// of MB/s with 512 slots. For TCP the slots hold references to buffers the
// send queue keeps anyway; the worst case for other traffic is about
// 2048 × (MTU+14) bytes.
const outQueueLen = 2048

// TCPBufferSize bounds the receive and the send buffer of each TCP
// connection of a gateway's stack (egress flows, published ports, DNS),
// which gVisor would otherwise start at 1 MiB and grow to 4 MiB each by
// auto-tuning. With the per-container cap of egress flows it bounds what
// one container can make the daemon hold: data it sends faster than the
// destination takes waits on the receive side (up to about twice this,
// with the segments queued ahead of the buffer), data the destination
// sends faster than the container reads waits in the send buffer; each
// flow adds its two copy buffers. That is under 1 MiB a flow, so about
// 208 MiB for a container's 256 TCP flows, where auto-tuning allowed
// gigabytes. 256 KiB covers the bandwidth times the delay of the
// gateway's only TCP leg, to a container of this host (well under a
// millisecond; egress throughput measured the same as with the
// defaults); the long leg is the host kernel's.
const TCPBufferSize = 256 << 10

// HostTCPReceiveBuffer is the largest receive buffer of a host
// endpoint's TCP connections (GatewayConfig.TCPReceiveMax): they start at
// TCPBufferSize and grow with what the daemon's relay reads per round
// trip (gVisor's receive-buffer auto-tuning), so a download through
// SOCKS5 or a forward is not held to 256 KiB per round trip, which with
// the round trips of a loaded host capped it near 2 Gbit/s. A connection
// whose local client reads slowly stays small; the doors' caps on
// connections bound the rest.
const HostTCPReceiveBuffer = 4 << 20

const (
	nicID        = tcpip.NICID(1)
	defaultBatch = 64
	defaultFlows = 4096
	// defaultSourceFlows caps one container's egress flows per protocol,
	// so that one container cannot take a network's whole MaxFlows.
	defaultSourceFlows = 256
	defaultUDPTTL      = 30 * time.Second
	defaultTCPTTL      = 2 * time.Hour
	minMTU             = vxip.MinDatagramLen
	maxMTU             = 65535 - ether.HeaderLen
)

// GatewayConfig configures a Gateway. The zero value of every optional
// field selects its default.
type GatewayConfig struct {
	// MAC is the gateway's Ethernet address; it must be unicast.
	MAC net.HardwareAddr
	// Addr is the gateway's IPv4 address with the network's prefix length,
	// for example 10.77.0.1/24. It must not be the network or broadcast
	// address of the prefix.
	Addr netip.Prefix
	// MTU is the network's IP MTU, 576 to 65521.
	MTU int
	// Egress enables NAT of TCP and UDP connections from the subnet to
	// addresses outside it, through host sockets opened with Dial.
	Egress bool
	// Dial opens the host side of an egress flow ("tcp" or "udp", with an
	// "ip:port" address). It runs in the daemon's own network namespace.
	// Default: a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Deny refuses egress destinations (TCP with a RST, UDP with an ICMP
	// port unreachable) on top of the built-in classes (builtinDeny: loopback, link-local, multicast and reserved). It
	// may be shared by several gateways and changed while they run; nil
	// refuses only the built-in classes.
	Deny *EgressPolicy
	// DialEcho opens the host side of an ICMP echo egress flow (see
	// ping.go). Default: DialEcho.
	DialEcho func(dst netip.Addr) (EchoConn, error)
	// Batch is the largest number of frames one Read returns; default 64.
	Batch int
	// MaxFlows caps concurrent egress flows per protocol (TCP and UDP
	// separately); new flows beyond it are dropped and counted. Default 4096.
	MaxFlows int
	// MaxFlowsPerSource caps concurrent egress flows per protocol of one
	// source address (one container); new flows beyond it are refused
	// like denied destinations and counted. Default 256.
	MaxFlowsPerSource int
	// UDPIdle closes a UDP egress flow after this long without a datagram
	// in either direction; default 30 s.
	UDPIdle time.Duration
	// TCPIdle closes a TCP egress connection after this long without data
	// in either direction; default 2 h.
	TCPIdle time.Duration
	// TCPReceiveMax, if above TCPBufferSize, lets each TCP connection's
	// receive buffer grow from TCPBufferSize up to it with the rate its
	// application reads (auto-tuning). Default: TCPBufferSize, fixed.
	TCPReceiveMax int
	// Crash receives panics of the egress goroutines: a panic while
	// serving one flow is logged, counted and closes only that flow.
	// TCP flows run on goroutines gVisor starts, which the handler
	// recovers in; gVisor's own goroutines cannot be wrapped.
	Crash safe.Reporter
}

// GatewayStats is a snapshot of a Gateway's counters.
type GatewayStats struct {
	FramesIn  uint64 // frames Write handed to the stack
	FramesOut uint64 // frames Read returned

	DropsQueueFull uint64 // outbound packets dropped: Read fell behind by more than the queue
	DropsIPv6      uint64 // IPv6 frames (the gateway is IPv4 only)
	DropsFiltered  uint64 // frames not for the gateway: other MACs, ARP for other addresses, destinations not served
	DropsMalformed uint64 // truncated frames and unknown EtherTypes
	DropsOversize  uint64 // outbound frames larger than the caller's buffer
	DropsFlowLimit uint64 // egress flows refused at MaxFlows

	DropsEgressDenied uint64 // egress to a refused destination (built-in class or Deny)
	DropsSourceLimit  uint64 // egress flows refused at MaxFlowsPerSource
	DropsUDPTooLarge  uint64 // egress UDP datagrams over MaxUDPDatagram bytes, either way

	DialErrors     uint64 // egress dials that failed (TCP ones are answered with RST)
	TCPFlowsOpen   uint64 // egress TCP connections open now, dials included
	TCPFlowsTotal  uint64 // egress TCP connections accepted since start
	UDPFlowsOpen   uint64 // egress UDP flows open now
	UDPFlowsTotal  uint64 // egress UDP flows accepted since start
	EchoFlowsOpen  uint64 // egress ICMP echo flows open now
	EchoFlowsTotal uint64 // egress ICMP echo flows accepted since start
}

// Gateway is a network's gateway: a userspace TCP/IP stack that owns the
// gateway address, attached to the network's switch as a port. Write is
// safe for concurrent use; Wait and Read must be called from one goroutine
// (the port's reader); the other methods are safe for concurrent use.
type Gateway struct {
	l      *slog.Logger
	cfg    GatewayConfig
	prefix netip.Prefix // masked
	gw     [4]byte      // gateway address
	mac    [6]byte
	netU32 uint32 // subnet base, for the frame filter
	mask   uint32

	stack *stack.Stack
	link  *link

	// scratch receives popped packets; only Read touches it.
	scratch []*stack.PacketBuffer

	ctx    context.Context // cancelled by Close; bounds egress dials
	cancel context.CancelFunc
	epoch  time.Time // flow activity is kept as nanoseconds since epoch

	mu        sync.Mutex
	closed    bool                   // guarded by mu
	closers   map[io.Closer]struct{} // listeners handed out; guarded by mu
	flows     map[*flow]struct{}     // open egress flows; guarded by mu
	bySource  map[uint32]*srcFlows   // open egress flows per source address; guarded by mu
	wg        sync.WaitGroup         // egress goroutines
	closing   atomic.Bool            // fast-path copy of closed
	closeOnce sync.Once
	lastWarn  atomic.Int64 // unix nanoseconds of the last rate-limited warning
	echo      echoState    // ICMP echo egress (ping.go)

	st counters
}

// counters are the gateway's statistics, updated atomically.
type counters struct {
	framesIn, framesOut                   atomic.Uint64
	dropIPv6, dropFiltered, dropMalformed atomic.Uint64
	dropOversize, dropFlowLimit           atomic.Uint64
	dropDenied, dropSourceLimit           atomic.Uint64
	dropUDPTooLarge                       atomic.Uint64
	dialErrors                            atomic.Uint64
	tcpOpen, udpOpen                      atomic.Int64
	tcpTotal, udpTotal                    atomic.Uint64
}

// NewGateway builds the gateway's stack: one Ethernet NIC with cfg.Addr,
// a route to the subnet and, with cfg.Egress, the NAT forwarders. A nil
// logger discards. The caller attaches the Gateway to the switch and must
// Close it.
func NewGateway(cfg GatewayConfig, l *slog.Logger) (*Gateway, error) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	g := &Gateway{
		l:        l,
		cfg:      cfg,
		prefix:   cfg.Addr.Masked(),
		gw:       cfg.Addr.Addr().As4(),
		scratch:  make([]*stack.PacketBuffer, cfg.Batch),
		epoch:    time.Now(),
		closers:  make(map[io.Closer]struct{}),
		flows:    make(map[*flow]struct{}),
		bySource: make(map[uint32]*srcFlows),
	}
	copy(g.mac[:], cfg.MAC)
	base := g.prefix.Addr().As4()
	g.netU32 = be32(base[:])
	g.mask = ^uint32(0) << (32 - cfg.Addr.Bits())
	g.ctx, g.cancel = context.WithCancel(context.Background())
	if err := g.buildStack(); err != nil {
		g.cancel()
		return nil, err
	}
	return g, nil
}

func (c *GatewayConfig) validate() error {
	if len(c.MAC) != 6 || c.MAC[0]&1 != 0 || [6]byte(c.MAC) == [6]byte{} {
		return fmt.Errorf("gateway mac %q is not a unicast ethernet address", c.MAC)
	}
	a := c.Addr.Addr()
	if !c.Addr.IsValid() || !a.Is4() {
		return fmt.Errorf("gateway address %q is not an ipv4 prefix", c.Addr)
	}
	if b := c.Addr.Bits(); b < 1 || b > 30 {
		return fmt.Errorf("gateway prefix length %d is outside 1-30", b)
	}
	if a == c.Addr.Masked().Addr() || a == vxip.Broadcast(c.Addr) {
		return fmt.Errorf("gateway address %s is the network or broadcast address of its prefix", c.Addr)
	}
	if c.MTU < minMTU || c.MTU > maxMTU {
		return fmt.Errorf("gateway mtu %d is outside %d-%d", c.MTU, minMTU, maxMTU)
	}
	if c.Batch < 0 || c.MaxFlows < 0 || c.MaxFlowsPerSource < 0 || c.UDPIdle < 0 || c.TCPIdle < 0 || c.TCPReceiveMax < 0 {
		return errors.New("gateway batch, flow caps, idle timeouts and buffer sizes must not be negative")
	}
	return nil
}

func (c *GatewayConfig) setDefaults() {
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	if c.Batch == 0 {
		c.Batch = defaultBatch
	}
	if c.MaxFlows == 0 {
		c.MaxFlows = defaultFlows
	}
	if c.MaxFlowsPerSource == 0 {
		c.MaxFlowsPerSource = defaultSourceFlows
	}
	if c.UDPIdle == 0 {
		c.UDPIdle = defaultUDPTTL
	}
	if c.DialEcho == nil {
		c.DialEcho = DialEcho
	}
	if c.TCPIdle == 0 {
		c.TCPIdle = defaultTCPTTL
	}
}

// buildStack creates the stack, its NIC, address, route and forwarders.
func (g *Gateway) buildStack() (err error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	success := false
	defer func() {
		if !success {
			s.Destroy()
		}
	}()
	sack := tcpip.TCPSACKEnabled(true)
	if e := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); e != nil {
		return fmt.Errorf("cannot enable tcp sack: %s", e)
	}
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: TCPBufferSize, Max: max(TCPBufferSize, g.cfg.TCPReceiveMax)}
	if e := s.SetTransportProtocolOption(tcp.ProtocolNumber, &rcv); e != nil {
		return fmt.Errorf("cannot bound tcp receive buffers: %s", e)
	}
	if rcv.Max > rcv.Default {
		tune := tcpip.TCPModerateReceiveBufferOption(true)
		if e := s.SetTransportProtocolOption(tcp.ProtocolNumber, &tune); e != nil {
			return fmt.Errorf("cannot auto-tune tcp receive buffers: %s", e)
		}
	}
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: TCPBufferSize, Max: TCPBufferSize}
	if e := s.SetTransportProtocolOption(tcp.ProtocolNumber, &snd); e != nil {
		return fmt.Errorf("cannot bound tcp send buffers: %s", e)
	}
	g.link = newLink(uint32(g.cfg.MTU), g.cfg.MAC, outQueueLen)
	if e := s.CreateNICWithOptions(nicID, ethernet.New(g.link), stack.NICOptions{Name: "gateway", QDisc: g.link}); e != nil {
		return fmt.Errorf("cannot create gateway nic: %s", e)
	}
	pa := tcpip.ProtocolAddress{
		Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{
			Address:   tcpip.AddrFrom4(g.gw),
			PrefixLen: g.cfg.Addr.Bits(),
		},
	}
	if e := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); e != nil {
		return fmt.Errorf("cannot add gateway address %s: %s", g.cfg.Addr, e)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: pa.AddressWithPrefix.Subnet(), NIC: nicID}})
	g.stack = s
	if g.cfg.Egress {
		if err := g.enableEgress(); err != nil {
			return err
		}
	}
	success = true
	return nil
}

// Wait blocks until Read would return frames or the gateway is closed, in
// which case it returns net.ErrClosed. Wakeups may be spurious.
func (g *Gateway) Wait() error { return g.link.wait() }

// Read stores frames the stack sent, Ethernet header included, at
// bufs[i][offset:offset+sizes[i]] and returns how many; it never blocks and
// may return 0. Each buffer needs offset+MTU()+14 bytes; a frame that does
// not fit is dropped and counted. Read is not safe for concurrent use.
func (g *Gateway) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	k := min(len(bufs), len(sizes), len(g.scratch))
	k, err := g.link.pop(g.scratch[:k])
	if err != nil {
		return 0, err
	}
	n := 0
	for i, pkt := range g.scratch[:k] {
		g.scratch[i] = nil
		dst := bufs[n][offset:]
		size := pkt.Size()
		if size > len(dst) {
			pkt.DecRef()
			g.st.dropOversize.Add(1)
			continue
		}
		copyOut(dst, pkt)
		pkt.DecRef()
		g.fixARP(dst[:size])
		sizes[n] = size
		n++
	}
	g.st.framesOut.Add(uint64(n))
	return n, nil
}

// Write hands frames to the stack. Frames are borrowed only for the call:
// each is copied into a stack buffer, and a run of consecutive segments
// of one TCP flow into one (coalesce.go); the frames of a run after its
// first have its Ethernet and IP addresses, so the filter's verdict on
// the first is theirs. Frames the gateway does not serve are dropped and
// counted (see GatewayStats). It returns len(frames), or net.ErrClosed
// after Close. Write is safe for concurrent use.
func (g *Gateway) Write(frames [][]byte) (int, error) {
	if g.closing.Load() {
		return 0, net.ErrClosed
	}
	in := 0
	for i := 0; i < len(frames); {
		f := frames[i]
		switch g.admit(f) {
		case verdictPass:
		case verdictEcho:
			g.handleEcho(f)
			in++
			i++
			continue
		default:
			i++
			continue
		}
		n, payload := 1, 0
		if validTCP(f) {
			n, payload = tcpRun(frames[i:])
		}
		var buf buffer.Buffer
		if n > 1 {
			buf = buffer.MakeWithView(merge(frames[i:i+n], payload))
		} else {
			buf = buffer.MakeWithData(f)
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buf})
		g.link.inject(pkt)
		pkt.DecRef()
		in += n
		i += n
	}
	g.st.framesIn.Add(uint64(in))
	return len(frames), nil
}

// BatchSize is the largest number of frames one Read returns.
func (g *Gateway) BatchSize() int { return g.cfg.Batch }

// MTU is the gateway's IP MTU.
func (g *Gateway) MTU() int { return g.cfg.MTU }

// Close stops the gateway: it closes every listener and egress connection,
// unblocks Wait with net.ErrClosed, tears the stack down and waits for the
// gateway's goroutines. It is idempotent and always returns nil.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.mu.Lock()
		g.closed = true
		g.closing.Store(true)
		closers := g.closers
		g.closers = nil
		g.mu.Unlock()
		g.cancel()
		for c := range closers {
			c.Close()
		}
		g.closeEcho()
		g.link.close()
		g.stack.Close()
		g.waitFlows()
		g.stack.Wait()
	})
	return nil
}

// Stats returns a snapshot of the gateway's counters.
func (g *Gateway) Stats() GatewayStats {
	return GatewayStats{
		FramesIn:          g.st.framesIn.Load(),
		FramesOut:         g.st.framesOut.Load(),
		DropsQueueFull:    g.link.drops.Load(),
		DropsIPv6:         g.st.dropIPv6.Load(),
		DropsFiltered:     g.st.dropFiltered.Load(),
		DropsMalformed:    g.st.dropMalformed.Load(),
		DropsOversize:     g.st.dropOversize.Load(),
		DropsFlowLimit:    g.st.dropFlowLimit.Load(),
		DropsEgressDenied: g.st.dropDenied.Load(),
		DropsSourceLimit:  g.st.dropSourceLimit.Load(),
		DropsUDPTooLarge:  g.st.dropUDPTooLarge.Load(),
		DialErrors:        g.st.dialErrors.Load(),
		TCPFlowsOpen:      uint64(max(g.st.tcpOpen.Load(), 0)),
		TCPFlowsTotal:     g.st.tcpTotal.Load(),
		UDPFlowsOpen:      uint64(max(g.st.udpOpen.Load(), 0)),
		UDPFlowsTotal:     g.st.udpTotal.Load(),
		EchoFlowsOpen:     uint64(max(g.echo.open.Load(), 0)),
		EchoFlowsTotal:    g.echo.total.Load(),
	}
}

// track registers c to be closed by Close; it reports false once the
// gateway is closed.
func (g *Gateway) track(c io.Closer) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.closers[c] = struct{}{}
	return true
}

// untrack forgets c.
func (g *Gateway) untrack(c io.Closer) {
	g.mu.Lock()
	delete(g.closers, c)
	g.mu.Unlock()
}

// warnLimited logs at Warn at most once a minute; the rest is counted.
func (g *Gateway) warnLimited(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := g.lastWarn.Load()
	if now-last < int64(time.Minute) || !g.lastWarn.CompareAndSwap(last, now) {
		return
	}
	g.l.Warn(msg, args...)
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
