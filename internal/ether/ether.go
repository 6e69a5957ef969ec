// Package ether holds the Ethernet II and ARP (RFC 826) numbers that the
// switch, the TAP device, the gateway filter and the flow hash share, so
// each is written once. It holds constants only, no code, and imports
// nothing.
package ether

// HeaderLen is the length of an untagged Ethernet II header: destination
// MAC, source MAC and EtherType.
const HeaderLen = 14

// Offsets into an Ethernet II header.
const (
	OffDst  = 0  // destination MAC
	OffSrc  = 6  // source MAC
	OffType = 12 // EtherType, big-endian
)

// EtherTypes (IEEE 802.3) the overlay looks at.
const (
	TypeIPv4 = 0x0800
	TypeARP  = 0x0806
	TypeIPv6 = 0x86dd
	TypeVLAN = 0x8100 // IEEE 802.1Q tag
	TypeQinQ = 0x88a8 // IEEE 802.1ad service tag
)

// VLANTagLen is the length of one 802.1Q or 802.1ad tag.
const VLANTagLen = 4

// ARPLen is the length of an Ethernet/IPv4 ARP packet (RFC 826), the
// Ethernet payload of an ARP frame.
const ARPLen = 28

// ARP field values for Ethernet/IPv4.
const (
	ARPHTypeEthernet = 1 // hardware type Ethernet
	ARPHLen          = 6 // hardware address length
	ARPPLen          = 4 // protocol (IPv4) address length
)

// ARP operations.
const (
	ARPRequest = 1
	ARPReply   = 2
)

// Offsets into an Ethernet/IPv4 ARP packet (from the start of the ARP
// packet, not of the frame).
const (
	ARPOffHType = 0  // hardware type
	ARPOffPType = 2  // protocol type (an EtherType)
	ARPOffHLen  = 4  // hardware address length
	ARPOffPLen  = 5  // protocol address length
	ARPOffOp    = 6  // operation
	ARPOffSHA   = 8  // sender hardware address
	ARPOffSPA   = 14 // sender protocol address
	ARPOffTHA   = 18 // target hardware address
	ARPOffTPA   = 24 // target protocol address
)
