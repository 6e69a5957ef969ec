package encap

import (
	"errors"

	"github.com/vxwire/vxwire/internal/overhead"
)

// VXLAN header, RFC 7348 §5 ("VXLAN Frame Format"):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|R|R|R|I|R|R|R|                   Reserved                    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          VXLAN Network Identifier (VNI)       |   Reserved    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The I flag must be 1 for a valid VNI. Every R bit and reserved field
// "MUST be set to zero on transmission and ignored on receipt", so Encode
// writes zeros there and Decode does not look at them. The header follows
// the outer UDP header and precedes the inner Ethernet frame.

const (
	// HeaderLen is the length of the VXLAN header in bytes.
	HeaderLen = overhead.VXLANHeaderLen

	// DefaultPort is the IANA-assigned VXLAN UDP destination port.
	DefaultPort = 4789

	// Overhead is what VXLAN over IPv4 adds to a frame's IP payload: outer
	// IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14). A container's
	// MTU is the underlay MTU minus Overhead. See package overhead.
	Overhead = overhead.VXLAN

	// MaxDatagram is the largest UDP payload the underlay can carry, and so
	// the minimum length of every buffer passed to Conn.Read.
	MaxDatagram = 65535

	// MaxVNI is the largest VXLAN Network Identifier (24 bits).
	MaxVNI = 1<<24 - 1

	// FlagI is the "VNI valid" flag in the first header byte.
	FlagI = 0x08
)

var (
	// ErrHeaderTooShort is returned by Header.Decode when the datagram is
	// shorter than HeaderLen.
	ErrHeaderTooShort = errors.New("vxlan header too short")

	// ErrNoIFlag is returned by Header.Decode when the I flag is clear, so
	// the VNI field must not be used.
	ErrNoIFlag = errors.New("vxlan header has no I flag")
)

// Header is a decoded VXLAN header. It is a plain value: decode into a
// caller-owned Header and encode from it; it holds no reference to the
// bytes it was decoded from and is safe to copy. Like any variable, one
// Header must not be decoded into while another goroutine uses it.
type Header struct {
	// VNI is the 24-bit VXLAN Network Identifier (0 … MaxVNI).
	VNI uint32
}

// Decode parses the VXLAN header at the start of b into h. It reads only
// b[:HeaderLen], does not retain b and does not allocate. Reserved bits are
// ignored, as RFC 7348 requires. On error h is left unchanged.
func (h *Header) Decode(b []byte) error {
	if len(b) < HeaderLen {
		return ErrHeaderTooShort
	}
	if b[0]&FlagI == 0 {
		return ErrNoIFlag
	}
	h.VNI = uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6])
	return nil
}

// Encode writes h as a VXLAN header into b[:HeaderLen]: the I flag set,
// every reserved bit zero. It does not allocate.
//
// Encode panics if len(b) < HeaderLen or if h.VNI > MaxVNI: both are
// programming errors (VNIs are validated when a network is configured), and silently truncating a VNI would put a frame on the wrong
// network.
func (h *Header) Encode(b []byte) {
	_ = b[HeaderLen-1] // one bounds check, panics on a short buffer
	if h.VNI > MaxVNI {
		panic("encap: vni does not fit in 24 bits")
	}
	b[0] = FlagI
	b[1], b[2], b[3] = 0, 0, 0
	b[4] = byte(h.VNI >> 16)
	b[5] = byte(h.VNI >> 8)
	b[6] = byte(h.VNI)
	b[7] = 0
}
