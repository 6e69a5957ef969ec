// Package ipv4 holds small IPv4 prefix helpers shared by the config
// checks, the allocator, the gateway and the engine.
package ipv4

import "net/netip"

// Broadcast returns the last address of the IPv4 prefix p (its broadcast
// address). p must be an IPv4 prefix.
func Broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= ^(^uint32(0) << (32 - p.Bits()))
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
