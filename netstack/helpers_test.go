package netstack

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// device mirrors the switch's port interface (tunnel/tap.Device), which
// this package satisfies without importing it.
type device interface {
	Wait() error
	Read(bufs [][]byte, sizes []int, offset int) (int, error)
	Write(frames [][]byte) (int, error)
	BatchSize() int
	MTU() int
	Close() error
}

var (
	_ device = (*Gateway)(nil)
	_ device = (*client)(nil)
)

var (
	gwMAC     = net.HardwareAddr{0x02, 0x76, 0x0a, 0x4d, 0x00, 0x01}
	clientMAC = net.HardwareAddr{0x02, 0x76, 0x0a, 0x4d, 0x00, 0x02}
	gwPrefix  = netip.MustParsePrefix("10.77.0.1/24")
	clientIP  = netip.MustParseAddr("10.77.0.2")
	outsideIP = netip.MustParseAddr("198.18.200.1")
)

const testMTU = 1450

func testLogger(tb testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newTestGateway builds a gateway on 10.77.0.1/24, closed at cleanup.
func newTestGateway(tb testing.TB, mod func(*GatewayConfig)) *Gateway {
	tb.Helper()
	cfg := GatewayConfig{MAC: gwMAC, Addr: gwPrefix, MTU: testMTU}
	if mod != nil {
		mod(&cfg)
	}
	g, err := NewGateway(cfg, testLogger(tb))
	if err != nil {
		tb.Fatalf("NewGateway: %v", err)
	}
	tb.Cleanup(func() { g.Close() })
	return g
}

// client is a plain gVisor stack standing in for a container: 10.77.0.2/24
// with a default route via the gateway, on the same link type.
type client struct {
	s       *stack.Stack
	link    *link
	scratch []*stack.PacketBuffer
	once    sync.Once
}

func newClient(tb testing.TB) *client {
	tb.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4},
	})
	sack := tcpip.TCPSACKEnabled(true)
	s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	c := &client{s: s, link: newLink(testMTU, clientMAC, clientQueueLen), scratch: make([]*stack.PacketBuffer, 64)}
	if e := s.CreateNIC(1, ethernet.New(c.link)); e != nil {
		tb.Fatalf("client nic: %s", e)
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{
		Address: tcpip.AddrFrom4(clientIP.As4()), PrefixLen: 24}}
	if e := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); e != nil {
		tb.Fatalf("client address: %s", e)
	}
	var zero tcpip.Subnet
	zero, _ = tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{}), tcpip.MaskFromBytes(make([]byte, 4)))
	s.SetRouteTable([]tcpip.Route{
		{Destination: pa.AddressWithPrefix.Subnet(), NIC: 1},
		{Destination: zero, Gateway: tcpip.AddrFrom4(gwPrefix.Addr().As4()), NIC: 1},
	})
	tb.Cleanup(func() { c.Close() })
	return c
}

func (c *client) Wait() error { return c.link.wait() }

func (c *client) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	k, err := c.link.pop(c.scratch[:min(len(bufs), len(c.scratch))])
	if err != nil {
		return 0, err
	}
	for i, pkt := range c.scratch[:k] {
		sizes[i] = copyOut(bufs[i][offset:], pkt)
		pkt.DecRef()
		c.scratch[i] = nil
	}
	return k, nil
}

func (c *client) Write(frames [][]byte) (int, error) {
	for _, f := range frames {
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(f)})
		c.link.inject(pkt)
		pkt.DecRef()
	}
	return len(frames), nil
}

func (*client) BatchSize() int { return 64 }
func (*client) MTU() int       { return testMTU }

func (c *client) Close() error {
	c.once.Do(func() {
		c.link.close()
		c.s.Close()
		c.s.Wait()
	})
	return nil
}

func (c *client) addr(a netip.Addr, port uint16) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(a.As4()), Port: port}
}

