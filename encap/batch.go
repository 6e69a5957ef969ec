package encap

import (
	"errors"
	"net/netip"
)

const (
	// DefaultBatchSize is the batch size Listen uses when asked for 0: as
	// many datagrams per system call as wireguard-go moves (128), enough to
	// amortise the syscall over a TAP read with offloads.
	DefaultBatchSize = 128

	// MaxBatchSize is the largest batch Listen accepts: the kernel caps the
	// vector length of recvmmsg and sendmmsg at UIO_MAXIOV (1024).
	MaxBatchSize = 1024
)

var (
	// ErrShortBuffer is returned by Conn.Read implementations when a buffer
	// is shorter than MaxDatagram.
	ErrShortBuffer = errors.New("read buffer shorter than MaxDatagram")

	// ErrBatchArgs is returned by Conn.Read implementations when sizes or
	// eps is shorter than bufs.
	ErrBatchArgs = errors.New("sizes or eps shorter than bufs")

	// ErrNotIPv4 is returned for a local or destination address that is not
	// IPv4 (or IPv4-mapped IPv6); the underlay is IPv4.
	ErrNotIPv4 = errors.New("address is not ipv4")
)

// CheckReadArgs validates the arguments of a Conn.Read call: sizes and eps
// at least as long as bufs, and every buffer at least MaxDatagram bytes. It
// is shared by every Conn implementation so that they fail alike. It only
// reads slice lengths, does not allocate and is safe for concurrent use.
func CheckReadArgs(bufs [][]byte, sizes []int, eps []netip.AddrPort) error {
	if len(sizes) < len(bufs) || len(eps) < len(bufs) {
		return ErrBatchArgs
	}
	for _, b := range bufs {
		if len(b) < MaxDatagram {
			return ErrShortBuffer
		}
	}
	return nil
}
