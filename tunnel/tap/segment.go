package tap

import "encoding/binary"

// splitter turns one superframe read from the TAP (a virtio_net_hdr
// followed by an Ethernet frame of up to 64 KiB) into ordinary frames. It
// is pure: it neither reads nor allocates, so it is tested and fuzzed
// without a device.
//
// A superframe with gso_type NONE yields one frame, its checksum completed
// first when the kernel left it partial. A TCPv4/TCPv6 superframe yields
// one frame per gso_size bytes of payload, each a complete Ethernet, IP and
// TCP frame with valid checksums, exactly as the kernel's own
// tcp_gso_segment would have produced. When the caller's buffers run out
// the splitter stays active and emit continues where it stopped.
type splitter struct {
	frame []byte // Ethernet frame being split; nil when idle
	gso   bool   // frame is a TCP superframe to segment

	v6      bool
	ipHL    int    // IP header length
	tcpOff  int    // offset of the TCP header in frame
	hdrLen  int    // Ethernet + IP + TCP header length
	end     int    // end of the IP packet in frame
	mss     int    // payload bytes per segment
	next    int    // offset in frame of the next payload byte
	seg     int    // index of the next segment
	seq     uint32 // sequence number of the first payload byte
	id      uint16 // IPv4 identification of the first segment
	flags   uint8  // TCP flags of the superframe
	addrSum uint16 // pseudo-header sum of the addresses
}

// active reports whether the splitter still holds frames to emit.
func (s *splitter) active() bool { return s.frame != nil }

// left is the number of frames the splitter still holds.
func (s *splitter) left() int {
	switch {
	case s.frame == nil:
		return 0
	case !s.gso:
		return 1
	}
	return (s.end - s.next + s.mss - 1) / s.mss
}

// reset drops whatever the splitter holds.
func (s *splitter) reset() { s.frame = nil }

// load validates the superframe sf and makes the splitter active. It
// returns false, leaving the splitter idle, when sf is malformed. load
// may complete a partial checksum in place in sf, which must therefore
// stay untouched until the splitter is idle again.
func (s *splitter) load(sf []byte) bool {
	s.reset()
	if len(sf) < vnetHdrLen+ethHdrLen {
		return false
	}
	var h vnetHdr
	h.decode(sf)
	frame := sf[vnetHdrLen:]
	if h.gsoType == vnetGSONone {
		if h.flags&vnetFlagNeedsCsum != 0 && !completeChecksum(frame, int(h.csumStart), int(h.csumOffset)) {
			return false
		}
		s.frame, s.gso = frame, false
		return true
	}
	if !s.loadGSO(&h, frame) {
		return false
	}
	s.frame, s.gso = frame, true
	return true
}

// completeChecksum finishes a checksum the kernel left partial: the sum
// from start to the end of frame, which includes the pseudo-header sum
// already stored at start+off, is complemented and stored at start+off.
func completeChecksum(frame []byte, start, off int) bool {
	if start < ethHdrLen || off < 0 || start+off+2 > len(frame) {
		return false
	}
	v := ^checksum(frame[start:], 0)
	if v == 0 && off == 6 { // UDP: zero means "no checksum"
		v = 0xffff
	}
	binary.BigEndian.PutUint16(frame[start+off:], v)
	return true
}

// loadGSO validates a TCP superframe and fills the segmentation state. The
// virtio hdr_len is not trusted (the kernel reports its linear length
// there); the header length is taken from csum_start and the TCP data
// offset instead.
func (s *splitter) loadGSO(h *vnetHdr, frame []byte) bool {
	if h.flags&vnetFlagNeedsCsum == 0 || h.gsoSize == 0 || h.csumOffset != tcpCsumOff {
		return false
	}
	ip := frame[ethHdrLen:]
	etype := binary.BigEndian.Uint16(frame[12:])
	switch h.gsoType &^ vnetGSOECN {
	case vnetGSOTCPv4:
		if etype != etherTypeIPv4 || len(ip) < ipv4MinHdr || ip[0]>>4 != 4 || ip[9] != protoTCP {
			return false
		}
		if binary.BigEndian.Uint16(ip[ipv4OffFlags:])&ipv4FragMask != 0 {
			return false
		}
		s.v6, s.ipHL = false, int(ip[0]&0x0f)*4
		s.end = ethHdrLen + int(binary.BigEndian.Uint16(ip[2:]))
		s.id = binary.BigEndian.Uint16(ip[4:])
		if s.ipHL < ipv4MinHdr || s.end > len(frame) {
			return false
		}
		s.addrSum = checksum(ip[12:20], 0)
	case vnetGSOTCPv6:
		if etype != etherTypeIPv6 || len(ip) < ipv6HdrLen || ip[0]>>4 != 6 || ip[6] != protoTCP {
			return false
		}
		s.v6, s.ipHL = true, ipv6HdrLen
		s.end = ethHdrLen + ipv6HdrLen + int(binary.BigEndian.Uint16(ip[4:]))
		if s.end > len(frame) {
			return false
		}
		s.addrSum = checksum(ip[8:40], 0)
	default: // UDP fragmentation offload, USO and unknown types
		return false
	}
	s.tcpOff = ethHdrLen + s.ipHL
	if int(h.csumStart) != s.tcpOff || s.tcpOff+tcpMinHdr > s.end {
		return false
	}
	doff := int(frame[s.tcpOff+12]>>4) * 4
	s.hdrLen = s.tcpOff + doff
	if doff < tcpMinHdr || s.hdrLen >= s.end {
		return false
	}
	s.mss = int(h.gsoSize)
	s.next, s.seg = s.hdrLen, 0
	s.seq = binary.BigEndian.Uint32(frame[s.tcpOff+4:])
	s.flags = frame[s.tcpOff+13]
	return true
}

