package ipv4

import (
	"encoding/binary"
	"testing"
)

// tcpSum returns the TCP checksum over pkt's segment with its pseudo
// header, folded and not complemented: 0xffff for a valid segment.
func tcpSum(pkt []byte) uint16 {
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[OffTotalLen:]))
	seg := pkt[ihl:total]
	pseudo := Checksum(pkt[OffSrc:OffSrc+8], uint16(ProtoTCP)+uint16(len(seg)))
	return Checksum(seg, pseudo)
}

// synPacket builds an IPv4 TCP segment with flags and options (padded to
// a multiple of 4) and a valid checksum.
func synPacket(flags byte, opts []byte) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, tcpOptEnd)
	}
	tl := TCPMinHeaderLen + len(opts)
	p := make([]byte, MinHeaderLen+tl)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[OffTotalLen:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[OffFlags:], 0x4000)
	p[OffTTL], p[OffProto] = 64, ProtoTCP
	copy(p[OffSrc:], []byte{10, 0, 0, 2, 10, 0, 1, 3})
	binary.BigEndian.PutUint16(p[OffChecksum:], ^Checksum(p[:MinHeaderLen], 0))
	t := p[MinHeaderLen:]
	binary.BigEndian.PutUint16(t[0:], 40000)
	binary.BigEndian.PutUint16(t[2:], 80)
	binary.BigEndian.PutUint32(t[4:], 0x01020304)
	t[tcpOffDataOff] = byte(tl/4) << 4
	t[tcpOffFlags] = flags
	binary.BigEndian.PutUint16(t[14:], 64240)
	copy(t[TCPMinHeaderLen:], opts)
	binary.BigEndian.PutUint16(t[tcpOffChecksum:], ^tcpSum(p))
	return p
}

func mss(v uint16) []byte { return []byte{tcpOptMSS, 4, byte(v >> 8), byte(v)} }

