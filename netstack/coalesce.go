package netstack

import (
	"bytes"
	"encoding/binary"

	"github.com/vxwire/vxwire/internal/ether"
	vxip "github.com/vxwire/vxwire/internal/ipv4"
	"gvisor.dev/gvisor/pkg/buffer"
)

// Receive coalescing: Write gives the stack a run of consecutive TCP
// segments of one flow among its frames (the switch's batch for this
// port) as one segment of up to 64 KiB, so that a bulk stream into the
// gateway's stack costs one pass through IP and TCP (demux, the hand-off
// to gVisor's TCP processor, the receiver's wakeup, the ACK decision) per
// run instead of per MTU-sized frame, and one buffer instead of one per
// frame. Nothing is held past the Write, so no latency is added.
//
// A frame joins the run of the one before only if both checksums of each
// hold (validTCP) and it continues it exactly: same Ethernet header, same
// IP addresses, TOS, TTL and flags, no IP options, same ports, the next
// sequence number, the same ACK number, header length and options
// (timestamps), only the ACK flag (PSH may end the run), and a payload no
// larger than the first's (a smaller one ends the run). The merged
// segment takes the window of the last and gets the checksums of the
// whole, which the stack verifies as it verifies any segment.

// tcpMinHeaderLen is the length of a TCP header without options.
const tcpMinHeaderLen = 20

// TCP header offsets and flags used here.
const (
	tcpOffSeq      = 4
	tcpOffAck      = 8
	tcpOffDataOff  = 12
	tcpOffFlags    = 13
	tcpOffWindow   = 14
	tcpOffChecksum = 16
	tcpFlagPSH     = 0x08
	tcpFlagACK     = 0x10
)

// maxMerged bounds a merged frame: one gVisor buffer chunk, and an IP
// total length that fits in 16 bits.
const maxMerged = buffer.MaxChunkSize

// validTCP reports whether f, an Ethernet frame carrying IPv4, is a TCP
// segment without IP options, not a fragment and without Ethernet
// padding, whose IPv4 header and TCP checksums both hold.
func validTCP(f []byte) bool {
	if len(f) < ether.HeaderLen+vxip.MinHeaderLen+tcpMinHeaderLen {
		return false
	}
	ip := f[ether.HeaderLen:]
	total := int(binary.BigEndian.Uint16(ip[vxip.OffTotalLen:]))
	if ip[0] != 0x45 || ip[vxip.OffProto] != vxip.ProtoTCP || total != len(ip) ||
		binary.BigEndian.Uint16(ip[vxip.OffFlags:])&vxip.FragMask != 0 {
		return false
	}
	if vxip.Checksum(ip[:vxip.MinHeaderLen], 0) != 0xffff {
		return false
	}
	seg := ip[vxip.MinHeaderLen:]
	return vxip.Checksum(seg, pseudoSum(ip, len(seg))) == 0xffff
}

// pseudoSum is the sum of the TCP pseudo-header of IPv4 header ip for a
// segment of n bytes.
func pseudoSum(ip []byte, n int) uint16 {
	var p [12]byte
	copy(p[0:8], ip[vxip.OffSrc:vxip.OffDst+4])
	p[9] = vxip.ProtoTCP
	binary.BigEndian.PutUint16(p[10:], uint16(n))
	return vxip.Checksum(p[:], 0)
}

