// Package encaptest provides an in-memory fake of encap.Conn: a Network of
// ChannelConns that exchange datagrams in-process, so the engine can be
// tested without sockets or root, in the spirit of wireguard-go's bindtest.
package encaptest

import (
	"net"
	"net/netip"
	"sync"

	"github.com/vxwire/vxwire/encap"
)

const (
	// DefaultQueueLen is the number of datagrams a ChannelConn queues for
	// its reader before it drops (and counts) further ones, like a socket
	// receive buffer.
	DefaultQueueLen = 1024

	// DefaultBatchSize is the BatchSize of every ChannelConn.
	DefaultBatchSize = 64

	// firstEphemeralPort is where Network starts when it picks a port for
	// Conn(addr) with port 0.
	firstEphemeralPort = 40000
)

// Datagram is one datagram seen by the fake network. Data is owned by the
// Datagram (a copy), never by a caller of Write.
type Datagram struct {
	Src, Dst netip.AddrPort
	Data     []byte
}

// Stats counts what a ChannelConn did. All counters only grow.
type Stats struct {
	Sent        uint64 // datagrams passed to Write
	Received    uint64 // datagrams returned by Read
	DroppedFull uint64 // datagrams for this conn dropped because its queue was full
	NoRoute     uint64 // datagrams this conn wrote to an address with no conn
}

// Network is a fake underlay connecting ChannelConns by address. It is
// safe for concurrent use.
type Network struct {
	mu       sync.Mutex
	conns    map[netip.AddrPort]*ChannelConn
	nextPort uint16
	queueLen int
}

// NewNetwork returns an empty fake network whose conns queue up to
// DefaultQueueLen datagrams each.
func NewNetwork() *Network {
	return NewNetworkQueue(DefaultQueueLen)
}

// NewNetworkQueue is NewNetwork with a receive queue of queueLen datagrams
// per conn (at least 1), for tests that want drops.
func NewNetworkQueue(queueLen int) *Network {
	return &Network{
		conns:    make(map[netip.AddrPort]*ChannelConn),
		nextPort: firstEphemeralPort,
		queueLen: max(1, queueLen),
	}
}

// Conn returns the conn bound to addr, creating it if there is none (or if
// the previous one was closed). Port 0 picks a free port, like a kernel. An
// invalid addr is taken as 127.0.0.1. The caller owns a new conn and should
// Close it. Conn is safe for concurrent use.
func (n *Network) Conn(addr netip.AddrPort) *ChannelConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := addr.Addr().Unmap()
	if !a.IsValid() {
		a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	port := addr.Port()
	for port == 0 {
		p := n.nextPort
		n.nextPort++
		if n.nextPort == 0 {
			n.nextPort = firstEphemeralPort
		}
		if _, used := n.conns[netip.AddrPortFrom(a, p)]; !used && p != 0 {
			port = p
		}
	}
	addr = netip.AddrPortFrom(a, port)
	if c, ok := n.conns[addr]; ok {
		return c
	}
	c := newChannelConn(n, addr, n.queueLen)
	n.conns[addr] = c
	return c
}

// lookup returns the conn bound to addr, or nil.
func (n *Network) lookup(addr netip.AddrPort) *ChannelConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conns[netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())]
}

// remove unbinds c if it is still bound.
func (n *Network) remove(c *ChannelConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns[c.addr] == c {
		delete(n.conns, c.addr)
	}
}

// ChannelConn is an encap.Conn on a fake Network. Write copies every
// datagram into the destination's bounded queue (dropping and counting when
// it is full); Read takes datagrams from this conn's queue. It follows the
// encap.Conn contract, including the checks on Read's arguments, so that
// misuse fails in fake-based tests too. Apart from the single-reader rule of
// encap.Conn, all methods are safe for concurrent use.
type ChannelConn struct {
	net  *Network
	addr netip.AddrPort

	mu     sync.Mutex
	queue  []slot   // ring of received datagrams
	free   [][]byte // buffers of dequeued datagrams, reused by enqueue
	head   int
	count  int
	closed bool
	stats  Stats
	record bool
	sent   []Datagram

	ready chan struct{} // 1-buffered: signalled when the queue gets data
	done  chan struct{} // closed by Close
}

type slot struct {
	buf []byte
	src netip.AddrPort
}

var _ encap.Conn = (*ChannelConn)(nil)

