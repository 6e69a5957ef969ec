package encap

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Receive path of StdConn.
//
//	Read ─┬─ stash not empty? ─▶ hand out stashed datagrams, no syscall
//	      └─ recvmmsg(m msghdrs) ─▶ msg k lands in bufs[k] (k < m)
//	                                    │ UDP_GRO cmsg: gso size g, so msg k
//	                                    │ holds ceil(len/g) datagrams
//	                                    ▼
//	         split: the longest prefix of messages whose datagrams fit in
//	         the batch is expanded in place into consecutive buffers, last
//	         message and last segment first (so nothing is overwritten before
//	         it is moved); messages past that prefix are copied to the stash
//	         and handed out, in order, by this and the next Reads.
//
// m adapts: without GRO it is the batch size; with GRO it is the batch size
// divided by the largest segment count of the previous receive, so that a
// stream of coalesced messages rarely overflows into the stash while
// uncoalesced traffic still gets full batches.

// rxState is the receive scratch of a StdConn, owned by its single reader.
type rxState struct {
	msgs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet4
	oob   []byte // oobLen bytes of control space per message, if GRO
	segs  []int  // datagrams in message k
	seg   []int  // datagram (segment) size of message k

	oobLen int
	want   int // messages asked for in the next recvmmsg

	// results of the recvmmsg callback
	m     int
	n     int
	errno syscall.Errno

	readFn func(fd uintptr) bool // r.recv, bound once: a method value allocates

	stash rxStash
}

func (r *rxState) init(batch int, gro bool) {
	r.msgs = make([]unix.Mmsghdr, batch)
	r.iovs = make([]unix.Iovec, batch)
	r.names = make([]unix.RawSockaddrInet4, batch)
	r.segs = make([]int, batch)
	r.seg = make([]int, batch)
	if gro {
		r.oobLen = cmsgAlign(unix.CmsgSpace(4))
		r.oob = make([]byte, batch*r.oobLen)
	}
	for i := range r.msgs {
		h := &r.msgs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		if gro {
			h.Control = &r.oob[i*r.oobLen]
		}
	}
	r.want = batch
	r.readFn = r.recv
}

// Read receives up to min(len(bufs), BatchSize()) datagrams, as described
// by Conn.Read. Datagrams coalesced by UDP GRO are split back into
// consecutive buffers in arrival order. Read does not allocate in steady
// state (a burst that overflows the batch grows the stash once). It must
// not be called from more than one goroutine at a time.
func (c *StdConn) Read(bufs [][]byte, sizes []int, eps []netip.AddrPort) (int, error) {
	if err := CheckReadArgs(bufs, sizes, eps); err != nil {
		return 0, err
	}
	bufs = bufs[:min(len(bufs), c.batch)]
	r := &c.rx
	if r.stash.pending() {
		if c.closed.Load() {
			return 0, net.ErrClosed
		}
		return r.stash.drain(bufs, sizes, eps), nil
	}
	if err := c.receive(bufs); err != nil || len(bufs) == 0 {
		return 0, err
	}
	return r.split(bufs, sizes, eps, c.gro), nil
}

// ReadViews receives like Read, but lends each datagram as a view of the
// buffer it was received in (encap.ViewReader): the datagrams of one GRO
// message are not copied apart. At most min(len(views), BatchSize())
// datagrams are returned; a message whose datagrams do not all fit goes
// to the stash (one copy) and is lent by the next call. It does not
// allocate in steady state and must not be called concurrently with
// itself or Read.
func (c *StdConn) ReadViews(bufs, views [][]byte, eps []netip.AddrPort) (int, error) {
	if len(eps) < len(views) {
		return 0, ErrBatchArgs
	}
	for _, b := range bufs {
		if len(b) < MaxDatagram {
			return 0, ErrShortBuffer
		}
	}
	views = views[:min(len(views), c.batch)]
	bufs = bufs[:min(len(bufs), len(views))]
	r := &c.rx
	if r.stash.pending() {
		if c.closed.Load() {
			return 0, net.ErrClosed
		}
		return r.stash.lend(views, eps, true), nil
	}
	if err := c.receive(bufs); err != nil || len(bufs) == 0 {
		return 0, err
	}
	return r.lendAll(bufs, views, eps, c.gro), nil
}

