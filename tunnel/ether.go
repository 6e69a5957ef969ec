package tunnel

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/vxwire/vxwire/internal/ether"
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
	if len(frame) < ether.HeaderLen {
		return ErrFrameTooShort
	}
	copy(h.Dst[:], frame[ether.OffDst:ether.OffSrc])
	copy(h.Src[:], frame[ether.OffSrc:ether.OffType])
	h.Type = binary.BigEndian.Uint16(frame[ether.OffType:ether.HeaderLen])
	return nil
}

// Encode writes the header into the first ether.HeaderLen bytes of b.
func (h *EthHeader) Encode(b []byte) {
	copy(b[ether.OffDst:ether.OffSrc], h.Dst[:])
	copy(b[ether.OffSrc:ether.OffType], h.Src[:])
	binary.BigEndian.PutUint16(b[ether.OffType:ether.HeaderLen], h.Type)
}

// ARP is a decoded Ethernet/IPv4 ARP packet.
type ARP struct {
	Op       uint16
	SHA, THA MAC
	SPA, TPA netip.Addr
}

// Decode parses an ARP packet (the Ethernet payload, not the frame). Only
// hardware type Ethernet and protocol IPv4 are accepted.
func (a *ARP) Decode(b []byte) error {
	if len(b) < ether.ARPLen {
		return ErrARPTooShort
	}
	if binary.BigEndian.Uint16(b[ether.ARPOffHType:ether.ARPOffPType]) != ether.ARPHTypeEthernet ||
		binary.BigEndian.Uint16(b[ether.ARPOffPType:ether.ARPOffHLen]) != ether.TypeIPv4 ||
		b[ether.ARPOffHLen] != ether.ARPHLen || b[ether.ARPOffPLen] != ether.ARPPLen {
		return ErrARPNotIPv4
	}
	a.Op = binary.BigEndian.Uint16(b[ether.ARPOffOp:ether.ARPOffSHA])
	copy(a.SHA[:], b[ether.ARPOffSHA:ether.ARPOffSPA])
	a.SPA = netip.AddrFrom4([4]byte(b[ether.ARPOffSPA:ether.ARPOffTHA]))
	copy(a.THA[:], b[ether.ARPOffTHA:ether.ARPOffTPA])
	a.TPA = netip.AddrFrom4([4]byte(b[ether.ARPOffTPA:ether.ARPLen]))
	return nil
}

// Encode writes the packet into the first ether.ARPLen bytes of b. SPA and TPA must
// be IPv4 addresses.
func (a *ARP) Encode(b []byte) {
	binary.BigEndian.PutUint16(b[ether.ARPOffHType:ether.ARPOffPType], ether.ARPHTypeEthernet)
	binary.BigEndian.PutUint16(b[ether.ARPOffPType:ether.ARPOffHLen], ether.TypeIPv4)
	b[ether.ARPOffHLen], b[ether.ARPOffPLen] = ether.ARPHLen, ether.ARPPLen
	binary.BigEndian.PutUint16(b[ether.ARPOffOp:ether.ARPOffSHA], a.Op)
	copy(b[ether.ARPOffSHA:ether.ARPOffSPA], a.SHA[:])
	spa, tpa := a.SPA.As4(), a.TPA.As4()
	copy(b[ether.ARPOffSPA:ether.ARPOffTHA], spa[:])
	copy(b[ether.ARPOffTHA:ether.ARPOffTPA], a.THA[:])
	copy(b[ether.ARPOffTPA:ether.ARPLen], tpa[:])
}