// emit stores frames at bufs[i][offset:offset+sizes[i]] until the
// superframe is exhausted or bufs is full, and returns how many it
// stored. If a buffer is too small for its frame, the rest of the
// superframe is dropped and dropped is true.
func (s *splitter) emit(bufs [][]byte, sizes []int, offset int) (n int, dropped bool) {
	if s.frame == nil || len(bufs) == 0 {
		return 0, false
	}
	if !s.gso {
		if len(bufs[0])-offset < len(s.frame) {
			s.reset()
			return 0, true
		}
		sizes[0] = copy(bufs[0][offset:], s.frame)
		s.reset()
		return 1, false
	}
	for n < len(bufs) && s.next < s.end {
		chunk := min(s.mss, s.end-s.next)
		segLen := s.hdrLen + chunk
		if len(bufs[n])-offset < segLen {
			s.reset()
			return n, true
		}
		s.writeSegment(bufs[n][offset:offset+segLen], chunk)
		sizes[n] = segLen
		n++
	}
	if s.next >= s.end {
		s.reset()
	}
	return n, false
}

// emitHeads is emit for a caller that sends a segment's headers and its
// payload from separate slices: a TCP segment's headers are stored at
// bufs[i][offset:offset+sizes[i]], with the checksum of the whole segment,
// and tails[i] is its payload, a view of the superframe, which the caller
// must be done with before the superframe's buffer is reused. A frame that
// is not cut from a superframe is copied whole, with a nil tail.
func (s *splitter) emitHeads(bufs [][]byte, sizes []int, tails [][]byte, offset int) (n int, dropped bool) {
	if s.frame == nil || len(bufs) == 0 {
		return 0, false
	}
	if !s.gso {
		tails[0] = nil
		return s.emit(bufs[:1], sizes, offset)
	}
	for n < len(bufs) && s.next < s.end {
		chunk := min(s.mss, s.end-s.next)
		// The whole segment must fit the buffer, as in emit, though only
		// its headers are written: the buffer's size is the MTU check.
		if len(bufs[n])-offset < s.hdrLen+chunk {
			s.reset()
			return n, true
		}
		pay := s.frame[s.next : s.next+chunk : s.next+chunk]
		s.writeHead(bufs[n][offset:offset+s.hdrLen], pay)
		sizes[n], tails[n] = s.hdrLen, pay
		n++
	}
	if s.next >= s.end {
		s.reset()
	}
	return n, false
}

// writeSegment builds the next segment, carrying chunk payload bytes, in
// out, whose length is the segment's length, and advances the state.
func (s *splitter) writeSegment(out []byte, chunk int) {
	pay := out[s.hdrLen : s.hdrLen+chunk]
	copy(pay, s.frame[s.next:s.next+chunk])
	s.writeHead(out[:s.hdrLen], pay)
}

// writeHead writes the headers of the next segment, whose payload is pay,
// to out (s.hdrLen bytes), with the segment's TCP checksum summed over
// the headers and pay, and advances the state. pay is only read.
func (s *splitter) writeHead(out, pay []byte) {
	copy(out, s.frame[:s.hdrLen])
	segLen := len(out) + len(pay)
	ip := out[ethHdrLen:]
	if s.v6 {
		binary.BigEndian.PutUint16(ip[4:], uint16(segLen-ethHdrLen-ipv6HdrLen))
	} else {
		binary.BigEndian.PutUint16(ip[2:], uint16(segLen-ethHdrLen))
		binary.BigEndian.PutUint16(ip[4:], s.id+uint16(s.seg))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^checksum(ip[:s.ipHL], 0))
	}
	tcp := out[s.tcpOff:]
	binary.BigEndian.PutUint32(tcp[4:], s.seq+uint32(s.next-s.hdrLen))
	flags := s.flags
	if s.next+len(pay) < s.end {
		flags &^= tcpFlagFIN | tcpFlagPSH
	}
	if s.seg > 0 {
		flags &^= tcpFlagCWR
	}
	tcp[13] = flags
	tcp[tcpCsumOff], tcp[tcpCsumOff+1] = 0, 0
	// The TCP header is a multiple of 4 bytes long, so the payload's
	// words line up after it and the two sums add.
	sum := checksum(pay, checksum(tcp, pseudoSumFrom(s.addrSum, len(tcp)+len(pay))))
	binary.BigEndian.PutUint16(tcp[tcpCsumOff:], ^sum)
	s.next += len(pay)
	s.seg++
}

// pseudoSumFrom completes a TCP pseudo-header sum from the sum of its
// addresses and the TCP length.
func pseudoSumFrom(addrSum uint16, l4Len int) uint16 {
	return csumAdd(csumAdd(addrSum, protoTCP), uint16(l4Len))
}