// receive makes one recvmmsg into up to r.want of bufs, leaving the result
// in r.n and the messages' lengths and control data in r.msgs.
func (c *StdConn) receive(bufs [][]byte) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	if len(bufs) == 0 {
		return nil
	}
	r := &c.rx
	r.m = min(len(bufs), r.want)
	for k := 0; k < r.m; k++ {
		r.iovs[k].Base = &bufs[k][0]
		r.iovs[k].SetLen(len(bufs[k]))
		r.msgs[k].Hdr.Namelen = unix.SizeofSockaddrInet4
		r.msgs[k].Hdr.SetControllen(r.oobLen)
		r.msgs[k].Hdr.Flags = 0
	}
	err := c.rc.Read(r.readFn)
	for k := 0; k < r.m; k++ {
		r.iovs[k].Base = nil // do not keep the caller's buffers alive
	}
	if err != nil {
		return closedOr("recvmmsg", err)
	}
	if r.errno != 0 {
		return closedOr("recvmmsg", r.errno)
	}
	return nil
}

// recv is the RawConn.Read callback: false asks the netpoller to wait.
func (r *rxState) recv(fd uintptr) bool {
	for {
		// Raw: the socket is nonblocking, so the call never sleeps, and
		// Syscall6 would wake the runtime's sysmon thread for every lone
		// datagram (see "Latency" in docs/performance.md).
		n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&r.msgs[0])), uintptr(r.m), 0, 0, 0)
		switch e {
		case 0:
			r.n, r.errno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			r.n, r.errno = 0, e
			return true
		}
	}
}

// split turns the r.n received messages in bufs into datagrams, see the
// comment at the top of this file, and returns how many it stored.
func (r *rxState) split(bufs [][]byte, sizes []int, eps []netip.AddrPort, gro bool) int {
	total, fit := r.measure(bufs, len(bufs), gro)
	pos := total
	for k := fit - 1; k >= 0; k-- {
		pos -= r.segs[k]
		r.expand(k, pos, bufs, sizes, eps)
	}
	if total < len(bufs) && r.stash.pending() {
		total += r.stash.drain(bufs[total:], sizes[total:], eps[total:])
	}
	return total
}

// lendAll is split for ReadViews: the datagrams of the messages that fit
// are stored as views of bufs, in order, and the rest are stashed.
func (r *rxState) lendAll(bufs, views [][]byte, eps []netip.AddrPort, gro bool) int {
	total, fit := r.measure(bufs, len(views), gro)
	pos := 0
	for k := 0; k < fit; k++ {
		src := bufs[k][:r.msgLen(k)]
		seg, ep := r.seg[k], r.addr(k)
		for j := 0; j < r.segs[k]; j++ {
			lo := j * seg
			hi := min(lo+seg, len(src))
			views[pos], eps[pos] = src[lo:hi:hi], ep
			pos++
		}
	}
	if total < len(views) && r.stash.pending() {
		total += r.stash.lend(views[total:], eps[total:], total == 0)
	}
	return total
}

// measure finds each received message's segment size and count, stashes
// the messages past the longest prefix whose datagrams number at most
// room, and returns that number and the prefix's length. It also sizes
// the next receive.
func (r *rxState) measure(bufs [][]byte, room int, gro bool) (total, fit int) {
	maxSegs := 1
	for k := 0; k < r.n; k++ {
		n := r.msgLen(k)
		seg, cnt := n, 1
		if gro {
			oob := r.oob[k*r.oobLen : (k+1)*r.oobLen]
			if g := groSize(oob[:min(len(oob), int(r.msgs[k].Hdr.Controllen))]); g > 0 && n > g {
				seg, cnt = g, (n+g-1)/g
			}
		}
		r.seg[k], r.segs[k] = seg, cnt
		maxSegs = max(maxSegs, cnt)
		if fit == k && total+cnt <= room {
			total += cnt
			fit++
		}
	}
	for k := fit; k < r.n; k++ {
		r.stash.push(bufs[k][:r.msgLen(k)], r.seg[k], r.addr(k))
	}
	r.want = len(r.msgs)
	if gro {
		r.want = max(1, len(r.msgs)/maxSegs)
	}
	return total, fit
}

// msgLen is the number of bytes received in message k.
func (r *rxState) msgLen(k int) int {
	return int(r.msgs[k].Len)
}

