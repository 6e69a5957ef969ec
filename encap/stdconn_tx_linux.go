package encap

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Send path of StdConn.
//
//	Write ─▶ build: cut bufs into runs of equally sized datagrams (the last
//	         of a run may be shorter; at most maxGSOSegments datagrams and
//	         maxUDPPayload4 bytes); each run becomes one msghdr whose iovecs
//	         point at the caller's buffers (no copy, nothing modified) plus a
//	         UDP_SEGMENT cmsg; a datagram without an equal neighbour gets a
//	         msghdr of its own and no cmsg. WriteGather does the same with
//	         two iovecs per datagram, its head and its tail: the kernel
//	         gathers gso_size-byte segments across them
//	      ─▶ send: one sendmmsg for all msghdrs, repeated from the first
//	         unsent one until all are sent (the kernel may stop early); the
//	         netpoller waits out EAGAIN
//	      ─▶ on error for msghdr i:
//	           segments above this destination's path MTU (EINVAL or
//	           EMSGSIZE, and the kernel's path MTU to dst is smaller than
//	           them) → rebuild the rest of this Write with GSO only for
//	           datagrams that fit the path; the kernel fragments the
//	           others, and other destinations keep GSO at full size. The
//	           destination and its limit are remembered (StdConn.pathSeg)
//	           for pathSegTTL, so the next Writes to it are built to fit
//	           rather than failing and reading the path MTU again
//	           GSO refused (EIO: no checksum offload on the egress device;
//	           EOPNOTSUPP; EINVAL: segment above the path MTU or GSO not
//	           allowed on this route) → turn GSO off (or lower gsoMaxSeg) and
//	           rebuild from msghdr i without it; that state only moves
//	           one way, and after maxGSOFallbacks GSO is simply off
//	           ENOBUFS → retry after a short sleep, maxTransientRetries times
//	           EMSGSIZE → drop that datagram, send the rest, report it
//	           anything else → return it

const (
	// maxTransientRetries bounds the retries of a sendmmsg that failed with
	// ENOBUFS (device queue full), as wireguard-go bounds its retries.
	maxTransientRetries = 5
	// transientBackoff is the sleep before the first retry; it grows
	// linearly.
	transientBackoff = 50 * time.Microsecond
	// maxGSOFallbacks bounds how often one Write rebuilds its batch after
	// the kernel refused GSO; at the bound GSO is turned off for the conn,
	// which ends the rebuilding.
	maxGSOFallbacks = 8
	// pathSegTTL is how long a Write trusts a destination's path MTU
	// found after a failed GSO send (StdConn.pathSeg) before it tries
	// full-size GSO there again: a path MTU learnt from ICMP expires.
	pathSegTTL = 10 * time.Second
)

// errGSORefused tells write to rebuild the rest of the batch without GSO.
var errGSORefused = errors.New("udp gso refused")

// errGSOPath tells write to rebuild the rest of this batch with GSO only
// for datagrams of at most txScratch.pathMaxSeg bytes: its segments are
// too large for the path to this destination only.
var errGSOPath = errors.New("udp gso segment above the path mtu")

// pathSeg is a destination whose path carries GSO segments of at most
// maxSeg bytes, until the unix time in nanoseconds.
type pathSeg struct {
	dst    netip.AddrPort
	maxSeg int
	until  int64
}

// txScratch is the send scratch of one Write call: the msghdrs, iovecs and
// UDP_SEGMENT cmsgs built over the caller's buffers. It is owned by one
// Write at a time and recycled through StdConn.txFree.
type txScratch struct {
	msgs   []unix.Mmsghdr
	iovs   []unix.Iovec
	oob    []byte
	first  []int // index in the built bufs of msghdr i's first datagram
	seg    []int // GSO segment size of msghdr i, 0 without GSO
	name   unix.RawSockaddrInet4
	oobLen int

	m, iovUsed int // msghdrs and iovecs built
	sent       int // msghdrs sent (or dropped) so far
	errno      syscall.Errno
	skipErr    error // first per-datagram error of this Write
	pathMaxSeg int   // with errGSOPath: the largest segment the path carries

	writeFn func(fd uintptr) bool // s.write, bound once
}

