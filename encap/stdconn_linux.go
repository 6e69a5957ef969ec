package encap

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// StdConn is the production Conn: one IPv4 UDP socket driven with
// recvmmsg/sendmmsg, UDP GRO on receive and UDP GSO on send.
//
// The socket stays in the Go netpoller (non-blocking, used through
// syscall.RawConn), so a Read parked waiting for data costs no thread and
// Close wakes it with net.ErrClosed.
//
// Concurrency: Read must be called by one goroutine at a time (its scratch
// msghdrs and the GRO overflow stash belong to that reader). Write may be
// called from any number of goroutines concurrently with each other and with
// Read: each Write takes its own send scratch from a bounded free list (see
// txFree), so writers never share scratch and no lock is held while the
// kernel copies a batch. BatchSize and LocalAddr are immutable. Close may be
// called from any goroutine, any number of times.
type StdConn struct {
	udp   *net.UDPConn
	rc    syscall.RawConn // from udp.SyscallConn, fetched once: it allocates
	laddr netip.AddrPort
	batch int
	gro   bool // UDP_GRO enabled on the socket; fixed after Listen

	// gsoOff is set (once, never cleared) when the kernel or the egress
	// device refuses UDP GSO; every later Write sends one datagram per
	// message. It starts set when the kernel does not know UDP_SEGMENT.
	gsoOff atomic.Bool
	// gsoMaxSeg is the largest datagram size sent with GSO. It only goes
	// down: an EINVAL for a segment larger than the path MTU lowers it
	// below that size rather than turning GSO off for every size.
	gsoMaxSeg atomic.Int32
	// pathSeg is the last destination whose path MTU is below the GSO
	// segments sent to it, with the largest segment that fits (see
	// stdconn_tx_linux.go). One destination is kept: the common case is
	// one peer behind a smaller link, and another such peer only costs
	// the failed send and route lookup every Write paid before.
	pathSeg atomic.Pointer[pathSeg]

	// closed is set by the first Close, so that later Closes return nil
	// and Read and Write fail fast with net.ErrClosed.
	closed atomic.Bool

	rx rxState // owned by the (single) reader

	// txFree is a bounded free list of send scratch. A buffered channel is
	// used rather than a sync.Pool because a pool is emptied by every GC
	// and, under the race detector, drops items at random: both would make
	// Write allocate in steady state. Writes beyond its capacity allocate a
	// scratch that is dropped afterwards.
	txFree chan *txScratch
}

var _ Conn = (*StdConn)(nil)

const (
	// socketBufferSize is asked for as SO_RCVBUF and SO_SNDBUF: a few ms of
	// line rate at 10 Gbit/s, so bursts of GSO super-datagrams are not
	// dropped while the reader is busy.
	socketBufferSize = 8 << 20

	// txFreeLen bounds the idle send scratch kept per conn: one per
	// concurrently writing goroutine is enough in steady state.
	txFreeLen = 16

	// minGSOSegLimit is the datagram size below which an EINVAL on a GSO
	// send cannot be blamed on the path MTU (IPv4 minimum MTU 576 minus IP
	// and UDP headers), so GSO is turned off instead of limited.
	minGSOSegLimit = 576 - 20 - 8
)

// Listen opens an IPv4 UDP socket bound to laddr (port 0 picks a free port)
// for batches of up to batch datagrams (0 means DefaultBatchSize). It turns
// on UDP GRO and enlarges the socket buffers where the kernel allows; when
// it does not, the conn works without them. The caller owns the returned
// conn and must Close it.
func Listen(laddr netip.AddrPort, batch int) (*StdConn, error) {
	udp, batch, err := listenUDP4(laddr, batch)
	if err != nil {
		return nil, err
	}
	success := false
	defer func() {
		if !success {
			udp.Close()
		}
	}()
	rc, err := udp.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("cannot get raw socket of %s: %w", laddr, err)
	}
	c := &StdConn{
		udp:    udp,
		rc:     rc,
		laddr:  udp.LocalAddr().(*net.UDPAddr).AddrPort(),
		batch:  batch,
		txFree: make(chan *txScratch, txFreeLen),
	}
	c.laddr = netip.AddrPortFrom(c.laddr.Addr().Unmap(), c.laddr.Port())
	c.gsoMaxSeg.Store(maxUDPPayload4)
	var gsoOK bool
	if err := rc.Control(func(fd uintptr) {
		setBuffers(int(fd))
		setPMTUDiscovery(int(fd))
		c.gro = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
		_, gerr := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		gsoOK = gerr == nil
	}); err != nil {
		return nil, fmt.Errorf("cannot set options on %s: %w", laddr, err)
	}
	c.gsoOff.Store(!gsoOK)
	c.rx.init(batch, c.gro)
	success = true
	return c, nil
}

// setBuffers asks for socketBufferSize send and receive buffers: first with
// the *FORCE options, which pass net.core.[rw]mem_max when the process has
// CAP_NET_ADMIN, then with the plain ones, which the kernel caps. Smaller
// buffers only cost drops under bursts, so failures are ignored.
func setBuffers(fd int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBufferSize) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, socketBufferSize)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBufferSize) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, socketBufferSize)
	}
}

// BatchSize returns the batch size given to Listen. It is safe for
// concurrent use.
func (c *StdConn) BatchSize() int { return c.batch }

// LocalAddr returns the bound address, with the port the kernel picked if
// Listen was given port 0. It is safe for concurrent use.
func (c *StdConn) LocalAddr() netip.AddrPort { return c.laddr }

// Offload reports whether UDP GRO is on for receiving and UDP GSO is (still)
// used for sending. GSO turns off for good when the kernel refuses it. It is
// safe for concurrent use.
func (c *StdConn) Offload() (gro, gso bool) { return c.gro, !c.gsoOff.Load() }

// sockaddrPort reads the network-order port of a raw IPv4 sockaddr.
func sockaddrPort(sa *unix.RawSockaddrInet4) uint16 {
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	return uint16(p[0])<<8 | uint16(p[1])
}

// setSockaddr fills a raw IPv4 sockaddr with a, port.
func setSockaddr(sa *unix.RawSockaddrInet4, a netip.Addr, port uint16) {
	sa.Family = unix.AF_INET
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	sa.Addr = a.As4()
}

// cmsgAlign rounds n up to the control-message alignment (a native word).
func cmsgAlign(n int) int {
	const w = int(unsafe.Sizeof(uintptr(0)))
	return (n + w - 1) &^ (w - 1)
}
