package crypto

// The inner packet. A VXLAN datagram of an encrypted network crosses the
// WireGuard tunnel as the payload of an IPv4/UDP packet between the two
// hosts' tunnel addresses, exactly what a kernel VXLAN device bound to a wg
// interface sends and expects (RFC 791, RFC 768):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |      TOS      |         Total Length          |
//	|        Identification         |Flags|    Fragment Offset      |
//	|      TTL      | Protocol = 17 |        Header Checksum        |
//	|             Source = sender's tunnel address                  |
//	|          Destination = receiver's tunnel address              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|       Source Port (any)       |    Destination Port = 4789    |
//	|            Length             |       Checksum (0 = none)     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 VXLAN header and inner frame ...              |
//
// wrap writes version 4, IHL 5, TOS 0, identification 0 with DF set (an
// atomic datagram, RFC 6864), TTL 64, both ports 4789 and a zero UDP
// checksum, as RFC 7348 §5 allows. unwrap accepts any source port and does
// not verify a non-zero UDP checksum: the packet has just been
// authenticated by WireGuard's AEAD, so it cannot have been corrupted, and
// the IPv4 header checksum is checked only to reject what a real interface
// would reject.

import (
	"encoding/binary"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/ipv4"
	"github.com/vxwire/vxwire/internal/overhead"
)

const (
	ipv4HeaderLen = ipv4.MinHeaderLen
	udpHeaderLen  = ipv4.UDPHeaderLen

	// InnerOverhead is what the inner IPv4 and UDP headers add to a VXLAN
	// datagram.
	InnerOverhead = ipv4HeaderLen + udpHeaderLen

	// TunnelOverhead is what WireGuard adds below the inner packet: outer
	// IPv4 (20) + UDP (8) + WireGuard data header (16) + AEAD tag (16).
	// The inner MTU (Config.MTU) is the underlay MTU minus TunnelOverhead.
	// See package overhead.
	TunnelOverhead = overhead.WireGuard

	innerTTL  = 64
	protoUDP  = ipv4.ProtoUDP
	vxlanPort = encap.DefaultPort
)

// wrap writes into b the inner packet from src to dst that carries
// payload, and returns its length. b must hold InnerOverhead+len(payload)
// bytes and the payload must fit the 16-bit IPv4 total length; the caller
// checks both. It does not allocate.
func wrap(b, payload []byte, src, dst [4]byte) int {
	total := InnerOverhead + len(payload)
	h := b[:ipv4HeaderLen]
	h[0] = 4<<4 | ipv4HeaderLen/4
	h[1] = 0
	binary.BigEndian.PutUint16(h[2:], uint16(total))
	binary.BigEndian.PutUint32(h[4:], ipv4.FlagDF) // identification 0, DF
	h[8] = innerTTL
	h[9] = protoUDP
	h[10], h[11] = 0, 0
	copy(h[12:16], src[:])
	copy(h[16:20], dst[:])
	binary.BigEndian.PutUint16(h[10:], ^ipv4.Checksum(h, 0))
	u := b[ipv4HeaderLen:InnerOverhead]
	binary.BigEndian.PutUint16(u[0:], vxlanPort)
	binary.BigEndian.PutUint16(u[2:], vxlanPort)
	binary.BigEndian.PutUint16(u[4:], uint16(udpHeaderLen+len(payload)))
	u[6], u[7] = 0, 0
	copy(b[InnerOverhead:], payload)
	return total
}

// unwrap validates the inner packet pkt, addressed to local, and returns
// the VXLAN datagram it carries (a sub-slice of pkt) and its source
// address. On failure it returns the reason to count the drop under. It
// reads only pkt, does not retain it and does not allocate.
func unwrap(pkt []byte, local [4]byte) (payload []byte, src [4]byte, why DropReason) {
	if len(pkt) < ipv4HeaderLen {
		return nil, src, DropShort
	}
	if pkt[0]>>4 != 4 {
		return nil, src, DropNotIPv4
	}
	hl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:]))
	if hl < ipv4HeaderLen || total < hl+udpHeaderLen || total > len(pkt) {
		return nil, src, DropBadHeader
	}
	pkt = pkt[:total]
	if ipv4.Checksum(pkt[:hl], 0) != 0xffff {
		return nil, src, DropBadChecksum
	}
	if binary.BigEndian.Uint16(pkt[6:])&ipv4.FragMask != 0 {
		return nil, src, DropFragment
	}
	if pkt[9] != protoUDP {
		return nil, src, DropNotUDP
	}
	if [4]byte(pkt[16:20]) != local {
		return nil, src, DropWrongDst
	}
	u := pkt[hl:]
	if binary.BigEndian.Uint16(u[2:]) != vxlanPort {
		return nil, src, DropWrongPort
	}
	ulen := int(binary.BigEndian.Uint16(u[4:]))
	if ulen < udpHeaderLen || ulen > len(u) {
		return nil, src, DropBadHeader
	}
	return u[udpHeaderLen:ulen], [4]byte(pkt[12:16]), DropNone
}
