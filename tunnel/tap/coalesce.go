package tap

import (
	"bytes"
	"encoding/binary"
)

// Coalescing is the inverse of splitter: a run of consecutive TCP segments
// of one flow, as the switch hands them to Write, is turned into one GSO
// superframe so that the container's kernel receives one large skb, as if
// GRO had merged them. planCoalesce is pure; the device turns its result
// into one writev: the rewritten header from a device-owned scratch area,
// then the payload of every segment straight from the caller's frames.
//
// A segment joins a run only if the kernel, segmenting the superframe
// again, would reproduce it: same Ethernet header, same IP header apart
// from length, checksum and (consecutive, or irrelevant under DF) ID, same
// ports, ack, window and options, contiguous sequence numbers, flags ACK
// only (PSH allowed on the last), no IP options or fragments, and a
// payload equal to the first one's (the last may be shorter). Every
// segment's TCP checksum is verified first: the superframe is written with
// a partial checksum, which the receiving kernel trusts, so a corrupted
// segment must reach the kernel alone and unchanged to be dropped there.

const (
	// maxCoalesceSegs bounds the segments of one GSO write.
	maxCoalesceSegs = 64
	// maxCoalesceHdr is the largest virtio + Ethernet + IP + TCP header a
	// coalesced write carries (no IPv4 options, no IPv6 extensions).
	maxCoalesceHdr = vnetHdrLen + ethHdrLen + ipv6HdrLen + 60
)

// segInfo is what planCoalesce needs to know about one TCP segment.
type segInfo struct {
	v6     bool
	df     bool   // IPv4 don't-fragment bit
	tcpOff int    // offset of the TCP header
	hdrLen int    // Ethernet + IP + TCP header length
	end    int    // end of the IP packet (Ethernet padding excluded)
	pay    int    // TCP payload length, > 0
	seq    uint32 // TCP sequence number
	id     uint16 // IPv4 identification
	flags  uint8  // TCP flags: ACK, or ACK|PSH
}

// parseSeg reports whether frame f is a TCP data segment that may take
// part in a run, and fills si. It does not verify the TCP checksum.
func parseSeg(f []byte, si *segInfo) bool {
	if len(f) < ethHdrLen+ipv4MinHdr+tcpMinHdr {
		return false
	}
	ip := f[ethHdrLen:]
	switch binary.BigEndian.Uint16(f[12:]) {
	case etherTypeIPv4:
		frag := binary.BigEndian.Uint16(ip[6:])
		if ip[0] != 0x45 || ip[9] != protoTCP || frag&ipv4FragMask != 0 || checksum(ip[:ipv4MinHdr], 0) != 0xffff {
			return false
		}
		si.v6, si.df, si.id = false, frag&ipv4FlagDF != 0, binary.BigEndian.Uint16(ip[4:])
		si.end = ethHdrLen + int(binary.BigEndian.Uint16(ip[2:]))
		si.tcpOff = ethHdrLen + ipv4MinHdr
	case etherTypeIPv6:
		if len(ip) < ipv6HdrLen+tcpMinHdr || ip[0]>>4 != 6 || ip[6] != protoTCP {
			return false
		}
		si.v6, si.df, si.id = true, false, 0
		si.end = ethHdrLen + ipv6HdrLen + int(binary.BigEndian.Uint16(ip[4:]))
		si.tcpOff = ethHdrLen + ipv6HdrLen
	default:
		return false
	}
	if si.end > len(f) || si.tcpOff+tcpMinHdr > si.end {
		return false
	}
	tcp := f[si.tcpOff:]
	doff := int(tcp[12]>>4) * 4
	si.hdrLen = si.tcpOff + doff
	si.flags = tcp[13]
	if doff < tcpMinHdr || tcp[12]&0x0f != 0 || si.hdrLen >= si.end {
		return false
	}
	if si.flags != tcpFlagACK && si.flags != tcpFlagACK|tcpFlagPSH {
		return false
	}
	si.pay = si.end - si.hdrLen
	si.seq = binary.BigEndian.Uint32(tcp[4:])
	return true
}

// tcpChecksumOK verifies the TCP checksum of a segment parsed by parseSeg.
func tcpChecksumOK(f []byte, si *segInfo) bool {
	addrs := f[ethHdrLen+12 : ethHdrLen+20]
	if si.v6 {
		addrs = f[ethHdrLen+8 : ethHdrLen+40]
	}
	return checksum(f[si.tcpOff:si.end], pseudoSum(addrs, protoTCP, si.end-si.tcpOff)) == 0xffff
}

