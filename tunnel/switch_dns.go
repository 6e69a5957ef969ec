package tunnel

import (
	"encoding/binary"
	"net/netip"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/ether"
	"github.com/vxwire/vxwire/internal/ipv4"
	"github.com/vxwire/vxwire/resolver"
)

// Header lengths of the DNS fast path's frames.
const (
	ipv4HeaderLen = ipv4.MinHeaderLen
	udpHeaderLen  = ipv4.UDPHeaderLen
	dnsPortNum    = 53
	udpProto      = ipv4.ProtoUDP
)

// answerDNS answers a container's UDP DNS query to its gateway in the
// switch, without the gateway's TCP/IP stack: the reply is built in place
// in the query's own buffer (buf holds the frame at encap.HeaderLen, size
// bytes long) and the reply frame is returned. Queries for upstream
// servers, TCP, fragments and IP options take the usual path through the
// gateway (nil is returned). A local answer costs the resolver's lookup
// and two header rewrites instead of a trip through gVisor and a socket.
//
// A query routed through the gateway to a DNS server outside the subnet
// is answered here too, from that server's address, when it asks for one
// of the overlay's own names (resolver.AnswerOwnFrom); any other name
// goes on to the server asked. Docker's resolver (127.0.0.11) forwards
// what it does not know from the container's namespace to the host's
// servers, so a Docker container resolves names on other hosts without
// --dns.
func answerDNS(s *scratch, nv *netView, buf []byte, size int) []byte {
	frame := buf[encap.HeaderLen : encap.HeaderLen+size]
	const ipOff = ether.HeaderLen
	const udpOff = ipOff + ipv4HeaderLen
	const dnsOff = udpOff + udpHeaderLen
	if len(frame) < dnsOff+12 || frame[ipOff] != 0x45 || frame[ipOff+9] != udpProto {
		return nil
	}
	dst := netip.AddrFrom4([4]byte(frame[ipOff+16 : ipOff+20]))
	toGateway := dst == nv.net.cfg.Gateway
	if (!toGateway && nv.net.cfg.Subnet.Contains(dst)) ||
		binary.BigEndian.Uint16(frame[udpOff+2:]) != dnsPortNum ||
		binary.BigEndian.Uint16(frame[ipOff+ipv4.OffFlags:])&ipv4.FragMask != 0 {
		return nil
	}
	ipLen := int(binary.BigEndian.Uint16(frame[ipOff+2:]))
	udpLen := int(binary.BigEndian.Uint16(frame[udpOff+4:]))
	if ipLen > len(frame)-ipOff || udpLen != ipLen-ipv4HeaderLen || udpLen < udpHeaderLen {
		return nil
	}
	if s.dns == nil {
		s.dns = make([]byte, 0, 4096)
		s.dnsq = new(resolver.Scratch)
	}
	client := netip.AddrFrom4([4]byte(frame[ipOff+12 : ipOff+16]))
	var resp []byte
	var ok bool
	if toGateway {
		resp, ok = nv.net.dns.AnswerLocalWith(s.dnsq, client, frame[dnsOff:udpOff+udpLen], s.dns[:0])
	} else {
		resp, ok = nv.net.dns.AnswerOwnWith(s.dnsq, client, frame[dnsOff:udpOff+udpLen], s.dns[:0])
	}
	if !ok || encap.HeaderLen+dnsOff+len(resp) > len(buf) {
		return nil
	}
	out := buf[encap.HeaderLen : encap.HeaderLen+dnsOff+len(resp)]
	copy(out[dnsOff:], resp)
	// Ethernet: back to the asker, from the gateway.
	var eth [6]byte
	copy(eth[:], out[0:6])
	copy(out[0:6], out[6:12])
	copy(out[6:12], eth[:])
	// IPv4: swap the addresses, fresh length, TTL and checksum.
	var a [4]byte
	copy(a[:], out[ipOff+12:ipOff+16])
	copy(out[ipOff+12:ipOff+16], out[ipOff+16:ipOff+20])
	copy(out[ipOff+16:ipOff+20], a[:])
	binary.BigEndian.PutUint16(out[ipOff+2:], uint16(ipv4HeaderLen+udpHeaderLen+len(resp)))
	binary.BigEndian.PutUint16(out[ipOff+4:], 0) // id
	binary.BigEndian.PutUint16(out[ipOff+ipv4.OffFlags:], ipv4.FlagDF)
	out[ipOff+8] = 64
	binary.BigEndian.PutUint16(out[ipOff+10:], 0)
	binary.BigEndian.PutUint16(out[ipOff+10:], ^ipv4.Checksum(out[ipOff:udpOff], 0))
	// UDP: swap the ports, fresh length and checksum.
	sp, dp := binary.BigEndian.Uint16(out[udpOff:]), binary.BigEndian.Uint16(out[udpOff+2:])
	binary.BigEndian.PutUint16(out[udpOff:], dp)
	binary.BigEndian.PutUint16(out[udpOff+2:], sp)
	binary.BigEndian.PutUint16(out[udpOff+4:], uint16(udpHeaderLen+len(resp)))
	binary.BigEndian.PutUint16(out[udpOff+6:], 0)
	pseudo := ipv4.Checksum(out[ipOff+12:ipOff+20], uint16(udpProto+udpHeaderLen+len(resp)))
	c := ^ipv4.Checksum(out[udpOff:], pseudo)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(out[udpOff+6:], c)
	return out
}