func newChannelConn(n *Network, addr netip.AddrPort, queueLen int) *ChannelConn {
	return &ChannelConn{
		net:   n,
		addr:  addr,
		queue: make([]slot, queueLen),
		ready: make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
}

// Read implements encap.Conn. It blocks until a datagram is queued or the
// conn is closed, then returns up to min(len(bufs), BatchSize()) datagrams.
func (c *ChannelConn) Read(bufs [][]byte, sizes []int, eps []netip.AddrPort) (int, error) {
	if err := encap.CheckReadArgs(bufs, sizes, eps); err != nil {
		return 0, err
	}
	bufs = bufs[:min(len(bufs), DefaultBatchSize)]
	if len(bufs) == 0 {
		return 0, nil
	}
	for {
		select {
		case <-c.done:
			return 0, net.ErrClosed
		case <-c.ready:
		}
		if n, err := c.dequeue(bufs, sizes, eps); n > 0 || err != nil {
			return n, err
		}
	}
}

// dequeue moves queued datagrams into bufs and re-signals ready if some
// are left for the next Read.
func (c *ChannelConn) dequeue(bufs [][]byte, sizes []int, eps []netip.AddrPort) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	n := 0
	for ; n < len(bufs) && c.count > 0; n++ {
		s := &c.queue[c.head]
		sizes[n] = copy(bufs[n], s.buf)
		eps[n] = s.src
		c.free = append(c.free, s.buf)
		s.buf = nil
		c.head = (c.head + 1) % len(c.queue)
		c.count--
	}
	c.stats.Received += uint64(n)
	if c.count > 0 {
		c.signal()
	}
	return n, nil
}

func (c *ChannelConn) signal() {
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// Write implements encap.Conn: each buffer is copied to dst's queue. A
// datagram for an address without a conn is counted in NoRoute and dropped,
// like UDP. Write returns net.ErrClosed after Close and encap.ErrNotIPv4 for
// a non-IPv4 dst, like StdConn.
func (c *ChannelConn) Write(bufs [][]byte, dst netip.AddrPort) error {
	if !dst.Addr().Unmap().Is4() {
		return encap.ErrNotIPv4
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.stats.Sent += uint64(len(bufs))
	if c.record {
		for _, b := range bufs {
			c.sent = append(c.sent, Datagram{Src: c.addr, Dst: dst, Data: append([]byte(nil), b...)})
		}
	}
	c.mu.Unlock()
	peer := c.net.lookup(dst)
	if peer == nil {
		c.mu.Lock()
		c.stats.NoRoute += uint64(len(bufs))
		c.mu.Unlock()
		return nil
	}
	for _, b := range bufs {
		peer.enqueue(b, c.addr)
	}
	return nil
}

// Inject queues b (copied) for this conn's reader as if it had been sent
// from src, which may be any address. It reports false if the datagram was
// dropped because the queue is full or the conn is closed.
func (c *ChannelConn) Inject(src netip.AddrPort, b []byte) bool {
	return c.enqueue(b, src)
}

// enqueue copies b into the next free slot, in a buffer from the free list
// when there is one, so that steady-state traffic does not allocate.
func (c *ChannelConn) enqueue(b []byte, src netip.AddrPort) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if c.count == len(c.queue) {
		c.stats.DroppedFull++
		return false
	}
	s := &c.queue[(c.head+c.count)%len(c.queue)]
	if k := len(c.free); k > 0 {
		s.buf, c.free = c.free[k-1], c.free[:k-1]
	}
	s.buf = append(s.buf[:0], b...)
	s.src = src
	c.count++
	c.signal()
	return true
}

// Record turns the recording of written datagrams on or off. While it is
// on, every datagram passed to Write is also copied into a log that Sent
// returns, whether or not it was delivered.
func (c *ChannelConn) Record(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record = on
}

// Sent returns the datagrams recorded since Record(true) or the previous
// call to Sent, in write order, and clears the log. The caller owns the
// result.
func (c *ChannelConn) Sent() []Datagram {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sent
	c.sent = nil
	return s
}

// Stats returns a snapshot of the conn's counters.
func (c *ChannelConn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// BatchSize implements encap.Conn; it is DefaultBatchSize. It is safe for
// concurrent use.
func (c *ChannelConn) BatchSize() int { return DefaultBatchSize }

// LocalAddr implements encap.Conn; it never changes and is safe for
// concurrent use.
func (c *ChannelConn) LocalAddr() netip.AddrPort { return c.addr }

// Close implements encap.Conn: it unbinds the address, drops queued
// datagrams and wakes a pending Read with net.ErrClosed. It is idempotent.
func (c *ChannelConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.count = 0
	close(c.done)
	c.mu.Unlock()
	c.net.remove(c)
	return nil
}
