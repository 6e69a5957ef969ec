package netstack

import (
	"net"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// link is the bottom half of a stack's Ethernet NIC; gVisor's
// ethernet.Endpoint wraps it and adds and strips the Ethernet header.
//
// Outbound, the stack's WritePackets puts packets (one reference each) into
// a fixed ring and leaves a token in ready; the port's single reader blocks
// in wait on that token, holding no buffers, and then drains up to a batch
// with pop. When the ring is full the packet is dropped and counted, so a
// stalled reader costs at most len(ring) packets of memory.
//
// Inbound, inject hands a packet to the attached dispatcher on the caller's
// goroutine; gVisor queues TCP segments to its own processors, so no
// goroutine is started per frame.
type link struct {
	mtu  atomic.Uint32
	addr tcpip.LinkAddress // fixed at creation

	// dispatcher is set by Attach (nil detaches) and read on every
	// inbound frame, so it is an atomic load rather than a lock.
	dispatcher atomic.Pointer[dispatcherBox]

	mu     sync.Mutex
	ring   []*stack.PacketBuffer // guarded by mu; live slots are ring[head], ... n of them, wrapping
	head   int                   // guarded by mu
	n      int                   // guarded by mu
	closed bool                  // guarded by mu

	// ready holds at most one token, meaning "the ring may be non-empty".
	// Writers leave one after queueing; pop leaves one back when it did not
	// drain everything. Spurious tokens are allowed: pop then returns 0.
	ready chan struct{}
	// done is closed by close; it wakes wait for good.
	done chan struct{}

	// drops counts outbound packets refused because the ring was full.
	drops atomic.Uint64
}

var (
	_ stack.LinkEndpoint       = (*link)(nil)
	_ stack.QueueingDiscipline = (*link)(nil)
)

// newLink returns a link with an outbound ring of queueLen packets.
func newLink(mtu uint32, mac net.HardwareAddr, queueLen int) *link {
	l := &link{
		addr:  tcpip.LinkAddress(mac),
		ring:  make([]*stack.PacketBuffer, queueLen),
		ready: make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	l.mtu.Store(mtu)
	return l
}

// wait blocks until pop may return packets or the link is closed, in which
// case it returns net.ErrClosed.
func (l *link) wait() error {
	select {
	case <-l.ready:
		return nil
	case <-l.done:
		return net.ErrClosed
	}
}

// pop moves up to len(dst) queued packets into dst and returns how many.
// The caller owns one reference to each and must DecRef it.
func (l *link) pop(dst []*stack.PacketBuffer) (int, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, net.ErrClosed
	}
	k := min(l.n, len(dst))
	for i := range k {
		slot := (l.head + i) % len(l.ring)
		dst[i] = l.ring[slot]
		l.ring[slot] = nil
	}
	l.head = (l.head + k) % len(l.ring)
	l.n -= k
	more := l.n > 0
	l.mu.Unlock()
	if more {
		l.signal()
	}
	return k, nil
}

// signal leaves a token in ready unless one is already there.
func (l *link) signal() {
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

// inject delivers one inbound frame, Ethernet header included, to the
// stack. The caller keeps its reference to pkt.
func (l *link) inject(pkt *stack.PacketBuffer) {
	if b := l.dispatcher.Load(); b != nil {
		b.d.DeliverNetworkPacket(0, pkt)
	}
}

// close discards queued packets and wakes wait. It is idempotent.
func (l *link) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	for l.n > 0 {
		l.ring[l.head].DecRef()
		l.ring[l.head] = nil
		l.head = (l.head + 1) % len(l.ring)
		l.n--
	}
	l.mu.Unlock()
	close(l.done)
}

// WritePacket implements stack.QueueingDiscipline: the NIC hands every
// outbound packet, Ethernet header added, straight to the ring. Using the
// link as the NIC's qdisc skips the default one, which allocates a packet
// list per packet. A full ring drops the packet and counts it.
func (l *link) WritePacket(pkt *stack.PacketBuffer) tcpip.Error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return &tcpip.ErrClosedForSend{}
	}
	if l.n == len(l.ring) {
		l.mu.Unlock()
		l.drops.Add(1)
		return &tcpip.ErrNoBufferSpace{}
	}
	l.ring[(l.head+l.n)%len(l.ring)] = pkt.IncRef()
	l.n++
	l.mu.Unlock()
	l.signal()
	return nil
}

// WritePackets implements stack.LinkWriter for callers that bypass the
// qdisc; it queues what fits in the ring.
func (l *link) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	var err tcpip.Error
	for _, pkt := range pkts.AsSlice() {
		if err = l.WritePacket(pkt); err == nil {
			n++
		}
	}
	if n == 0 {
		return 0, err
	}
	return n, nil
}

// MTU implements stack.LinkEndpoint.
func (l *link) MTU() uint32 { return l.mtu.Load() }

// SetMTU implements stack.LinkEndpoint.
func (l *link) SetMTU(mtu uint32) { l.mtu.Store(mtu) }

// MaxHeaderLength implements stack.LinkEndpoint; the Ethernet header is
// accounted for by the wrapping ethernet.Endpoint.
func (*link) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.LinkEndpoint.
func (l *link) LinkAddress() tcpip.LinkAddress { return l.addr }

// SetLinkAddress implements stack.LinkEndpoint; the address is fixed.
func (*link) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.LinkEndpoint. Checksums are computed and
// verified by the stack: frames may come from remote hosts.
func (*link) Capabilities() stack.LinkEndpointCapabilities { return 0 }

// Attach implements stack.LinkEndpoint.
func (l *link) Attach(d stack.NetworkDispatcher) {
	if d == nil {
		l.dispatcher.Store(nil)
		return
	}
	l.dispatcher.Store(&dispatcherBox{d})
}

// dispatcherBox holds an interface value for atomic.Pointer.
type dispatcherBox struct{ d stack.NetworkDispatcher }

// IsAttached implements stack.LinkEndpoint.
func (l *link) IsAttached() bool {
	return l.dispatcher.Load() != nil
}

// Wait implements stack.LinkEndpoint; the link owns no goroutines.
func (*link) Wait() {}

// ARPHardwareType implements stack.LinkEndpoint; ethernet.Endpoint reports
// Ethernet.
func (*link) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.LinkEndpoint.
func (*link) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.LinkEndpoint.
func (*link) ParseHeader(*stack.PacketBuffer) bool { return true }

// Close implements stack.LinkEndpoint and stack.QueueingDiscipline; the
// stack calls it when the NIC is removed.
func (l *link) Close() { l.close() }

// SetOnCloseAction implements stack.LinkEndpoint.
func (*link) SetOnCloseAction(func()) {}

// copyOut copies the whole packet, headers included, into dst, which must
// be at least pkt.Size() bytes long. It walks the backing views instead of
// calling AsSlices, which allocates.
func copyOut(dst []byte, pkt *stack.PacketBuffer) int {
	views, skip := pkt.AsViewList()
	n := 0
	for v := views.Front(); v != nil; v = v.Next() {
		s := v.AsSlice()
		if skip >= len(s) {
			skip -= len(s)
			continue
		}
		n += copy(dst[n:], s[skip:])
		skip = 0
	}
	return n
}
