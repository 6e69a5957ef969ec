package tap

import (
	"encoding/binary"
	"testing"
)

// refChecksum is the textbook RFC 1071 sum: big-endian 16-bit words added
// into 32 bits and folded, not complemented. Tests judge the fast
// checksum and every frame with it.
func refChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// refAdd adds two folded sums.
func refAdd(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s&0xffff + s>>16)
}

// tcpSpec describes a frame built by buildTCP.
type tcpSpec struct {
	v6      bool
	payload []byte
	seq     uint32
	ack     uint32
	id      uint16
	flags   uint8
	df      bool
	opts    []byte // TCP options, a multiple of 4 bytes
}

var (
	testSrcMAC = []byte{0x02, 0, 0, 0, 0, 1}
	testDstMAC = []byte{0x02, 0, 0, 0, 0, 2}
	testTSOpts = []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2} // NOP NOP timestamps
)

// buildTCP returns a complete Ethernet/IP/TCP frame with valid checksums
// computed by the reference checksum.
func buildTCP(s tcpSpec) []byte {
	ipHL := ipv4MinHdr
	if s.v6 {
		ipHL = ipv6HdrLen
	}
	tcpHL := tcpMinHdr + len(s.opts)
	f := make([]byte, ethHdrLen+ipHL+tcpHL+len(s.payload))
	copy(f[0:], testDstMAC)
	copy(f[6:], testSrcMAC)
	ip := f[ethHdrLen:]
	l4 := tcpHL + len(s.payload)
	var addrSum uint16
	if s.v6 {
		binary.BigEndian.PutUint16(f[12:], etherTypeIPv6)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(l4))
		ip[6], ip[7] = protoTCP, 64
		copy(ip[8:], []byte{0xfd, 0x99, 15: 1})
		copy(ip[24:], []byte{0xfd, 0x99, 15: 2})
		addrSum = refChecksum(ip[8:40])
	} else {
		binary.BigEndian.PutUint16(f[12:], etherTypeIPv4)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(ipHL+l4))
		binary.BigEndian.PutUint16(ip[4:], s.id)
		if s.df {
			ip[6] = 0x40
		}
		ip[8], ip[9] = 64, protoTCP
		copy(ip[12:], []byte{10, 99, 0, 1, 10, 99, 0, 2})
		binary.BigEndian.PutUint16(ip[10:], ^refChecksum(ip[:ipHL]))
		addrSum = refChecksum(ip[12:20])
	}
	tcp := ip[ipHL:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	binary.BigEndian.PutUint32(tcp[4:], s.seq)
	binary.BigEndian.PutUint32(tcp[8:], s.ack)
	tcp[12] = uint8(tcpHL/4) << 4
	tcp[13] = s.flags
	binary.BigEndian.PutUint16(tcp[14:], 501)
	copy(tcp[20:], s.opts)
	copy(tcp[tcpHL:], s.payload)
	pseudo := refAdd(refAdd(addrSum, protoTCP), uint16(l4))
	binary.BigEndian.PutUint16(tcp[16:], ^refAdd(pseudo, refChecksum(tcp)))
	return f
}

// buildSuper returns a TSO superframe as the TAP delivers it: the virtio
// header, then the frame with the pseudo-header sum in the TCP checksum.
func buildSuper(s tcpSpec, mss int) []byte {
	f := buildTCP(s)
	si := segInfo{}
	ipHL := ipv4MinHdr
	h := vnetHdr{flags: vnetFlagNeedsCsum, gsoType: vnetGSOTCPv4, gsoSize: uint16(mss), csumOffset: tcpCsumOff}
	if s.v6 {
		ipHL = ipv6HdrLen
		h.gsoType = vnetGSOTCPv6
	}
	si.tcpOff = ethHdrLen + ipHL
	h.csumStart = uint16(si.tcpOff)
	h.hdrLen = uint16(si.tcpOff + tcpMinHdr + len(s.opts))
	addrs := f[ethHdrLen+12 : ethHdrLen+20]
	if s.v6 {
		addrs = f[ethHdrLen+8 : ethHdrLen+40]
	}
	l4 := len(f) - si.tcpOff
	binary.BigEndian.PutUint16(f[si.tcpOff+16:], refAdd(refAdd(refChecksum(addrs), protoTCP), uint16(l4)))
	out := make([]byte, vnetHdrLen+len(f))
	h.encode(out)
	copy(out[vnetHdrLen:], f)
	return out
}

// checkFrame reports what is wrong with a TCP frame's checksums, using
// only the reference checksum.
func checkFrame(tb testing.TB, f []byte) {
	tb.Helper()
	ip := f[ethHdrLen:]
	var addrs []byte
	var tcp []byte
	if binary.BigEndian.Uint16(f[12:]) == etherTypeIPv6 {
		addrs = ip[8:40]
		tcp = ip[ipv6HdrLen : ipv6HdrLen+int(binary.BigEndian.Uint16(ip[4:]))]
	} else {
		ihl := int(ip[0]&0xf) * 4
		if refChecksum(ip[:ihl]) != 0xffff {
			tb.Errorf("bad IPv4 header checksum")
		}
		addrs = ip[12:20]
		tcp = ip[ihl:binary.BigEndian.Uint16(ip[2:])]
	}
	pseudo := refAdd(refAdd(refChecksum(addrs), protoTCP), uint16(len(tcp)))
	if refAdd(pseudo, refChecksum(tcp)) != 0xffff {
		tb.Errorf("bad TCP checksum")
	}
}

// pattern returns n bytes of a recognizable payload.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed + byte(i>>8)
	}
	return b
}

// testBufs returns n buffers of size bytes each with their sizes slice.
func testBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, make([]int, n)
}

// tcpPayload returns the TCP payload of a frame.
func tcpPayload(f []byte) []byte {
	var si segInfo
	ip := f[ethHdrLen:]
	if binary.BigEndian.Uint16(f[12:]) == etherTypeIPv6 {
		si.tcpOff, si.end = ethHdrLen+ipv6HdrLen, ethHdrLen+ipv6HdrLen+int(binary.BigEndian.Uint16(ip[4:]))
	} else {
		si.tcpOff, si.end = ethHdrLen+int(ip[0]&0xf)*4, ethHdrLen+int(binary.BigEndian.Uint16(ip[2:]))
	}
	return f[si.tcpOff+int(f[si.tcpOff+12]>>4)*4 : si.end]
}
