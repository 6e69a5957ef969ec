package ipv4

import "encoding/binary"

// TCP header fields the MSS clamp reads (RFC 9293 §3.1).
const (
	TCPMinHeaderLen = 20
	tcpOffDataOff   = 12 // data offset in the high nibble
	tcpOffFlags     = 13
	tcpOffChecksum  = 16
	tcpOptEnd       = 0
	tcpOptNOP       = 1
	tcpOptMSS       = 2
	tcpOptMSSLen    = 4
)

// TCP flags (RFC 9293 §3.1, RFC 3168 §6.1 for CWR), in the byte at
// TCPOffFlags of the TCP header.
const (
	TCPOffFlags = tcpOffFlags
	TCPFlagFIN  = 0x01
	TCPFlagSYN  = 0x02
	TCPFlagRST  = 0x04
	TCPFlagPSH  = 0x08
	TCPFlagACK  = 0x10
	TCPFlagCWR  = 0x80
)

// TCPIPHeaderLen is what an IPv4 packet of MTU bytes spends on minimal IPv4
// and TCP headers: a path's MSS is its MTU minus this (RFC 879).
const TCPIPHeaderLen = MinHeaderLen + TCPMinHeaderLen

// ClampMSS lowers the MSS option of a TCP SYN (or SYN-ACK) carried in the
// IPv4 packet pkt to max when it is larger, and fixes the TCP checksum
// incrementally (RFC 1624), so that a valid checksum stays valid. It reports
// whether it changed pkt. Anything else (not TCP, not a SYN, a fragment,
// truncated or malformed headers and options) is left alone: the clamp
// never drops, it only rewrites what it fully understands. It does not
// allocate.
func ClampMSS(pkt []byte, max uint16) bool {
	if len(pkt) < MinHeaderLen || pkt[0]>>4 != 4 || pkt[OffProto] != ProtoTCP {
		return false
	}
	if binary.BigEndian.Uint16(pkt[OffFlags:])&FragOffsetMask != 0 { // not the first fragment
		return false
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < MinHeaderLen || len(pkt) < ihl+TCPMinHeaderLen {
		return false
	}
	tcp := pkt[ihl:]
	if tcp[tcpOffFlags]&TCPFlagSYN == 0 {
		return false
	}
	doff := int(tcp[tcpOffDataOff]>>4) * 4
	if doff <= TCPMinHeaderLen || doff > len(tcp) {
		return false
	}
	at := findMSS(tcp[TCPMinHeaderLen:doff])
	if at < 0 {
		return false
	}
	off := TCPMinHeaderLen + at + 2
	old := binary.BigEndian.Uint16(tcp[off:])
	if old <= max {
		return false
	}
	binary.BigEndian.PutUint16(tcp[off:], max)
	// The MSS value sits at an even offset from the TCP header (it
	// follows an aligned option in every stack, but not necessarily), so
	// the checksum update swaps bytes when it is odd: the 16-bit word of
	// the checksum covers it shifted by one byte.
	oldW, newW := old, max
	if off&1 == 1 {
		oldW, newW = old>>8|old<<8, max>>8|max<<8
	}
	c := binary.BigEndian.Uint16(tcp[tcpOffChecksum:])
	binary.BigEndian.PutUint16(tcp[tcpOffChecksum:], UpdateChecksum(c, oldW, newW))
	return true
}

// findMSS walks TCP options and returns the offset in opts of a
// well-formed MSS option (kind 2, length 4), or -1.
func findMSS(opts []byte) int {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case tcpOptEnd:
			return -1
		case tcpOptNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return -1
		}
		l := int(opts[i+1])
		if l < 2 || i+l > len(opts) {
			return -1
		}
		if opts[i] == tcpOptMSS {
			if l != tcpOptMSSLen {
				return -1
			}
			return i
		}
		i += l
	}
	return -1
}