func newTxScratch(batch int) *txScratch {
	s := &txScratch{
		msgs:   make([]unix.Mmsghdr, batch),
		iovs:   make([]unix.Iovec, 2*batch), // a head and a tail per datagram
		first:  make([]int, batch),
		seg:    make([]int, batch),
		oobLen: cmsgAlign(unix.CmsgSpace(2)),
	}
	s.oob = make([]byte, batch*s.oobLen)
	for i := range s.msgs {
		h := &s.msgs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&s.name))
		h.Namelen = unix.SizeofSockaddrInet4
	}
	s.writeFn = s.write
	return s
}

func (c *StdConn) getScratch() *txScratch {
	select {
	case s := <-c.txFree:
		return s
	default:
		return newTxScratch(c.batch)
	}
}

// putScratch drops the references to the caller's buffers and returns s to
// the free list, or to the garbage collector if the list is full.
func (c *StdConn) putScratch(s *txScratch) {
	for i := 0; i < s.iovUsed; i++ {
		s.iovs[i].Base = nil
	}
	s.skipErr = nil
	select {
	case c.txFree <- s:
	default:
	}
}

// Write sends every bufs[i] as one UDP datagram to dst, as described by
// Conn.Write. The buffers are only read, and only during the call. Runs of
// equally sized datagrams go to the kernel as one UDP GSO message, all runs
// of a batch in as few sendmmsg calls as the kernel allows. If a datagram
// is too large to send it is dropped, the rest of the batch is still sent,
// and an error wrapping EMSGSIZE is returned. Write is safe for concurrent
// use and does not allocate in steady state.
func (c *StdConn) Write(bufs [][]byte, dst netip.AddrPort) error {
	a := dst.Addr().Unmap()
	if !a.Is4() {
		return ErrNotIPv4
	}
	if c.closed.Load() {
		return net.ErrClosed
	}
	if len(bufs) == 0 {
		return nil
	}
	s := c.getScratch()
	setSockaddr(&s.name, a, dst.Port())
	err := c.write(s, bufs, nil, netip.AddrPortFrom(a, dst.Port()))
	c.putScratch(s)
	return err
}

// WriteGather sends datagram i, heads[i] followed by tails[i], for every
// i < len(heads), to dst, as Write sends bufs (encap.GatherWriter): the
// kernel gathers each datagram from its two slices, so a frame's headers
// and its payload need not be copied together first. A nil or empty tail
// is allowed. Both are only read, and only during the call. It is safe for
// concurrent use and does not allocate in steady state.
func (c *StdConn) WriteGather(heads, tails [][]byte, dst netip.AddrPort) error {
	if len(tails) < len(heads) {
		return ErrBatchArgs
	}
	a := dst.Addr().Unmap()
	if !a.Is4() {
		return ErrNotIPv4
	}
	if c.closed.Load() {
		return net.ErrClosed
	}
	if len(heads) == 0 {
		return nil
	}
	s := c.getScratch()
	setSockaddr(&s.name, a, dst.Port())
	err := c.write(s, heads, tails[:len(heads)], netip.AddrPortFrom(a, dst.Port()))
	c.putScratch(s)
	return err
}

// write sends bufs (each followed by tails[i] if tails is not nil) to dst
// in chunks of at most one scratch's capacity.
func (c *StdConn) write(s *txScratch, bufs, tails [][]byte, dst netip.AddrPort) error {
	fallbacks := 0
	pathMax := c.pathMaxSeg(dst)
	for len(bufs) > 0 {
		n := s.build(bufs, tails, !c.gsoOff.Load(), min(int(c.gsoMaxSeg.Load()), pathMax))
		done, err := c.send(s)
		if err == errGSOPath {
			// Smaller than every segment that failed: no loop.
			pathMax = min(pathMax, s.pathMaxSeg)
			bufs, tails = bufs[done:], from(tails, done)
			continue
		}
		if err == errGSORefused {
			fallbacks++
			if fallbacks >= maxGSOFallbacks {
				c.gsoOff.Store(true) // cannot be refused again
			}
			bufs, tails = bufs[done:], from(tails, done)
			continue
		}
		if err != nil {
			return err
		}
		bufs, tails = bufs[n:], from(tails, n)
	}
	return s.skipErr
}

