package netstack

import (
	"github.com/vxwire/vxwire/internal/ether"
	"github.com/vxwire/vxwire/internal/ipv4"
)

// The frame filter runs on every frame Write receives, before any stack
// buffer is taken. It keeps the stack to what a gateway should see, which
// matters because egress puts the NIC in promiscuous and spoofing mode: in
// that mode gVisor would accept packets to any address and answer ARP for
// any address, impersonating every container on the subnet.
//
//	dst MAC   unicast and not the gateway's          → filtered
//	ARP       target address not the gateway         → filtered
//	IPv4      to the gateway address                 → stack
//	          TCP/UDP from the subnet to 0/8, 127/8,
//	          multicast or 240/4, egress on           → denied (counted as
//	                                                    egress, no answer)
//	          TCP/UDP from the subnet to another
//	          address outside it, egress on           → stack (policy,
//	                                                    forwarders)
//	          ICMP echo request from the subnet to
//	          another address outside it, egress on  → echo relay (ping.go)
//	          anything else (other ICMP to outside,
//	          other containers, subnet broadcast)    → filtered
//	IPv6                                             → dropped, counted apart
//	other EtherTypes, truncated frames               → malformed

// Offsets into the frame of the fields the filter reads.
const (
	offARPOp   = ether.HeaderLen + ether.ARPOffOp
	offARPSPA  = ether.HeaderLen + ether.ARPOffSPA
	offARPTPA  = ether.HeaderLen + ether.ARPOffTPA
	offIPProto = ether.HeaderLen + ipv4.OffProto
	offIPSrc   = ether.HeaderLen + ipv4.OffSrc
	offIPDst   = ether.HeaderLen + ipv4.OffDst
)

// admit returns where frame f goes: verdictPass (the stack) or
// verdictEcho (the echo relay); any other verdict is a drop, counted here.
func (g *Gateway) admit(f []byte) verdict {
	if len(f) < ether.HeaderLen {
		g.st.dropMalformed.Add(1)
		return verdictFiltered
	}
	toUs := [6]byte(f[0:6]) == g.mac
	if !toUs && f[0]&1 == 0 {
		g.st.dropFiltered.Add(1)
		return verdictFiltered
	}
	switch uint16(f[ether.OffType])<<8 | uint16(f[ether.OffType+1]) {
	case ether.TypeARP:
		if len(f) < ether.HeaderLen+ether.ARPLen {
			g.st.dropMalformed.Add(1)
			return verdictFiltered
		}
		if [4]byte(f[offARPTPA:offARPTPA+4]) != g.gw {
			g.st.dropFiltered.Add(1)
			return verdictFiltered
		}
		return verdictPass
	case ether.TypeIPv4:
		if len(f) < ether.HeaderLen+ipv4.MinHeaderLen || f[ether.HeaderLen]>>4 != 4 {
			g.st.dropMalformed.Add(1)
			return verdictFiltered
		}
		v := g.admitIPv4(f, toUs)
		switch v {
		case verdictPass, verdictEcho:
		case verdictDenied:
			g.st.dropDenied.Add(1)
		default:
			g.st.dropFiltered.Add(1)
		}
		return v
	case ether.TypeIPv6:
		g.st.dropIPv6.Add(1)
		return verdictFiltered
	default:
		g.st.dropMalformed.Add(1)
		return verdictFiltered
	}
}

// verdict is what the frame filter does with an IPv4 frame.
type verdict int

const (
	verdictFiltered verdict = iota // not for the gateway
	verdictPass                    // to the stack
	verdictDenied                  // egress to a destination never forwarded
	verdictEcho                    // an ICMP echo request to relay (ping.go)
)

// admitIPv4 applies the address rules to an IPv4 frame of at least a
// minimal header.
func (g *Gateway) admitIPv4(f []byte, toUs bool) verdict {
	if [4]byte(f[offIPDst:offIPDst+4]) == g.gw {
		return verdictPass
	}
	if !g.cfg.Egress || !toUs {
		return verdictFiltered
	}
	pass := verdictPass
	if p := f[offIPProto]; p != ipv4.ProtoTCP && p != ipv4.ProtoUDP {
		if !g.isEcho(f) {
			return verdictFiltered
		}
		pass = verdictEcho
	}
	src, dst := be32(f[offIPSrc:]), be32(f[offIPDst:])
	switch {
	case !g.inSubnet(src) || src == be32(g.gw[:]) || g.inSubnet(dst):
		return verdictFiltered
	case !forwardable(dst):
		return verdictDenied
	}
	return pass
}

// isEcho reports whether f, an IPv4 frame of at least a minimal header,
// is an ICMP echo request to an address other than the gateway's: the
// echo relay's, not the stack's.
func (g *Gateway) isEcho(f []byte) bool {
	ihl := int(f[ether.HeaderLen]&0x0f) * 4
	return f[offIPProto] == ipv4.ProtoICMP && len(f) > ether.HeaderLen+ihl &&
		[4]byte(f[offIPDst:offIPDst+4]) != g.gw &&
		f[ether.HeaderLen+ihl] == ipv4.ICMPEchoRequest
}

// inSubnet reports whether a is inside the gateway's prefix.
func (g *Gateway) inSubnet(a uint32) bool { return a&g.mask == g.netU32 }

// forwardable reports whether a may be dialled on a container's behalf:
// not "this network" (0/8), loopback (127/8) — which would reach the
// daemon host's own services —, multicast (224/4) or reserved and limited
// broadcast (240/4). These are dropped without an answer: a container's
// kernel routes 0/8 and loopback to itself and would discard an answer
// from such a source as martian, and RFC 1812 forbids ICMP errors about
// group addresses. The policy (policy.go) refuses them too.
func forwardable(a uint32) bool {
	switch top := a >> 24; {
	case top == 0, top == 127, top >= 224:
		return false
	}
	return true
}

// fixARP rewrites the sender address of an outbound ARP request to the
// gateway's. With spoofing on, gVisor sends "who has C? tell X" with X the
// outside address a NATed reply is sent from; the container should learn
// nothing about X.
func (g *Gateway) fixARP(f []byte) {
	if len(f) < ether.HeaderLen+ether.ARPLen ||
		uint16(f[ether.OffType])<<8|uint16(f[ether.OffType+1]) != ether.TypeARP ||
		uint16(f[offARPOp])<<8|uint16(f[offARPOp+1]) != ether.ARPRequest {
		return
	}
	copy(f[offARPSPA:offARPSPA+4], g.gw[:])
}