// relay shuttles frames from a to b until a is closed; it is the switch of
// the tests. It stops when a's Wait reports net.ErrClosed.
func relay(tb testing.TB, a, b device) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		bufs := make([][]byte, a.BatchSize())
		for i := range bufs {
			bufs[i] = make([]byte, a.MTU()+14)
		}
		sizes := make([]int, len(bufs))
		frames := make([][]byte, len(bufs))
		for a.Wait() == nil {
			n, err := a.Read(bufs, sizes, 0)
			if err != nil {
				return
			}
			for i := range n {
				frames[i] = bufs[i][:sizes[i]]
			}
			if n > 0 {
				b.Write(frames[:n])
			}
		}
	}()
	tb.Cleanup(func() {
		a.Close()
		<-done
	})
}

// connect joins a gateway and a client with relays both ways.
func connect(tb testing.TB, g *Gateway, c *client) {
	relay(tb, g, c)
	relay(tb, c, g)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, d time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ping sends one ICMP echo from the client's ping socket to dst and waits
// for the reply.
func (c *client) ping(dst netip.Addr, timeout time.Duration) error {
	var wq waiter.Queue
	ep, e := c.s.NewEndpoint(icmp.ProtocolNumber4, ipv4.ProtocolNumber, &wq)
	if e != nil {
		return errors.New(e.String())
	}
	defer ep.Close()
	entry, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)

	msg := make([]byte, 8+16)
	msg[0] = 8 // echo request
	copy(msg[8:], "vxwire-ping-test")
	to := c.addr(dst, 0)
	if _, e := ep.Write(bytes.NewReader(msg), tcpip.WriteOptions{To: &to}); e != nil {
		return errors.New(e.String())
	}
	deadline := time.After(timeout)
	for {
		var out bytes.Buffer
		_, e := ep.Read(&out, tcpip.ReadOptions{})
		if e == nil {
			if out.Len() < 8 || out.Bytes()[0] != 0 || !bytes.Equal(out.Bytes()[8:], msg[8:]) {
				return errors.New("unexpected echo reply")
			}
			return nil
		}
		if _, ok := e.(*tcpip.ErrWouldBlock); !ok {
			return errors.New(e.String())
		}
		select {
		case <-ch:
		case <-deadline:
			return context.DeadlineExceeded
		}
	}
}

// Raw frames for the filter tests and the ping benchmark.

func ethFrame(dst, src net.HardwareAddr, etherType uint16, payload []byte) []byte {
	f := make([]byte, 14+len(payload))
	copy(f, dst)
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], etherType)
	copy(f[14:], payload)
	return f
}

func arpRequest(sha net.HardwareAddr, spa, tpa netip.Addr) []byte {
	p := make([]byte, 28)
	binary.BigEndian.PutUint16(p[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(p[2:], 0x0800) // IPv4
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:], 1) // request
	copy(p[8:], sha)
	s, t := spa.As4(), tpa.As4()
	copy(p[14:], s[:])
	copy(p[24:], t[:])
	return ethFrame(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, sha, 0x0806, p)
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func ipv4Packet(src, dst netip.Addr, proto byte, payload []byte) []byte {
	p := make([]byte, 20+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8] = 64
	p[9] = proto
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], checksum(p[:20]))
	copy(p[20:], payload)
	return p
}

func icmpEcho(seq uint16, data []byte) []byte {
	m := make([]byte, 8+len(data))
	m[0] = 8
	binary.BigEndian.PutUint16(m[4:], 0x1234)
	binary.BigEndian.PutUint16(m[6:], seq)
	copy(m[8:], data)
	binary.BigEndian.PutUint16(m[2:], checksum(m))
	return m
}

// readNow reads whatever the gateway has queued, without waiting.
func readNow(tb testing.TB, g *Gateway) [][]byte {
	tb.Helper()
	bufs := make([][]byte, g.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, g.MTU()+14)
	}
	sizes := make([]int, len(bufs))
	n, err := g.Read(bufs, sizes, 0)
	if err != nil {
		tb.Fatalf("Read: %v", err)
	}
	out := make([][]byte, n)
	for i := range n {
		out[i] = bufs[i][:sizes[i]]
	}
	return out
}

// clientQueueLen is the client stack's outbound queue. It is larger than
// the gateway's because it stands in for a kernel, whose TCP small queues
// keep a sender from flooding its device queue.
const clientQueueLen = 4096