// from is tails[i:], or nil for no tails.
func from(tails [][]byte, i int) [][]byte {
	if tails == nil {
		return nil
	}
	return tails[i:]
}

// dgramLen is the length of datagram i: bufs[i] and its tail.
func dgramLen(bufs, tails [][]byte, i int) int {
	if tails == nil {
		return len(bufs[i])
	}
	return len(bufs[i]) + len(tails[i])
}

// build fills the scratch with msghdrs for a prefix of bufs (and their
// tails, if not nil) and returns the length of that prefix.
func (s *txScratch) build(bufs, tails [][]byte, gso bool, maxSeg int) int {
	per := 1 // iovecs a datagram may take
	if tails != nil {
		per = 2
	}
	m, iv, i := 0, 0, 0
	for i < len(bufs) && m < len(s.msgs) && iv+per <= len(s.iovs) {
		size := dgramLen(bufs, tails, i)
		run := 1
		if gso && size > 0 && size <= maxSeg {
			run = runLen(bufs[i:], from(tails, i), min(maxGSOSegments, (len(s.iovs)-iv)/per))
		}
		h := &s.msgs[m].Hdr
		h.Iov = &s.iovs[iv]
		cnt := 0
		for j, b := range bufs[i : i+run] {
			if len(b) > 0 || tails == nil {
				s.iovs[iv+cnt].Base = unsafe.SliceData(b)
				s.iovs[iv+cnt].SetLen(len(b))
				cnt++
			}
			if tails != nil && len(tails[i+j]) > 0 {
				s.iovs[iv+cnt].Base = unsafe.SliceData(tails[i+j])
				s.iovs[iv+cnt].SetLen(len(tails[i+j]))
				cnt++
			}
		}
		h.SetIovlen(cnt)
		s.first[m], s.seg[m] = i, 0
		if run > 1 {
			s.seg[m] = size
			s.setSegment(m, size)
		} else {
			h.Control = nil
			h.SetControllen(0)
		}
		m, iv, i = m+1, iv+cnt, i+run
	}
	s.m, s.iovUsed = m, iv
	return i
}

// runLen returns how many datagrams from the start of bufs (with tails,
// if not nil) can go in one GSO send: all of the size of the first except
// possibly a shorter last one, at most limit of them and maxUDPPayload4
// bytes in total.
func runLen(bufs, tails [][]byte, limit int) int {
	size := dgramLen(bufs, tails, 0)
	run, total := 1, size
	for k := 1; k < len(bufs); k++ {
		l := dgramLen(bufs, tails, k)
		if run >= limit || l == 0 || l > size || total+l > maxUDPPayload4 {
			break
		}
		run, total = run+1, total+l
		if l < size {
			break
		}
	}
	return run
}

// setSegment attaches a UDP_SEGMENT cmsg with the segment size to msghdr m.
func (s *txScratch) setSegment(m, size int) {
	oob := s.oob[m*s.oobLen : (m+1)*s.oobLen]
	ch := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	ch.Level = unix.IPPROTO_UDP
	ch.Type = unix.UDP_SEGMENT
	ch.SetLen(unix.CmsgLen(2))
	hdrLen := unix.CmsgLen(0)
	*(*uint16)(unsafe.Pointer(&oob[hdrLen])) = uint16(size)
	h := &s.msgs[m].Hdr
	h.Control = &oob[0]
	h.SetControllen(unix.CmsgSpace(2))
}

