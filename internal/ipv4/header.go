package ipv4

// IPv4 header numbers (RFC 791) shared by the switch, the TAP device, the
// gateway filter, the flow hash and the encrypted path.

// MinHeaderLen is the length of an IPv4 header without options (IHL 5).
const MinHeaderLen = 20

// MinDatagramLen is the size of datagram every IPv4 host must accept
// (RFC 791): the smallest MTU the overlay accepts anywhere.
const MinDatagramLen = 576

// Offsets into an IPv4 header.
const (
	OffTotalLen = 2  // total length, big-endian
	OffFlags    = 6  // flags and fragment offset, big-endian
	OffTTL      = 8  // time to live
	OffProto    = 9  // protocol number
	OffChecksum = 10 // header checksum
	OffSrc      = 12 // source address
	OffDst      = 16 // destination address
)

// Bits of the flags and fragment offset field, at OffFlags.
const (
	FlagDF         = 0x4000 // don't fragment
	FlagMF         = 0x2000 // more fragments
	FragOffsetMask = 0x1fff // fragment offset, in 8-byte units
	// FragMask is non-zero in any fragment: MF or an offset.
	FragMask = FlagMF | FragOffsetMask
)

// Protocol numbers (IANA) the overlay looks at.
const (
	ProtoICMP    = 1
	ProtoTCP     = 6
	ProtoUDP     = 17
	ProtoSCTP    = 132
	ProtoUDPLite = 136
)

// UDPHeaderLen is the length of a UDP header (RFC 768).
const UDPHeaderLen = 8
