// Package overhead is the one home of the MTU arithmetic: what the overlay
// adds below a container's IP packet on the underlay, per kind of network.
// It holds pure numbers so that the config checks, the VXLAN codec, the
// WireGuard wrapper and the engine can all import it without importing
// each other (config must not pull in wireguard-go).
//
// A plain network sends a container frame as
//
//	outer IPv4 (20) | UDP (8) | VXLAN (8) | Ethernet (14) | container IP packet
//
// so its container MTU is the underlay MTU minus VXLAN (50). An encrypted
// network wraps that whole VXLAN datagram, with its IPv4 and UDP headers
// (which become the inner headers), in WireGuard:
//
//	outer IPv4 (20) | UDP (8) | WireGuard header (16) | inner IPv4 (20) |
//	UDP (8) | VXLAN (8) | Ethernet (14) | container IP packet | tag (16)
//
// so its container MTU is the underlay MTU minus Encrypted (110), and the
// WireGuard device's own MTU is the underlay MTU minus WireGuard (60).
package overhead

import (
	"github.com/vxwire/vxwire/internal/ether"
	"github.com/vxwire/vxwire/internal/ipv4"
)

// VXLANHeaderLen is the length of the VXLAN header (RFC 7348 §5).
const VXLANHeaderLen = 8

// WireGuard message sizes (the WireGuard paper, §5.4.6): the transport
// data message header (type, receiver index, counter) and the
// ChaCha20-Poly1305 tag.
const (
	WireGuardHeaderLen = 16
	WireGuardTagLen    = 16
)

// VXLAN is what VXLAN over IPv4 adds to a container's IP packet: outer
// IPv4, UDP, VXLAN and the inner Ethernet header (50).
const VXLAN = ipv4.MinHeaderLen + ipv4.UDPHeaderLen + VXLANHeaderLen + ether.HeaderLen

// WireGuard is what WireGuard over IPv4 adds below the packet it carries:
// outer IPv4, UDP, the data message header and the tag (60).
const WireGuard = ipv4.MinHeaderLen + ipv4.UDPHeaderLen + WireGuardHeaderLen + WireGuardTagLen

// Encrypted is what an encrypted network adds to a container's IP packet:
// a VXLAN datagram, whose IPv4 and UDP headers become the inner ones,
// carried in WireGuard (110).
const Encrypted = VXLAN + WireGuard

// Of returns what a network adds to a container's IP packet: Encrypted
// for an encrypted network, else VXLAN.
func Of(encrypted bool) int {
	if encrypted {
		return Encrypted
	}
	return VXLAN
}

// WireGuardPadding is the multiple WireGuard pads the packets it carries
// to (the WireGuard paper, §5.4.6), up to its device's MTU.
const WireGuardPadding = 16

// PathLimit returns the largest container IP packet of a network that
// crosses an underlay path of pathMTU bytes in one datagram. For an
// encrypted network WireGuard's padding counts: the VXLAN datagram is
// padded to a multiple of 16 bytes when it is smaller than the WireGuard
// device's MTU, as it is on a path smaller than the interface. (On a path
// as large as the interface, Of's 110 bytes hold: the device's MTU caps
// the padding.)
func PathLimit(pathMTU int, encrypted bool) int {
	if !encrypted {
		return pathMTU - VXLAN
	}
	return (pathMTU-WireGuard)&^(WireGuardPadding-1) - VXLAN
}
