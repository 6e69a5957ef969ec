package tap

import (
	"bytes"
	"encoding/binary"
)

// UDP coalescing: the datagrams of one UDP flow in a batch handed to Write
// (a burst of DNS replies to one client socket, say) go to the container
// as one UDP GSO superframe (VIRTIO_NET_HDR_GSO_UDP_L4), which the
// container's kernel cuts back into the same datagrams. One write then
// carries what took one writev(2) per datagram, and the kernel's path up
// to the UDP layer runs once for them all.
//
// Unlike TCP runs, a UDP group need not be consecutive: the datagrams of
// several flows interleave in a batch (dnsperf's four sockets, a resolver's
// clients), so planUDP gathers those of the first frame's flow from the
// rest of the batch and marks them taken. Datagrams of one flow keep their
// order: the scan ends at the first datagram of the flow that cannot join
// (other headers, larger than the first, a wrong checksum, a gap in the
// IPv4 ID without DF), and at any fragment or other UDP frame between the same two
// addresses that it cannot parse, so nothing of the flow overtakes it. Frames of other flows may be
// written after a group that holds later frames than theirs; the kernel
// gives no order between flows either.
//
// A datagram joins only if the kernel, cutting the superframe, would give
// it back unchanged apart from its IPv4 ID (irrelevant under DF) and
// checksums: same Ethernet header, same IP header apart from length,
// checksum and ID, same ports, no IP options or fragments, a payload the
// size of the first one's (the last may be shorter). Every datagram's UDP
// checksum is verified first (an IPv4 zero checksum means none): the
// superframe carries a partial checksum that the receiving kernel trusts.

const (
	protoUDP      = 17
	udpHdrLen     = 8
	udpCsumOff    = 6 // offset of the checksum in the UDP header
	vnetGSOUDPL4  = 5 // VIRTIO_NET_HDR_GSO_UDP_L4
	maxUDPScan    = 2 * maxCoalesceSegs
	udpMinFrameV4 = ethHdrLen + ipv4MinHdr + udpHdrLen
)

// udpInfo is what planUDP needs to know about one UDP datagram.
type udpInfo struct {
	v6     bool
	df     bool   // IPv4 don't-fragment bit
	id     uint16 // IPv4 identification
	udpOff int    // offset of the UDP header
	end    int    // end of the IP packet (Ethernet padding excluded)
	pay    int    // UDP payload length, > 0
}

// isUDP reports cheaply whether frame f may be an untagged UDP datagram,
// before parseUDP looks closer.
func isUDP(f []byte) bool {
	if len(f) < udpMinFrameV4 {
		return false
	}
	switch binary.BigEndian.Uint16(f[12:]) {
	case etherTypeIPv4:
		return f[ethHdrLen+9] == protoUDP
	case etherTypeIPv6:
		return len(f) >= ethHdrLen+ipv6HdrLen+udpHdrLen && f[ethHdrLen+6] == protoUDP
	}
	return false
}

// parseUDP reports whether frame f is a UDP datagram with a payload that
// may join a group, and fills ui. It does not verify the UDP checksum.
func parseUDP(f []byte, ui *udpInfo) bool {
	if !isUDP(f) {
		return false
	}
	ip := f[ethHdrLen:]
	if binary.BigEndian.Uint16(f[12:]) == etherTypeIPv4 {
		frag := binary.BigEndian.Uint16(ip[6:])
		if ip[0] != 0x45 || frag&ipv4FragMask != 0 || checksum(ip[:ipv4MinHdr], 0) != 0xffff {
			return false
		}
		ui.v6, ui.df, ui.id = false, frag&ipv4FlagDF != 0, binary.BigEndian.Uint16(ip[4:])
		ui.end = ethHdrLen + int(binary.BigEndian.Uint16(ip[2:]))
		ui.udpOff = ethHdrLen + ipv4MinHdr
	} else {
		if ip[0]>>4 != 6 {
			return false
		}
		ui.v6, ui.df, ui.id = true, false, 0
		ui.end = ethHdrLen + ipv6HdrLen + int(binary.BigEndian.Uint16(ip[4:]))
		ui.udpOff = ethHdrLen + ipv6HdrLen
	}
	if ui.end > len(f) || ui.udpOff+udpHdrLen >= ui.end ||
		int(binary.BigEndian.Uint16(f[ui.udpOff+4:])) != ui.end-ui.udpOff {
		return false
	}
	ui.pay = ui.end - ui.udpOff - udpHdrLen
	return true
}

// udpChecksumOK verifies the UDP checksum of a datagram parsed by
// parseUDP. An IPv4 datagram without one (zero) passes; in IPv6 a zero
// checksum is invalid.
func udpChecksumOK(f []byte, ui *udpInfo) bool {
	addrs := f[ethHdrLen+12 : ethHdrLen+20]
	if ui.v6 {
		addrs = f[ethHdrLen+8 : ethHdrLen+40]
	} else if f[ui.udpOff+udpCsumOff] == 0 && f[ui.udpOff+udpCsumOff+1] == 0 {
		return true
	}
	return checksum(f[ui.udpOff:ui.end], pseudoSum(addrs, protoUDP, ui.end-ui.udpOff)) == 0xffff
}

// sameTuple reports whether datagram f (cur) has the addresses and ports
// of f0 (first).
func sameTuple(f0 []byte, first *udpInfo, f []byte, cur *udpInfo) bool {
	return cur.v6 == first.v6 && sameHosts(f0, f) &&
		bytes.Equal(f[cur.udpOff:cur.udpOff+4], f0[first.udpOff:first.udpOff+4])
}

