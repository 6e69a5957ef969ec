package encap

import (
	"encoding/binary"

	"github.com/vxwire/vxwire/internal/ether"
	"github.com/vxwire/vxwire/internal/ipv4"
)

// The outer UDP source port of a VXLAN datagram carries a hash of the inner
// flow (RFC 7348 §5: "It is recommended that the UDP source port number be
// calculated using a hash of fields from the inner packet"), so that ECMP
// routers and NIC RSS in the underlay spread overlay flows over their paths
// and queues, while all frames of one flow keep one path and stay in order.

const (
	// SourcePortMin is the lowest UDP source port SourcePort returns: the
	// start of the IANA dynamic range, as Linux and most VTEPs use.
	SourcePortMin = 49152

	// SourcePortMax is the highest UDP source port SourcePort returns.
	SourcePortMax = 65535
)

// Limits and IPv6 numbers the flow hash looks at; the Ethernet and IPv4
// numbers are those of internal/ether and internal/ipv4.
const (
	maxVLANTags    = 2
	maxIPv6ExtHdrs = 4

	ipv6HopByHop = 0
	ipv6Routing  = 43
	ipv6Fragment = 44
	ipv6DestOpts = 60
)

// hashSeed and hashMul are fixed so that every host (and every restart of
// the daemon) maps a flow to the same port, which keeps captures readable.
const (
	hashSeed = 0x243f6a8885a308d3
	hashMul  = 0x9e3779b97f4a7c15
)

// SourcePort returns the outer UDP source port for the Ethernet frame, in
// [SourcePortMin, SourcePortMax]. The port is a hash of the frame's flow:
// both MAC addresses, the VLAN IDs and the EtherType; for IPv4 and IPv6 the
// addresses and the transport protocol; for TCP, UDP, UDP-Lite and SCTP
// (when the packet is not a fragment) both ports. Every frame of a flow gets
// the same port whatever its payload.
//
// SourcePort reads frame only, never retains it, does not allocate and is
// safe for concurrent use. Truncated or malformed frames are hashed as far
// as they can be parsed.
func SourcePort(frame []byte) uint16 {
	return SourcePortMin + uint16(flowHash(frame)&(SourcePortMax-SourcePortMin))
}

// mix folds v into the running hash h.
func mix(h, v uint64) uint64 {
	h = (h ^ v) * hashMul
	return h ^ h>>31
}

// finish is the murmur3 64-bit finaliser, so every output bit depends on
// every input bit before the low bits are taken for the port.
func finish(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	return h ^ h>>33
}

// flowHash hashes the flow fields of an Ethernet frame.
func flowHash(f []byte) uint64 {
	if len(f) < ether.HeaderLen {
		return hashRunt(f)
	}
	h := mix(hashSeed, binary.BigEndian.Uint64(f[0:8]))
	h = mix(h, uint64(binary.BigEndian.Uint32(f[8:12])))
	et := binary.BigEndian.Uint16(f[ether.OffType:ether.HeaderLen])
	off := ether.HeaderLen
	for i := 0; i < maxVLANTags && (et == ether.TypeVLAN || et == ether.TypeQinQ); i++ {
		if len(f) < off+ether.VLANTagLen {
			break
		}
		h = mix(h, uint64(binary.BigEndian.Uint16(f[off:])&0x0fff)) // VLAN ID only, not the priority
		et = binary.BigEndian.Uint16(f[off+2:])
		off += ether.VLANTagLen
	}
	h = mix(h, uint64(et))
	switch et {
	case ether.TypeIPv4:
		h = hashIPv4(h, f, off)
	case ether.TypeIPv6:
		h = hashIPv6(h, f, off)
	}
	return finish(h)
}

// hashRunt hashes a frame too short to hold an Ethernet header.
func hashRunt(f []byte) uint64 {
	h := mix(hashSeed, uint64(len(f)))
	for _, b := range f {
		h = mix(h, uint64(b))
	}
	return finish(h)
}

// hashIPv4 folds the IPv4 header at f[off:] and its ports into h.
func hashIPv4(h uint64, f []byte, off int) uint64 {
	if len(f) < off+ipv4.MinHeaderLen {
		return h
	}
	ip := f[off:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < ipv4.MinHeaderLen {
		return h
	}
	proto := ip[ipv4.OffProto]
	h = mix(h, uint64(proto))
	h = mix(h, binary.BigEndian.Uint64(ip[ipv4.OffSrc:ipv4.OffDst+4]))
	if binary.BigEndian.Uint16(ip[ipv4.OffFlags:ipv4.OffFlags+2])&ipv4.FragMask != 0 {
		return h // a fragment: only the first one would have ports
	}
	return hashPorts(h, f, off+ihl, proto)
}

// hashIPv6 folds the IPv6 header at f[off:] and its ports into h, skipping
// a few extension headers to find the transport protocol.
func hashIPv6(h uint64, f []byte, off int) uint64 {
	if len(f) < off+40 {
		return h
	}
	ip := f[off:]
	if ip[0]>>4 != 6 {
		return h
	}
	for i := 8; i < 40; i += 8 {
		h = mix(h, binary.BigEndian.Uint64(ip[i:]))
	}
	proto := ip[6]
	l4 := off + 40
	for i := 0; i < maxIPv6ExtHdrs; i++ {
		if proto != ipv6HopByHop && proto != ipv6Routing && proto != ipv6DestOpts {
			break
		}
		if len(f) < l4+2 {
			return mix(h, uint64(proto))
		}
		proto, l4 = f[l4], l4+(int(f[l4+1])+1)*8
	}
	h = mix(h, uint64(proto))
	if proto == ipv6Fragment {
		return h
	}
	return hashPorts(h, f, l4, proto)
}

// hashPorts folds the transport ports at f[l4:] into h for protocols that
// have them at the start of their header.
func hashPorts(h uint64, f []byte, l4 int, proto byte) uint64 {
	switch proto {
	case ipv4.ProtoTCP, ipv4.ProtoUDP, ipv4.ProtoSCTP, ipv4.ProtoUDPLite:
	default:
		return h
	}
	if l4 < 0 || len(f) < l4+4 {
		return h
	}
	return mix(h, uint64(binary.BigEndian.Uint32(f[l4:])))
}
