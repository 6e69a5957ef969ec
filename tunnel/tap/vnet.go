package tap

import (
	"encoding/binary"

	"github.com/vxwire/vxwire/internal/ether"
	"github.com/vxwire/vxwire/internal/ipv4"
)

// Layout of struct virtio_net_hdr (virtio 1.x §5.1.6, legacy form without
// num_buffers), which the TAP puts before every frame once IFF_VNET_HDR is
// set. The fields are in host byte order (the TAP is not switched to
// TUNSETVNETLE/BE), hence binary.NativeEndian.
//
//	0      1          2          4          6            8             10
//	+------+----------+----------+----------+------------+-------------+
//	|flags | gso_type | hdr_len  | gso_size | csum_start | csum_offset |
//	+------+----------+----------+----------+------------+-------------+
const (
	vnetHdrLen = 10

	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM

	vnetGSONone  = 0    // VIRTIO_NET_HDR_GSO_NONE
	vnetGSOTCPv4 = 1    // VIRTIO_NET_HDR_GSO_TCPV4
	vnetGSOUDP   = 3    // VIRTIO_NET_HDR_GSO_UDP
	vnetGSOTCPv6 = 4    // VIRTIO_NET_HDR_GSO_TCPV6
	vnetGSOECN   = 0x80 // VIRTIO_NET_HDR_GSO_ECN
)

// Ethernet, IP and TCP constants used by segmentation and coalescing. The
// Ethernet, IPv4 and TCP numbers are short local names for those of
// internal/ether and internal/ipv4, their one home.
const (
	ethHdrLen     = ether.HeaderLen
	etherTypeIPv4 = ether.TypeIPv4
	etherTypeIPv6 = ether.TypeIPv6
	ipv4MinHdr    = ipv4.MinHeaderLen
	ipv4OffFlags  = ipv4.OffFlags
	ipv4FlagDF    = ipv4.FlagDF
	ipv4FragMask  = ipv4.FragMask
	ipv6HdrLen    = 40
	tcpMinHdr     = ipv4.TCPMinHeaderLen
	protoTCP      = ipv4.ProtoTCP
	tcpCsumOff    = 16 // offset of the checksum in the TCP header

	tcpFlagFIN = ipv4.TCPFlagFIN
	tcpFlagPSH = ipv4.TCPFlagPSH
	tcpFlagACK = ipv4.TCPFlagACK
	tcpFlagCWR = ipv4.TCPFlagCWR

	// maxIPLen is the largest IPv4 total length or IPv6 payload length
	// plus header that a superframe may carry (no jumbograms).
	maxIPLen = 65535

	// superSize is the size of a superframe read buffer: the virtio
	// header, an Ethernet header with one VLAN tag, and the largest IP
	// packet.
	superSize = vnetHdrLen + ethHdrLen + ether.VLANTagLen + maxIPLen
)

// vnetHdr is a decoded virtio_net_hdr.
type vnetHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

// decode reads h from b, which must hold at least vnetHdrLen bytes.
func (h *vnetHdr) decode(b []byte) {
	_ = b[vnetHdrLen-1]
	h.flags = b[0]
	h.gsoType = b[1]
	h.hdrLen = binary.NativeEndian.Uint16(b[2:])
	h.gsoSize = binary.NativeEndian.Uint16(b[4:])
	h.csumStart = binary.NativeEndian.Uint16(b[6:])
	h.csumOffset = binary.NativeEndian.Uint16(b[8:])
}

// encode writes h to b, which must hold at least vnetHdrLen bytes.
func (h *vnetHdr) encode(b []byte) {
	_ = b[vnetHdrLen-1]
	b[0] = h.flags
	b[1] = h.gsoType
	binary.NativeEndian.PutUint16(b[2:], h.hdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.gsoSize)
	binary.NativeEndian.PutUint16(b[6:], h.csumStart)
	binary.NativeEndian.PutUint16(b[8:], h.csumOffset)
}
