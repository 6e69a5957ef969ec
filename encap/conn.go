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

// ViewReader is implemented by a Conn that can lend the datagrams it
// receives instead of copying them: datagrams that UDP GRO delivered in one
// message stay where the kernel put them, back to back in one buffer, and
// the caller gets a view of each. The plain VXLAN socket implements it; the
// underlay reader uses it when available (one copy of every received byte
// fewer) and Read otherwise.
type ViewReader interface {
	// ReadViews receives like Read, into bufs (each at least MaxDatagram
	// bytes), but stores datagram i as views[i], a slice of one of bufs or
	// of the conn's own overflow buffer, capped at its length, so that
	// growing a view can never reach the next datagram. The views are valid
	// until the next ReadViews or Read. len(eps) must be at least
	// len(views); at most len(views) datagrams are returned.
	ReadViews(bufs, views [][]byte, eps []netip.AddrPort) (n int, err error)
}

// GatherWriter is implemented by a Conn that can send a datagram gathered
// from two slices, so that a sender holding a frame's headers in one
// buffer and its payload in another (a segment of a TAP super-frame) need
// not copy them together. The plain VXLAN socket implements it.
type GatherWriter interface {
	// WriteGather sends heads[i] followed by tails[i] as one datagram to
	// dst, for every i < len(heads), as Write sends bufs[i]; len(tails)
	// must be at least len(heads), and a tail may be empty. Both are
	// borrowed for the call only and are not modified.
	WriteGather(heads, tails [][]byte, dst netip.AddrPort) error
}
