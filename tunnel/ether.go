package tunnel

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// EthHeaderLen is the length of an untagged Ethernet II header.
const EthHeaderLen = 14

// Ethernet types the switch looks at.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeIPv6 = 0x86dd
)

// Errors returned by the frame parsers.
var (
	ErrFrameTooShort = errors.New("frame shorter than an ethernet header")
	ErrARPTooShort   = errors.New("arp packet too short")
	ErrARPNotIPv4    = errors.New("arp packet is not ethernet/ipv4")
)

// MAC is an Ethernet address as a comparable value, so it can key maps
// without allocating.
type MAC [6]byte

// Broadcast is ff:ff:ff:ff:ff:ff.
var Broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// IsMulticast reports whether m is a group address (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 == 1 }

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// String formats m as aa:bb:cc:dd:ee:ff. Not for the data path.
func (m MAC) String() string {
	const hexdig = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, v := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hexdig[v>>4], hexdig[v&0xf])
	}
	return string(b)
}

// EthHeader is a decoded Ethernet II header. Decode fills a caller-owned
// value, so parsing allocates nothing.
type EthHeader struct {
	Dst, Src MAC
	Type     uint16
}

// Decode parses the header at the start of frame.
func (h *EthHeader) Decode(frame []byte) error {
	if len(frame) < EthHeaderLen {
		return ErrFrameTooShort
	}
	copy(h.Dst[:], frame[0:6])
	copy(h.Src[:], frame[6:12])
	h.Type = binary.BigEndian.Uint16(frame[12:14])
	return nil
}

// Encode writes the header into the first EthHeaderLen bytes of b.
func (h *EthHeader) Encode(b []byte) {
	copy(b[0:6], h.Dst[:])
	copy(b[6:12], h.Src[:])
	binary.BigEndian.PutUint16(b[12:14], h.Type)
}

// ARP operations.
const (
	ARPRequest = 1
	ARPReply   = 2
)

// arpLen is the length of an Ethernet/IPv4 ARP packet (RFC 826).
const arpLen = 28

// ARP is a decoded Ethernet/IPv4 ARP packet.
type ARP struct {
	Op       uint16
	SHA, THA MAC
	SPA, TPA netip.Addr
}

// Decode parses an ARP packet (the Ethernet payload, not the frame). Only
// hardware type Ethernet and protocol IPv4 are accepted.
func (a *ARP) Decode(b []byte) error {
	if len(b) < arpLen {
		return ErrARPTooShort
	}
	if binary.BigEndian.Uint16(b[0:2]) != 1 || binary.BigEndian.Uint16(b[2:4]) != EtherTypeIPv4 ||
		b[4] != 6 || b[5] != 4 {
		return ErrARPNotIPv4
	}
	a.Op = binary.BigEndian.Uint16(b[6:8])
	copy(a.SHA[:], b[8:14])
	a.SPA = netip.AddrFrom4([4]byte(b[14:18]))
	copy(a.THA[:], b[18:24])
	a.TPA = netip.AddrFrom4([4]byte(b[24:28]))
	return nil
}

// Encode writes the packet into the first 28 bytes of b. SPA and TPA must
// be IPv4 addresses.
func (a *ARP) Encode(b []byte) {
	binary.BigEndian.PutUint16(b[0:2], 1)
	binary.BigEndian.PutUint16(b[2:4], EtherTypeIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:8], a.Op)
	copy(b[8:14], a.SHA[:])
	spa, tpa := a.SPA.As4(), a.TPA.As4()
	copy(b[14:18], spa[:])
	copy(b[18:24], a.THA[:])
	copy(b[24:28], tpa[:])
}