// addr is the source of message k.
func (r *rxState) addr(k int) netip.AddrPort {
	sa := &r.names[k]
	return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), sockaddrPort(sa))
}

// expand moves the datagrams of message k (in bufs[k]) to bufs[start:],
// last segment first. start >= k, and every message after k has already
// been moved, so only bufs[k] itself, which is read in the same order it is
// written, is both source and destination.
func (r *rxState) expand(k, start int, bufs [][]byte, sizes []int, eps []netip.AddrPort) {
	src := bufs[k][:r.msgLen(k)]
	seg, ep := r.seg[k], r.addr(k)
	for j := r.segs[k] - 1; j >= 0; j-- {
		lo := j * seg
		hi := min(lo+seg, len(src))
		d := start + j
		if d != k {
			copy(bufs[d], src[lo:hi])
		}
		sizes[d], eps[d] = hi-lo, ep
	}
}

// groSize returns the segment size from a UDP_GRO control message in oob,
// or 0 if there is none.
func groSize(oob []byte) int {
	hdrLen := unix.CmsgLen(0)
	for len(oob) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdrLen || l > len(oob) {
			return 0
		}
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO && l >= hdrLen+4 {
			return int(int32(binary.NativeEndian.Uint32(oob[hdrLen:])))
		}
		oob = oob[min(cmsgAlign(l), len(oob)):]
	}
	return 0
}

// rxStash holds received messages that did not fit in the caller's batch,
// until later Reads hand them out. It is only filled when empty, so it is
// a simple queue; its slots (each MaxDatagram bytes) are allocated on first
// use and kept, bounding it by the batch size.
type rxStash struct {
	slots      []stashSlot
	head, tail int
}

type stashSlot struct {
	buf    []byte
	n, off int // bytes held, bytes already handed out
	seg    int // datagram size (all but the last datagram)
	src    netip.AddrPort
}

func (s *rxStash) pending() bool { return s.head < s.tail }

// push copies one received message into the stash.
func (s *rxStash) push(b []byte, seg int, src netip.AddrPort) {
	if s.tail == len(s.slots) {
		s.slots = append(s.slots, stashSlot{buf: make([]byte, MaxDatagram)})
	}
	sl := &s.slots[s.tail]
	sl.n, sl.off, sl.seg, sl.src = copy(sl.buf, b), 0, seg, src
	s.tail++
}

// take returns a view of the next stashed datagram, and its source, and
// moves past it. The stash must be pending. The view stays valid until the
// stash is next filled, which only happens once it is empty, in a later
// call.
func (s *rxStash) take() ([]byte, netip.AddrPort) {
	sl := &s.slots[s.head]
	l := min(sl.seg, sl.n-sl.off)
	v, src := sl.buf[sl.off:sl.off+l:sl.off+l], sl.src
	sl.off += l
	if sl.off >= sl.n {
		s.head++
	}
	if s.head == s.tail {
		s.head, s.tail = 0, 0
	}
	return v, src
}

// drain hands out stashed datagrams into bufs, in order, and returns how
// many it stored.
func (s *rxStash) drain(bufs [][]byte, sizes []int, eps []netip.AddrPort) int {
	i := 0
	for ; i < len(bufs) && s.pending(); i++ {
		v, src := s.take()
		sizes[i], eps[i] = copy(bufs[i], v), src
	}
	return i
}

// lend is drain for ReadViews: it stores views of the stashed datagrams
// (see take), of whole messages only, while they fit. A message is split
// only when it is the first and split is true (the batch would otherwise
// be empty). The datagrams of one GRO message are mostly one TCP
// superframe of the sender's; a batch that ended inside one would cut the
// superframe the TAP writer rebuilds from them in two.
func (s *rxStash) lend(views [][]byte, eps []netip.AddrPort, split bool) int {
	i := 0
	for i < len(views) && s.pending() {
		sl := &s.slots[s.head]
		left := 1
		if sl.seg > 0 {
			left = (sl.n - sl.off + sl.seg - 1) / sl.seg
		}
		if i+left > len(views) && (i > 0 || !split) {
			break // whole in a later call
		}
		for head := s.head; i < len(views) && s.pending() && s.head == head; i++ {
			views[i], eps[i] = s.take()
		}
	}
	return i
}