// sameHeaders reports whether datagram f, of f0's flow, has headers the
// kernel would reproduce from f0's: Ethernet header, IPv4 TOS, flags,
// TTL and protocol, or the IPv6 version, class, flow label, next header
// and hop limit.
func sameHeaders(f0, f []byte, v6 bool) bool {
	ip0, ip := f0[ethHdrLen:], f[ethHdrLen:]
	if !bytes.Equal(f[:ethHdrLen], f0[:ethHdrLen]) {
		return false
	}
	if v6 {
		return bytes.Equal(ip[0:4], ip0[0:4]) && ip[6] == ip0[6] && ip[7] == ip0[7]
	}
	return ip[1] == ip0[1] && bytes.Equal(ip[6:10], ip0[6:10])
}

// sameHosts reports whether UDP frame f (accepted by isUDP) travels between
// the same addresses as f0, which parseUDP accepted.
func sameHosts(f0, f []byte) bool {
	if !bytes.Equal(f[12:14], f0[12:14]) {
		return false
	}
	if binary.BigEndian.Uint16(f[12:]) == etherTypeIPv6 {
		return bytes.Equal(f[ethHdrLen+8:ethHdrLen+40], f0[ethHdrLen+8:ethHdrLen+40])
	}
	return bytes.Equal(f[ethHdrLen+12:ethHdrLen+20], f0[ethHdrLen+12:ethHdrLen+20])
}

// planUDP gathers, from frames, the datagrams of frames[0]'s UDP flow that
// can be written with it as one GSO superframe. It writes their indexes to
// idx (idx[0] = 0, in order; idx holds at least maxCoalesceSegs), sets
// taken[k] for every gathered k > 0 (taken is as long as frames, or
// shorter: frames past it are not scanned), and returns their count n. A
// frame already taken is skipped. For n > 1 it also writes the virtio
// header and the superframe's header to hdr (at least maxCoalesceHdr
// bytes) and returns their length hn; the superframe is hdr[:hn] followed
// by frames[k][hn-vnetHdrLen:end] for each gathered k. n is 1 when
// frames[0] goes alone. frames are only read.
func planUDP(frames [][]byte, taken []bool, idx []uint16, hdr []byte) (n, hn int) {
	var first, prev, cur udpInfo
	f0 := frames[0]
	idx[0] = 0
	if len(frames) < 2 || !parseUDP(f0, &first) {
		return 1, 0
	}
	base := first.udpOff - ethHdrLen + udpHdrLen // IP length without payload
	if first.v6 {
		base -= ipv6HdrLen
	}
	prev, total, n, checked := first, first.pay, 1, false
	limit := min(len(frames), len(taken), maxUDPScan)
	for k := 1; k < limit && n < maxCoalesceSegs; k++ {
		f := frames[k]
		if taken[k] || !isUDP(f) || !sameHosts(f0, f) {
			continue
		}
		if !parseUDP(f, &cur) {
			break // a fragment or odd datagram between the same hosts: keep it ahead
		}
		if !sameTuple(f0, &first, f, &cur) {
			continue
		}
		if !sameHeaders(f0, f, first.v6) || cur.pay > first.pay || base+total+cur.pay > maxIPLen ||
			(!first.v6 && !first.df && cur.id != prev.id+1) {
			break // it cannot join: nothing later of the flow may pass it
		}
		if !checked {
			if !udpChecksumOK(f0, &first) {
				return 1, 0
			}
			checked = true
		}
		if !udpChecksumOK(f, &cur) {
			break
		}
		idx[n] = uint16(k)
		n++
		total += cur.pay
		prev = cur
		if cur.pay < first.pay {
			break
		}
	}
	if n < 2 {
		return 1, 0
	}
	for _, k := range idx[1:n] {
		taken[k] = true
	}
	return n, writeUDPGSOHeader(hdr, f0, &first, total)
}

// writeUDPGSOHeader writes the virtio header and the superframe's header,
// derived from the first datagram f0, to hdr and returns their length.
func writeUDPGSOHeader(hdr, f0 []byte, first *udpInfo, total int) int {
	hl := first.udpOff + udpHdrLen
	h := vnetHdr{
		flags:      vnetFlagNeedsCsum,
		gsoType:    vnetGSOUDPL4,
		hdrLen:     uint16(hl),
		gsoSize:    uint16(first.pay),
		csumStart:  uint16(first.udpOff),
		csumOffset: udpCsumOff,
	}
	h.encode(hdr)
	p := hdr[vnetHdrLen : vnetHdrLen+hl]
	copy(p, f0[:hl])
	ip := p[ethHdrLen:]
	addrs := ip[12:20]
	if first.v6 {
		binary.BigEndian.PutUint16(ip[4:], uint16(udpHdrLen+total))
		addrs = ip[8:40]
	} else {
		binary.BigEndian.PutUint16(ip[2:], uint16(hl-ethHdrLen+total))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^checksum(ip[:ipv4MinHdr], 0))
	}
	udp := p[first.udpOff:]
	binary.BigEndian.PutUint16(udp[4:], uint16(udpHdrLen+total))
	binary.BigEndian.PutUint16(udp[udpCsumOff:], pseudoSum(addrs, protoUDP, udpHdrLen+total))
	return vnetHdrLen + hl
}
