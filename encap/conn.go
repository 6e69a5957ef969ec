package encap

import (
	"net/netip"
)

// Conn is the batched underlay datagram socket that VXLAN (or, for an
// encrypted network, WireGuard) rides on. It is shaped after wireguard-go's
// conn.Bind: one call moves a whole batch, so the per-syscall cost is paid
// once per batch rather than once per frame.
//
// Read and Write may be called concurrently with each other, but Read must
// not be called from more than one goroutine at a time. Close unblocks a
// pending Read, which then returns net.ErrClosed.
type Conn interface {
	// Read receives up to len(bufs) datagrams. Datagram i is stored in
	// bufs[i][:sizes[i]] and was sent from eps[i]. len(sizes) and len(eps)
	// must be at least len(bufs). Every buffer must be at least
	// MaxDatagram bytes long, because the kernel may hand over several
	// coalesced datagrams (UDP GRO) in one message, which Read splits back
	// into consecutive buffers. It blocks until at least one datagram is
	// available and returns how many were stored.
	Read(bufs [][]byte, sizes []int, eps []netip.AddrPort) (n int, err error)

	// Write sends every bufs[i] as one datagram to dst. The buffers are
	// borrowed for the duration of the call only and are not modified, so
	// the same batch may be written to several destinations (head-end
	// replication). Runs of equally sized datagrams may be handed to the
	// kernel as one UDP GSO send.
	Write(bufs [][]byte, dst netip.AddrPort) error

	// BatchSize is the largest number of buffers Read fills and the number
	// of buffers callers should pass to it.
	BatchSize() int

	// LocalAddr is the address the socket is bound to.
	LocalAddr() netip.AddrPort

	// Close closes the socket. It is safe to call more than once.
	Close() error
}
