package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// memNet is an in-memory network for gossip simulations: members reach
// each other by address through channels, without sockets, so that a
// thousand members fit in one process. Packets behave as UDP on a host
// whose socket buffer is full: a packet to a member whose queue is full
// is dropped (and counted). Streams are synchronous pipes.
type memNet struct {
	mu    sync.RWMutex
	hosts map[string]*memTransport
	// dropped counts packets lost to full queues.
	dropped atomic.Int64
}

// memQueue is the packets one member may have waiting, as a socket
// buffer of about 200 KiB would hold gossip-sized datagrams.
const memQueue = 512

func newMemNet() *memNet { return &memNet{hosts: make(map[string]*memTransport)} }

// listen opens a transport at addr on n.
func (n *memNet) listen(addr netip.AddrPort) (*memTransport, error) {
	t := &memTransport{
		net:     n,
		addr:    addr,
		packets: make(chan *memberlist.Packet, memQueue),
		streams: make(chan net.Conn),
		done:    make(chan struct{}),
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.hosts[addr.String()]; ok {
		return nil, fmt.Errorf("%v: address in use", addr)
	}
	n.hosts[addr.String()] = t
	return t, nil
}

func (n *memNet) lookup(addr string) *memTransport {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.hosts[addr]
}

// memTransport is one member's end of a memNet.
type memTransport struct {
	net     *memNet
	addr    netip.AddrPort
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	stop    sync.Once
}

var _ memberlist.NodeAwareTransport = (*memTransport)(nil)

func (t *memTransport) udpAddr() *net.UDPAddr { return net.UDPAddrFromAddrPort(t.addr) }
func (t *memTransport) tcpAddr() *net.TCPAddr { return net.TCPAddrFromAddrPort(t.addr) }

// FinalAdvertiseAddr implements memberlist.Transport.
func (t *memTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return t.addr.Addr().AsSlice(), int(t.addr.Port()), nil
}

// WriteTo implements memberlist.Transport.
func (t *memTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport. As with UDP, a
// packet to nobody or to a full queue is lost without an error.
func (t *memTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	dst := t.net.lookup(a.Addr)
	if dst == nil {
		return now, nil
	}
	select {
	case <-dst.done:
	case dst.packets <- &memberlist.Packet{Buf: bytes.Clone(b), From: t.udpAddr(), Timestamp: now}:
	default:
		t.net.dropped.Add(1)
	}
	return now, nil
}

// PacketCh implements memberlist.Transport.
func (t *memTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// DialTimeout implements memberlist.Transport.
func (t *memTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// errRefused is a dial to an address nobody listens on.
var errRefused = errors.New("connection refused")

// DialAddressTimeout implements memberlist.NodeAwareTransport: the two
// ends of a pipe, one handed to the listener.
func (t *memTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	dst := t.net.lookup(a.Addr)
	if dst == nil {
		return nil, fmt.Errorf("dial %s: %w", a.Addr, errRefused)
	}
	near, far := net.Pipe()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case dst.streams <- &addrConn{Conn: far, local: dst.tcpAddr(), remote: t.tcpAddr()}:
		return &addrConn{Conn: near, local: t.tcpAddr(), remote: dst.tcpAddr()}, nil
	case <-dst.done:
		near.Close()
		far.Close()
		return nil, fmt.Errorf("dial %s: %w", a.Addr, errRefused)
	case <-timer.C:
		near.Close()
		far.Close()
		return nil, fmt.Errorf("dial %s: timeout", a.Addr)
	}
}

// StreamCh implements memberlist.Transport.
func (t *memTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown implements memberlist.Transport; the address stays taken.
func (t *memTransport) Shutdown() error {
	t.stop.Do(func() { close(t.done) })
	return nil
}

// addrConn is a pipe end with TCP addresses, as the gate expects.
type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c *addrConn) LocalAddr() net.Addr  { return c.local }
func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

// traffic is what one member sent and received at its transport: gossip
// payload bytes as memberlist hands them over (after encryption and
// compression; without IP, UDP or TCP headers).
type traffic struct {
	packetsOut, packetBytesOut atomic.Int64
	packetsIn, packetBytesIn   atomic.Int64
	streamsOut, streamsIn      atomic.Int64
	streamBytesOut             atomic.Int64
	streamBytesIn              atomic.Int64
}

// trafficSnap is a copy of a traffic's counters at one moment.
type trafficSnap struct {
	packetsOut, packetBytesOut, packetsIn, packetBytesIn int64
	streams, streamBytesOut, streamBytesIn               int64
}

func (c *traffic) snap() trafficSnap {
	return trafficSnap{
		packetsOut: c.packetsOut.Load(), packetBytesOut: c.packetBytesOut.Load(),
		packetsIn: c.packetsIn.Load(), packetBytesIn: c.packetBytesIn.Load(),
		streams:        c.streamsOut.Load() + c.streamsIn.Load(),
		streamBytesOut: c.streamBytesOut.Load(), streamBytesIn: c.streamBytesIn.Load(),
	}
}

func (s trafficSnap) sub(o trafficSnap) trafficSnap {
	return trafficSnap{
		s.packetsOut - o.packetsOut, s.packetBytesOut - o.packetBytesOut,
		s.packetsIn - o.packetsIn, s.packetBytesIn - o.packetBytesIn,
		s.streams - o.streams, s.streamBytesOut - o.streamBytesOut, s.streamBytesIn - o.streamBytesIn,
	}
}

// bytesOut and bytesIn are the payload bytes of packets and streams.
func (s trafficSnap) bytesOut() int64 { return s.packetBytesOut + s.streamBytesOut }
func (s trafficSnap) bytesIn() int64  { return s.packetBytesIn + s.streamBytesIn }

// countingTransport counts the traffic of the transport it wraps: packets
// and bytes written and relayed to memberlist, and the bytes read and
// written on every stream, dialled or accepted.
type countingTransport struct {
	memberlist.NodeAwareTransport
	c       *traffic
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{} // closed when shutdown begins
	stopped chan struct{} // closed when the inner transport has stopped
	wg      sync.WaitGroup
	stop    sync.Once
}

func newCountingTransport(inner memberlist.NodeAwareTransport, c *traffic) *countingTransport {
	t := &countingTransport{
		NodeAwareTransport: inner, c: c,
		packets: make(chan *memberlist.Packet), streams: make(chan net.Conn),
		done: make(chan struct{}), stopped: make(chan struct{}),
	}
	t.wg.Add(2)
	go t.routinePackets()
	go t.routineStreams()
	return t
}

// routinePackets counts and relays received packets; after done it drains
// the inner transport until it has stopped, so that it never blocks.
func (t *countingTransport) routinePackets() {
	defer t.wg.Done()
	for {
		select {
		case <-t.stopped:
			return
		case p := <-t.NodeAwareTransport.PacketCh():
			t.c.packetsIn.Add(1)
			t.c.packetBytesIn.Add(int64(len(p.Buf)))
			select {
			case t.packets <- p:
			case <-t.done:
			}
		}
	}
}

// routineStreams is routinePackets for accepted streams.
func (t *countingTransport) routineStreams() {
	defer t.wg.Done()
	for {
		select {
		case <-t.stopped:
			return
		case conn := <-t.NodeAwareTransport.StreamCh():
			t.c.streamsIn.Add(1)
			select {
			case t.streams <- &countingConn{Conn: conn, c: t.c}:
			case <-t.done:
				conn.Close()
			}
		}
	}
}

// WriteTo implements memberlist.Transport.
func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	ts, err := t.NodeAwareTransport.WriteToAddress(b, a)
	if err == nil {
		t.c.packetsOut.Add(1)
		t.c.packetBytesOut.Add(int64(len(b)))
	}
	return ts, err
}

// PacketCh implements memberlist.Transport.
func (t *countingTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// StreamCh implements memberlist.Transport.
func (t *countingTransport) StreamCh() <-chan net.Conn { return t.streams }

// DialTimeout implements memberlist.Transport.
func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	conn, err := t.NodeAwareTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	t.c.streamsOut.Add(1)
	return &countingConn{Conn: conn, c: t.c}, nil
}

// Shutdown implements memberlist.Transport.
func (t *countingTransport) Shutdown() error {
	var err error
	t.stop.Do(func() {
		close(t.done)
		err = t.NodeAwareTransport.Shutdown()
		close(t.stopped)
		t.wg.Wait()
	})
	return err
}

// countingConn counts the bytes read and written on a stream.
type countingConn struct {
	net.Conn
	c *traffic
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.c.streamBytesIn.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.c.streamBytesOut.Add(int64(n))
	return n, err
}