// send hands the built msghdrs to the kernel. It returns errGSORefused and
// the number of datagrams before the refused msghdr when the rest must be
// rebuilt without GSO.
func (c *StdConn) send(s *txScratch) (int, error) {
	s.sent = 0
	retries := 0
	for s.sent < s.m {
		s.errno = 0
		if err := c.rc.Write(s.writeFn); err != nil {
			return 0, closedOr("sendmmsg", err)
		}
		if s.errno == 0 {
			continue
		}
		e, i := s.errno, s.sent
		switch {
		case s.seg[i] > 0 && (e == unix.EINVAL || e == unix.EMSGSIZE) && c.aboveDstPath(s, s.seg[i]):
			return s.first[i], errGSOPath
		case s.seg[i] > 0 && c.refuseGSO(e, s.seg[i]):
			return s.first[i], errGSORefused
		case e == unix.ENOBUFS && retries < maxTransientRetries:
			retries++
			time.Sleep(time.Duration(retries) * transientBackoff)
		case e == unix.EMSGSIZE:
			if s.skipErr == nil {
				s.skipErr = fmt.Errorf("sendmmsg: datagram dropped: %w", e)
			}
			s.sent++
		default:
			return 0, fmt.Errorf("sendmmsg: %w", e)
		}
	}
	return 0, nil
}

// aboveDstPath reports whether UDP payloads of size bytes do not fit the
// kernel's path MTU to the scratch's destination, which makes a GSO send
// of them fail for that destination only. If so it sets s.pathMaxSeg to
// what the path carries and remembers that for later Writes (pathSeg).
// It costs a route lookup, and only runs after such a failure.
func (c *StdConn) aboveDstPath(s *txScratch, size int) bool {
	dst := netip.AddrPortFrom(netip.AddrFrom4(s.name.Addr), sockaddrPort(&s.name))
	mtu, err := PathMTU(dst)
	if err != nil || size+ipv4UDPHeaders <= mtu {
		return false
	}
	s.pathMaxSeg = mtu - ipv4UDPHeaders
	c.pathSeg.Store(&pathSeg{dst: dst, maxSeg: s.pathMaxSeg, until: time.Now().Add(pathSegTTL).UnixNano()})
	return true
}

// pathMaxSeg returns the largest GSO segment the path to dst is known to
// carry: the remembered one when dst is the destination of c.pathSeg and
// it has not expired, else no limit. The clock is read only for that
// destination.
func (c *StdConn) pathMaxSeg(dst netip.AddrPort) int {
	if p := c.pathSeg.Load(); p != nil && p.dst == dst && time.Now().UnixNano() < p.until {
		return p.maxSeg
	}
	return maxUDPPayload4
}

// ipv4UDPHeaders is what IPv4 and UDP add to a UDP payload.
const ipv4UDPHeaders = 20 + 8

// write is the RawConn.Write callback: false asks the netpoller to wait
// until the socket is writable again.
func (s *txScratch) write(fd uintptr) bool {
	for s.sent < s.m {
		// Raw, like recvmmsg in Read: nonblocking, and no sysmon wakeup.
		n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&s.msgs[s.sent])), uintptr(s.m-s.sent), 0, 0, 0)
		switch {
		case e == 0 && n > 0:
			s.sent += int(n)
		case e == unix.EINTR:
		case e == unix.EAGAIN:
			return false
		case e == 0:
			s.errno = unix.EIO // no progress and no error: do not spin
			return true
		default:
			s.errno = e
			return true
		}
	}
	return true
}

// refuseGSO decides whether errno e for a GSO send of size-byte segments
// means GSO cannot be used, and if so records it for this conn: EIO and
// EOPNOTSUPP turn GSO off, EINVAL and EMSGSIZE limit it to smaller segments
// (or turn it off when the segments were already small).
func (c *StdConn) refuseGSO(e syscall.Errno, size int) bool {
	switch e {
	case unix.EIO, unix.EOPNOTSUPP:
		c.gsoOff.Store(true)
	case unix.EINVAL, unix.EMSGSIZE:
		if size <= minGSOSegLimit {
			c.gsoOff.Store(true)
			return true
		}
		for {
			cur := c.gsoMaxSeg.Load()
			if int(cur) < size || c.gsoMaxSeg.CompareAndSwap(cur, int32(size-1)) {
				break
			}
		}
	default:
		return false
	}
	return true
}
