package tunnel

// Path MTU in the switch: no black holes when the underlay path to a peer
// is smaller than the network's MTU (a router with a 1300-byte link on
// the way).
//
//	routinePathMTU (the control plane, every PathMTUCheck; pathmtu.go)
//	  encap.PathMTU per peer: the kernel's path MTU to it, which the
//	  underlay sockets' DF datagrams and the routers' ICMP "fragmentation
//	  needed" taught it ─▶ peer.pmtu (atomic; 0 until known)
//	  peer.probe set ─▶ the next plain batch to the peer sends its largest
//	      datagram alone (writeProbing). Only a lone datagram carries DF:
//	      the kernel decides DF by the length it is given, which for a
//	      GSO send is the whole batch, so bulk traffic sent with GSO
//	      crosses a smaller link fragmented by the router, and the kernel
//	      would never learn the path from it
//	port → peer (switchFromPort, per frame, when the path is smaller)
//	  IPv4 with DF, larger than the path carries ─▶ dropped (too_big), and
//	      ICMP "fragmentation needed" with the usable MTU goes back to the
//	      container from the gateway address, built in the frame's buffer
//	  IPv4 without DF, larger ─▶ sent: the kernel fragments the outer
//	      datagram (IP_PMTUDISC_WANT) and the peer reassembles it, as kernel
//	      VXLAN does with df unset; the container's packet stays whole
//	  TCP SYN, SYN-ACK ─▶ MSS option clamped to the path (incremental
//	      checksum), so that new connections never send too much
//	peer → port (switchFromUnderlay, per frame, when the path back is smaller)
//	  TCP SYN, SYN-ACK ─▶ MSS clamped to the path back to that peer: the
//	      local container learns how much it may send there
//
// The usable size is the path MTU minus what the network adds
// (overhead.PathLimit: 50 plain; 110 encrypted, and WireGuard's padding
// to 16 bytes, so 1182 on a 1300-byte path). Frames from the TAP reach the
// switch already segmented to the container's gso_size with complete
// checksums (tunnel/tap), so a super-frame whose segments are too big for
// the path shows up as DF segments that get the ICMP above, after which
// the container's TCP lowers its segment size; the MSS clamp keeps new
// connections from getting there at all.

import (
	"encoding/binary"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/ether"
	"github.com/vxwire/vxwire/internal/ipv4"
	"github.com/vxwire/vxwire/internal/overhead"
)

// minIPv4MTU is the smallest MTU every IPv4 link must carry (RFC 791).
const minIPv4MTU = 68

// pathLimit returns the largest IP packet of network nv that reaches peer
// r in one underlay datagram, or 0 when the network's MTU fits the path
// (or the path is not known yet).
func pathLimit(r *peer, nv *netView) int {
	pm := int(r.pmtu.Load())
	if pm == 0 {
		return 0
	}
	if pm-overhead.Of(nv.encrypted) >= nv.net.mtu {
		return 0
	}
	return max(overhead.PathLimit(pm, nv.encrypted), minIPv4MTU)
}

// fitPath makes frame, an Ethernet frame of ethertype typ from port p
// bound for a peer whose path carries IP packets of at most lim bytes,
// fit that path. It clamps a TCP SYN's MSS. For an IPv4 packet with DF
// that is larger than lim it returns the ICMP "fragmentation needed"
// reply for p, built over the frame (whose buffer extends to cap(frame)),
// and the frame must then not be sent; otherwise it returns nil.
func fitPath(frame []byte, typ uint16, nv *netView, lim int) []byte {
	if typ != ether.TypeIPv4 || len(frame) < ether.HeaderLen+ipv4.MinHeaderLen {
		return nil
	}
	ip := frame[ether.HeaderLen:]
	if len(ip) <= lim {
		if lim > ipv4.TCPIPHeaderLen {
			ipv4.ClampMSS(ip, uint16(lim-ipv4.TCPIPHeaderLen))
		}
		return nil
	}
	if binary.BigEndian.Uint16(ip[ipv4.OffFlags:])&ipv4.FlagDF == 0 {
		return nil // no DF: the outer datagram is fragmented instead
	}
	out := frame[:cap(frame)]
	if len(out) < ether.HeaderLen+ipv4.MaxUnreachableLen {
		return nil
	}
	n := ipv4.Unreachable(out[ether.HeaderLen:], ip, nv.net.cfg.Gateway.As4(), ipv4.ICMPCodeFragNeeded, uint16(lim))
	if n == 0 {
		return nil
	}
	// Back to the sender, from the gateway.
	copy(out[ether.OffDst:ether.OffDst+6], frame[ether.OffSrc:ether.OffSrc+6])
	copy(out[ether.OffSrc:ether.OffSrc+6], nv.net.gw.mac[:])
	return out[:ether.HeaderLen+n]
}

// clampFromPeer clamps the MSS of a TCP SYN that peer r sent on network
// nv to what the path back to r carries, before it reaches a local port.
func clampFromPeer(frame []byte, typ uint16, r *peer, nv *netView) {
	if typ != ether.TypeIPv4 || len(frame) < ether.HeaderLen+ipv4.TCPIPHeaderLen {
		return
	}
	if lim := pathLimit(r, nv); lim > ipv4.TCPIPHeaderLen {
		ipv4.ClampMSS(frame[ether.HeaderLen:], uint16(lim-ipv4.TCPIPHeaderLen))
	}
}

// writeProbing writes dgrams to peer r through c, a plain underlay
// socket. When r's probe is due and the batch can be split
// (encap.SplitProbe), its largest datagram is written alone, so that it
// leaves with DF: a router whose link is smaller drops it and tells the
// kernel the path MTU, which routinePathMTU then reads. That costs one
// frame once, on a path that is smaller than anyone knew; the sender's
// transport repeats it.
func writeProbing(r *peer, c encap.Conn, dgrams [][]byte) error {
	if !r.probe.Load() {
		return c.Write(dgrams, r.addr)
	}
	parts, ok := encap.SplitProbe(dgrams)
	if !ok || !r.probe.CompareAndSwap(true, false) {
		return c.Write(dgrams, r.addr)
	}
	var err error
	for _, part := range parts {
		if len(part) == 0 {
			continue
		}
		if werr := c.Write(part, r.addr); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}