func TestClampMSS(t *testing.T) {
	linuxSYN := append(append(mss(1410), 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0), tcpOptNOP, 3, 3, 7)
	tests := []struct {
		name    string
		pkt     []byte
		max     uint16
		changed bool
		want    uint16 // MSS after, 0: no MSS option
	}{
		{"syn above", synPacket(TCPFlagSYN, linuxSYN), 1210, true, 1210},
		{"syn-ack above", synPacket(TCPFlagSYN|0x10, mss(1460)), 1210, true, 1210},
		{"syn below", synPacket(TCPFlagSYN, mss(1000)), 1210, false, 1000},
		{"syn equal", synPacket(TCPFlagSYN, mss(1210)), 1210, false, 1210},
		{"odd offset", synPacket(TCPFlagSYN, append([]byte{tcpOptNOP}, mss(1460)...)), 1210, true, 1210},
		{"odd offset odd value", synPacket(TCPFlagSYN, append([]byte{tcpOptNOP}, mss(0x05ff)...)), 0x04a1, true, 0x04a1},
		{"after sack-perm", synPacket(TCPFlagSYN, append([]byte{4, 2}, mss(1460)...)), 1200, true, 1200},
		{"ack only", synPacket(0x10, mss(1460)), 1210, false, 1460},
		{"no options", synPacket(TCPFlagSYN, nil), 1210, false, 0},
		{"end before mss", synPacket(TCPFlagSYN, append([]byte{tcpOptEnd, 0, 0, 0}, mss(1460)...)), 1210, false, 1460},
		{"bad mss length", synPacket(TCPFlagSYN, []byte{tcpOptMSS, 3, 5, 0}), 1210, false, 0},
		{"option overruns", synPacket(TCPFlagSYN, []byte{8, 10, 0, 0}), 1210, false, 0},
		{"zero length option", synPacket(TCPFlagSYN, append([]byte{8, 0, 0, 0}, mss(1460)...)), 1210, false, 1460},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.pkt
			if got := ClampMSS(p, tc.max); got != tc.changed {
				t.Fatalf("ClampMSS = %v, want %v", got, tc.changed)
			}
			if s := tcpSum(p); s != 0xffff {
				t.Fatalf("checksum invalid after clamp: sum %#04x", s)
			}
			opts := p[MinHeaderLen+TCPMinHeaderLen : MinHeaderLen+int(p[MinHeaderLen+tcpOffDataOff]>>4)*4]
			got := uint16(0)
			for i := 0; i+4 <= len(opts); i++ {
				if opts[i] == tcpOptMSS && opts[i+1] == 4 {
					got = binary.BigEndian.Uint16(opts[i+2:])
					break
				}
			}
			if tc.want != 0 && got != tc.want {
				t.Fatalf("mss = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestClampMSSLeavesOthers(t *testing.T) {
	syn := synPacket(TCPFlagSYN, mss(1460))
	frag := append([]byte(nil), syn...)
	binary.BigEndian.PutUint16(frag[OffFlags:], 0x0010)
	udp := append([]byte(nil), syn...)
	udp[OffProto] = ProtoUDP
	badIHL := append([]byte(nil), syn...)
	badIHL[0] = 0x44
	for name, p := range map[string][]byte{
		"fragment": frag, "udp": udp, "bad ihl": badIHL, "truncated": syn[:30], "empty": nil,
		"data offset past end": func() []byte { b := append([]byte(nil), syn...); b[MinHeaderLen+tcpOffDataOff] = 0xf0; return b }(),
	} {
		before := append([]byte(nil), p...)
		if ClampMSS(p, 1000) {
			t.Errorf("%s: clamped", name)
		}
		if string(before) != string(p) {
			t.Errorf("%s: packet changed", name)
		}
	}
}

func TestUpdateChecksumMatchesFull(t *testing.T) {
	b := []byte{0x12, 0x34, 0xff, 0xff, 0x00, 0x01, 0xab, 0xcd}
	c := ^Checksum(b, 0)
	for _, nv := range []uint16{0, 1, 0xffff, 0x1234, 0x8000} {
		old := binary.BigEndian.Uint16(b[2:])
		c = UpdateChecksum(c, old, nv)
		binary.BigEndian.PutUint16(b[2:], nv)
		if Checksum(b, c) != 0xffff {
			t.Fatalf("after %#04x: incremental checksum %#04x does not verify", nv, c)
		}
	}
}

func BenchmarkClampMSS(b *testing.B) {
	syn := synPacket(TCPFlagSYN, append(append(mss(1460), 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0), tcpOptNOP, 3, 3, 7))
	p := make([]byte, len(syn))
	b.ReportAllocs()
	b.SetBytes(int64(len(syn)))
	for i := 0; i < b.N; i++ {
		copy(p, syn)
		if !ClampMSS(p, 1210) {
			b.Fatal("not clamped")
		}
	}
}

func FuzzClampMSS(f *testing.F) {
	f.Add(synPacket(TCPFlagSYN, mss(1460)), uint16(1210))
	f.Add(synPacket(TCPFlagSYN|0x10, append([]byte{tcpOptNOP}, mss(1460)...)), uint16(536))
	f.Add(synPacket(TCPFlagSYN, []byte{8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 2, 4, 5, 180}), uint16(1000))
	f.Fuzz(func(t *testing.T, p []byte, max uint16) {
		valid := len(p) >= MinHeaderLen+TCPMinHeaderLen && p[0] == 0x45 &&
			int(binary.BigEndian.Uint16(p[OffTotalLen:])) == len(p) && tcpSum(p) == 0xffff
		before := append([]byte(nil), p...)
		if !ClampMSS(p, max) {
			if string(before) != string(p) {
				t.Fatal("unchanged result but packet modified")
			}
			return
		}
		// Exactly two bytes changed, to max, and a valid checksum stays valid.
		diff := 0
		for i := range p {
			if p[i] != before[i] {
				diff++
			}
		}
		if diff == 0 || diff > 4 {
			t.Fatalf("%d bytes changed", diff)
		}
		if valid && tcpSum(p) != 0xffff {
			t.Fatal("valid checksum broken by the clamp")
		}
		if ClampMSS(p, max) {
			t.Fatal("second clamp changed the packet again")
		}
	})
}