// tcpRun returns how many frames from frames[0], which validTCP accepted,
// form one run to merge (1 when none follows it), and the payload bytes
// of the run.
func tcpRun(frames [][]byte) (n, payload int) {
	first := frames[0]
	ip0 := first[ether.HeaderLen:]
	tcp0 := ip0[vxip.MinHeaderLen:]
	hl := int(tcp0[tcpOffDataOff]>>4) * 4
	hdrs := ether.HeaderLen + vxip.MinHeaderLen + hl
	mss := len(first) - hdrs
	if hl < tcpMinHeaderLen || mss <= 0 || tcp0[tcpOffFlags] != tcpFlagACK {
		return 1, max(mss, 0)
	}
	payload = mss
	next := binary.BigEndian.Uint32(tcp0[tcpOffSeq:]) + uint32(mss)
	n = 1
	for _, f := range frames[1:] {
		pl := len(f) - hdrs
		if pl <= 0 || pl > mss || hdrs+payload+pl > maxMerged || !continues(first, f, hl, next) || !validTCP(f) {
			break
		}
		n++
		payload += pl
		next += uint32(pl)
		if pl < mss || f[ether.HeaderLen+vxip.MinHeaderLen+tcpOffFlags]&tcpFlagPSH != 0 {
			break
		}
	}
	return n, payload
}

// continues reports whether the headers of f continue the run that first
// starts, at sequence number next: see the top of the file. f is at least
// as long as first's headers; its checksums are checked after.
func continues(first, f []byte, hl int, next uint32) bool {
	const ipOff, tcpOff = ether.HeaderLen, ether.HeaderLen + vxip.MinHeaderLen
	ip0, ip := first[ipOff:], f[ipOff:]
	tcp0, tcp := first[tcpOff:], f[tcpOff:]
	return bytes.Equal(f[:ipOff], first[:ipOff]) &&
		ip[0] == 0x45 && ip[1] == ip0[1] && // TOS
		binary.BigEndian.Uint16(ip[vxip.OffFlags:]) == binary.BigEndian.Uint16(ip0[vxip.OffFlags:]) &&
		ip[vxip.OffTTL] == ip0[vxip.OffTTL] && ip[vxip.OffProto] == vxip.ProtoTCP &&
		bytes.Equal(ip[vxip.OffSrc:vxip.OffDst+4], ip0[vxip.OffSrc:vxip.OffDst+4]) &&
		bytes.Equal(tcp[:tcpOffSeq], tcp0[:tcpOffSeq]) && // ports
		binary.BigEndian.Uint32(tcp[tcpOffSeq:]) == next &&
		bytes.Equal(tcp[tcpOffAck:tcpOffFlags], tcp0[tcpOffAck:tcpOffFlags]) && // ACK number, header length
		tcp[tcpOffFlags]&^tcpFlagPSH == tcpFlagACK &&
		bytes.Equal(tcp[tcpMinHeaderLen:hl], tcp0[tcpMinHeaderLen:hl]) // options
}

// merge builds the frame of the run frames (tcpRun's n frames, payload
// bytes): the first's headers, every payload in order, the last's window
// and PSH flag, and the IP length and both checksums of the whole.
func merge(frames [][]byte, payload int) *buffer.View {
	first, last := frames[0], frames[len(frames)-1]
	const ipOff, tcpOff = ether.HeaderLen, ether.HeaderLen + vxip.MinHeaderLen
	hl := int(first[tcpOff+tcpOffDataOff]>>4) * 4
	hdrs := tcpOff + hl
	v := buffer.NewViewSize(hdrs + payload)
	b := v.AsSlice()
	off := copy(b, first[:hdrs])
	for _, f := range frames {
		off += copy(b[off:], f[hdrs:])
	}
	ip, tcp := b[ipOff:], b[tcpOff:]
	binary.BigEndian.PutUint16(ip[vxip.OffTotalLen:], uint16(len(ip)))
	binary.BigEndian.PutUint16(ip[vxip.OffChecksum:], 0)
	binary.BigEndian.PutUint16(ip[vxip.OffChecksum:], ^vxip.Checksum(ip[:vxip.MinHeaderLen], 0))
	tcp[tcpOffFlags] = last[tcpOff+tcpOffFlags]
	copy(tcp[tcpOffWindow:tcpOffWindow+2], last[tcpOff+tcpOffWindow:])
	binary.BigEndian.PutUint16(tcp[tcpOffChecksum:], 0)
	binary.BigEndian.PutUint16(tcp[tcpOffChecksum:], ^vxip.Checksum(tcp, pseudoSum(ip, len(tcp))))
	return v
}
