package tap

import "github.com/vxwire/vxwire/internal/ipv4"

// checksum is the Internet checksum of the frames' headers and payloads,
// folded and not complemented; see ipv4.Checksum.
func checksum(b []byte, initial uint16) uint16 { return ipv4.Checksum(b, initial) }

// csumAdd adds two folded ones'-complement sums.
func csumAdd(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16((s & 0xffff) + (s >> 16))
}

// pseudoSum returns the folded sum of a TCP/UDP pseudo-header (RFC 793
// §3.1, RFC 8200 §8.1): addrs is the source and destination address as
// they appear in the IP header, proto the transport protocol and l4Len
// the transport header plus payload length.
func pseudoSum(addrs []byte, proto uint8, l4Len int) uint16 {
	s := checksum(addrs, uint16(proto))
	return csumAdd(s, uint16(l4Len))
}
