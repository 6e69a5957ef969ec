package ipv4

import "encoding/binary"

// ICMP types and codes the overlay sends or relays (RFC 792, RFC 1812
// §5.2.7.1).
const (
	ICMPEchoReply       = 0
	ICMPUnreachable     = 3
	ICMPEchoRequest     = 8
	ICMPCodeFragNeeded  = 4  // "fragmentation needed and DF set", RFC 1191 next-hop MTU
	ICMPCodeAdminDenied = 13 // "communication administratively prohibited"
	ICMPHeaderLen       = 8
)

// MaxUnreachableLen is the longest packet Unreachable writes: IPv4 and
// ICMP headers, then the quoted IPv4 header (with options, at most 60
// bytes) and the first 8 bytes of its payload.
const MaxUnreachableLen = MinHeaderLen + ICMPHeaderLen + 60 + 8

// Unreachable writes into out an IPv4 ICMP destination unreachable
// message from src about the IPv4 packet pkt (sent back to pkt's source),
// with code and, for ICMPCodeFragNeeded, the next-hop MTU (RFC 1191). It
// quotes pkt's IP header and the first 8 bytes of its payload (RFC 792),
// and returns the length written: 0 when out is shorter than
// MaxUnreachableLen or pkt is not a whole IPv4 header. out may overlap pkt.
// It does not allocate.
func Unreachable(out, pkt []byte, src [4]byte, code uint8, mtu uint16) int {
	if len(out) < MaxUnreachableLen || len(pkt) < MinHeaderLen || pkt[0]>>4 != 4 {
		return 0
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < MinHeaderLen || ihl > len(pkt) {
		return 0
	}
	var quote [60 + 8]byte
	q := copy(quote[:], pkt[:min(len(pkt), ihl+8)])
	var dst [4]byte
	copy(dst[:], pkt[OffSrc:OffSrc+4])
	n := MinHeaderLen + ICMPHeaderLen + q
	h := out[:MinHeaderLen]
	h[0], h[1] = 0x45, 0xc0 // DSCP CS6, as kernels send ICMP errors
	binary.BigEndian.PutUint16(h[OffTotalLen:], uint16(n))
	binary.BigEndian.PutUint16(h[4:], 0)
	binary.BigEndian.PutUint16(h[OffFlags:], 0)
	h[OffTTL], h[OffProto] = 64, ProtoICMP
	binary.BigEndian.PutUint16(h[OffChecksum:], 0)
	copy(h[OffSrc:], src[:])
	copy(h[OffDst:], dst[:])
	binary.BigEndian.PutUint16(h[OffChecksum:], ^Checksum(h, 0))
	m := out[MinHeaderLen:n]
	m[0], m[1] = ICMPUnreachable, code
	binary.BigEndian.PutUint16(m[2:], 0)
	binary.BigEndian.PutUint16(m[4:], 0)
	binary.BigEndian.PutUint16(m[6:], 0)
	if code == ICMPCodeFragNeeded {
		binary.BigEndian.PutUint16(m[6:], mtu)
	}
	copy(m[ICMPHeaderLen:], quote[:q])
	binary.BigEndian.PutUint16(m[2:], ^Checksum(m, 0))
	return n
}

// Echo is an ICMP echo request or reply, decoded from an IPv4 packet.
type Echo struct {
	Src, Dst [4]byte
	Type     uint8 // ICMPEchoRequest or ICMPEchoReply
	ID, Seq  uint16
	TTL      uint8
	Data     []byte // the echo payload, borrowed from the packet
}

// ParseEcho decodes an unfragmented IPv4 ICMP echo request or reply with
// a valid ICMP checksum. It reports false for anything else: other
// protocols and ICMP types, fragments, truncated or inconsistent lengths,
// bad checksums. Data aliases pkt.
func ParseEcho(pkt []byte) (Echo, bool) {
	var e Echo
	if len(pkt) < MinHeaderLen || pkt[0]>>4 != 4 || pkt[OffProto] != ProtoICMP {
		return e, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[OffTotalLen:]))
	if ihl < MinHeaderLen || total < ihl+ICMPHeaderLen || total > len(pkt) {
		return e, false
	}
	if binary.BigEndian.Uint16(pkt[OffFlags:])&FragMask != 0 {
		return e, false
	}
	m := pkt[ihl:total]
	if m[0] != ICMPEchoRequest && m[0] != ICMPEchoReply || m[1] != 0 || Checksum(m, 0) != 0xffff {
		return e, false
	}
	copy(e.Src[:], pkt[OffSrc:OffSrc+4])
	copy(e.Dst[:], pkt[OffDst:OffDst+4])
	e.Type, e.TTL = m[0], pkt[OffTTL]
	e.ID, e.Seq = binary.BigEndian.Uint16(m[4:]), binary.BigEndian.Uint16(m[6:])
	e.Data = m[ICMPHeaderLen:]
	return e, true
}

// EchoLen is the length of the IPv4 packet PutEcho writes for e.
func EchoLen(e *Echo) int { return MinHeaderLen + ICMPHeaderLen + len(e.Data) }

// PutEcho writes e as an IPv4 ICMP echo packet into out, which must hold
// EchoLen(e) bytes and must not overlap e.Data, and returns its length.
func PutEcho(out []byte, e *Echo) int {
	n := EchoLen(e)
	h := out[:MinHeaderLen]
	h[0], h[1] = 0x45, 0
	binary.BigEndian.PutUint16(h[OffTotalLen:], uint16(n))
	binary.BigEndian.PutUint16(h[4:], 0)
	binary.BigEndian.PutUint16(h[OffFlags:], FlagDF)
	h[OffTTL], h[OffProto] = e.TTL, ProtoICMP
	binary.BigEndian.PutUint16(h[OffChecksum:], 0)
	copy(h[OffSrc:], e.Src[:])
	copy(h[OffDst:], e.Dst[:])
	binary.BigEndian.PutUint16(h[OffChecksum:], ^Checksum(h, 0))
	m := out[MinHeaderLen:n]
	m[0], m[1] = e.Type, 0
	binary.BigEndian.PutUint16(m[2:], 0)
	binary.BigEndian.PutUint16(m[4:], e.ID)
	binary.BigEndian.PutUint16(m[6:], e.Seq)
	copy(m[ICMPHeaderLen:], e.Data)
	binary.BigEndian.PutUint16(m[2:], ^Checksum(m, 0))
	return n
}