// follows reports whether segment f (cur) may follow prev in a run that
// started with f0 (first).
func follows(f0 []byte, first, prev *segInfo, f []byte, cur *segInfo) bool {
	if cur.v6 != first.v6 || cur.hdrLen != first.hdrLen || cur.pay > first.pay ||
		cur.seq != prev.seq+uint32(prev.pay) || !bytes.Equal(f[:12], f0[:12]) {
		return false
	}
	ip0, ip := f0[ethHdrLen:], f[ethHdrLen:]
	if cur.v6 {
		if !bytes.Equal(ip[0:4], ip0[0:4]) || !bytes.Equal(ip[6:40], ip0[6:40]) {
			return false
		}
	} else {
		if ip[1] != ip0[1] || !bytes.Equal(ip[6:10], ip0[6:10]) || !bytes.Equal(ip[12:20], ip0[12:20]) {
			return false
		}
		if !first.df && cur.id != prev.id+1 {
			return false
		}
	}
	t0, t := f0[first.tcpOff:first.hdrLen], f[cur.tcpOff:cur.hdrLen]
	return bytes.Equal(t[0:4], t0[0:4]) && // ports
		bytes.Equal(t[8:12], t0[8:12]) && // ack
		bytes.Equal(t[14:16], t0[14:16]) && // window
		bytes.Equal(t[20:], t0[20:]) // options
}

// planCoalesce finds the longest run at the start of frames that can be
// written as one GSO superframe. It returns the run's length n, which is 1
// when frames[0] must be written on its own. For n > 1 it writes the
// virtio header and the rewritten Ethernet/IP/TCP header to hdr (at least
// maxCoalesceHdr bytes) and returns their length hn; the superframe is
// hdr[:hn] followed by frames[i][hdrLen:end] for i < n. bad is the index
// of a frame found to carry a wrong TCP checksum, or -1: 0 when frames[0]
// itself is bad (n is then 1), n when the frame after the run is, which
// the caller should then write alone without planning it again. frames
// are only read.
func planCoalesce(frames [][]byte, hdr []byte) (n, hn, bad int) {
	var first, prev, cur segInfo
	f0 := frames[0]
	if len(frames) < 2 || !parseSeg(f0, &first) || first.flags&tcpFlagPSH != 0 {
		return 1, 0, -1
	}
	ipBase := first.hdrLen - ethHdrLen // IPv4 total length without payload
	if first.v6 {
		ipBase -= ipv6HdrLen // IPv6 payload length without payload
	}
	prev, total, n, bad := first, first.pay, 1, -1
	for n < len(frames) && n < maxCoalesceSegs {
		f := frames[n]
		if !parseSeg(f, &cur) || !follows(f0, &first, &prev, f, &cur) || ipBase+total+cur.pay > maxIPLen {
			break
		}
		if n == 1 && !tcpChecksumOK(f0, &first) {
			return 1, 0, 0
		}
		if !tcpChecksumOK(f, &cur) {
			bad = n
			break
		}
		total += cur.pay
		prev = cur
		n++
		if cur.flags&tcpFlagPSH != 0 || cur.pay < first.pay {
			break
		}
	}
	if n < 2 {
		return 1, 0, bad
	}
	return n, writeGSOHeader(hdr, f0, &first, total, prev.flags), bad
}

// writeGSOHeader writes the virtio header and the superframe's header,
// derived from the first segment f0, to hdr and returns their length.
func writeGSOHeader(hdr, f0 []byte, first *segInfo, total int, lastFlags uint8) int {
	h := vnetHdr{
		flags:      vnetFlagNeedsCsum,
		gsoType:    vnetGSOTCPv4,
		hdrLen:     uint16(first.hdrLen),
		gsoSize:    uint16(first.pay),
		csumStart:  uint16(first.tcpOff),
		csumOffset: tcpCsumOff,
	}
	if first.v6 {
		h.gsoType = vnetGSOTCPv6
	}
	h.encode(hdr)
	p := hdr[vnetHdrLen : vnetHdrLen+first.hdrLen]
	copy(p, f0[:first.hdrLen])
	ip := p[ethHdrLen:]
	addrs := ip[12:20]
	if first.v6 {
		binary.BigEndian.PutUint16(ip[4:], uint16(first.hdrLen-ethHdrLen-ipv6HdrLen+total))
		addrs = ip[8:40]
	} else {
		binary.BigEndian.PutUint16(ip[2:], uint16(first.hdrLen-ethHdrLen+total))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^checksum(ip[:ipv4MinHdr], 0))
	}
	tcp := p[first.tcpOff:]
	tcp[13] = first.flags | lastFlags&tcpFlagPSH
	l4 := first.hdrLen - first.tcpOff + total
	binary.BigEndian.PutUint16(tcp[tcpCsumOff:], pseudoSum(addrs, protoTCP, l4))
	return vnetHdrLen + first.hdrLen
}

// ipEnd returns the end of the IP packet in a frame accepted by parseSeg.
func ipEnd(f []byte) int {
	if binary.BigEndian.Uint16(f[12:]) == etherTypeIPv6 {
		return ethHdrLen + ipv6HdrLen + int(binary.BigEndian.Uint16(f[ethHdrLen+4:]))
	}
	return ethHdrLen + int(binary.BigEndian.Uint16(f[ethHdrLen+2:]))
}
