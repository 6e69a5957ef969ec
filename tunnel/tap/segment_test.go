package tap

import (
	"bytes"
	"encoding/binary"
	"testing"
)

const testOffset = 50 // headroom the switch keeps for VXLAN

// split runs a splitter over sf with buffers of bufLen bytes, batch at a
// time, and returns copies of every frame.
func split(tb testing.TB, sf []byte, batch, bufLen int) (frames [][]byte, ok, dropped bool) {
	var s splitter
	if !s.load(sf) {
		return nil, false, false
	}
	bufs, sizes := testBufs(batch, bufLen)
	for i := 0; s.active(); i++ {
		if i > 70000 {
			tb.Fatal("splitter does not terminate")
		}
		n, d := s.emit(bufs, sizes, testOffset)
		dropped = dropped || d
		for k := range n {
			frames = append(frames, append([]byte(nil), bufs[k][testOffset:testOffset+sizes[k]]...))
		}
	}
	return frames, true, dropped
}

func TestSegment64K(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, batch := range []int{64, 7} {
			name := map[bool]string{false: "v4", true: "v6"}[v6]
			t.Run(name+"/batch"+map[int]string{64: "64", 7: "7"}[batch], func(t *testing.T) {
				testSegment64K(t, v6, batch)
			})
		}
	}
}

func testSegment64K(t *testing.T, v6 bool, batch int) {
	hdrLen := ethHdrLen + ipv4MinHdr + tcpMinHdr + len(testTSOpts)
	payLen := maxIPLen - (hdrLen - ethHdrLen)
	if v6 {
		hdrLen += ipv6HdrLen - ipv4MinHdr
		payLen = maxIPLen - (hdrLen - ethHdrLen - ipv6HdrLen)
	}
	mss := 1500 - (hdrLen - ethHdrLen) // 1448 for IPv4, 1428 for IPv6
	payload := pattern(payLen, 1)
	flags := uint8(tcpFlagACK | tcpFlagPSH | tcpFlagFIN | tcpFlagCWR)
	sf := buildSuper(tcpSpec{v6: v6, payload: payload, seq: 0xfffff000, ack: 77, id: 0xfff0, flags: flags, opts: testTSOpts}, mss)
	frames, ok, dropped := split(t, sf, batch, testOffset+ethHdrLen+1500)
	if !ok || dropped {
		t.Fatalf("load ok=%v dropped=%v", ok, dropped)
	}
	want := (payLen + mss - 1) / mss
	if len(frames) != want {
		t.Fatalf("%d segments, want %d", len(frames), want)
	}
	var got []byte
	for i, f := range frames {
		last := i == len(frames)-1
		chunk := mss
		if last {
			chunk = payLen - mss*(len(frames)-1)
		}
		if len(f) != hdrLen+chunk {
			t.Fatalf("segment %d: length %d, want %d", i, len(f), hdrLen+chunk)
		}
		ip := f[ethHdrLen:]
		tcpOff := hdrLen - tcpMinHdr - len(testTSOpts)
		if v6 {
			if pl := int(binary.BigEndian.Uint16(ip[4:])); pl != len(f)-ethHdrLen-ipv6HdrLen {
				t.Errorf("segment %d: payload length %d", i, pl)
			}
		} else {
			if tl := int(binary.BigEndian.Uint16(ip[2:])); tl != len(f)-ethHdrLen {
				t.Errorf("segment %d: total length %d", i, tl)
			}
			if id := binary.BigEndian.Uint16(ip[4:]); id != 0xfff0+uint16(i) {
				t.Errorf("segment %d: id %#x", i, id)
			}
		}
		tcp := f[tcpOff:]
		if seq := binary.BigEndian.Uint32(tcp[4:]); seq != 0xfffff000+uint32(i*mss) {
			t.Errorf("segment %d: seq %#x", i, seq)
		}
		wantFlags := uint8(tcpFlagACK)
		if i == 0 {
			wantFlags |= tcpFlagCWR
		}
		if last {
			wantFlags |= tcpFlagPSH | tcpFlagFIN
		}
		if tcp[13] != wantFlags {
			t.Errorf("segment %d: flags %#x, want %#x", i, tcp[13], wantFlags)
		}
		if !bytes.Equal(tcp[20:32], testTSOpts) {
			t.Errorf("segment %d: options changed", i)
		}
		checkFrame(t, f)
		got = append(got, tcpPayload(f)...)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("concatenated payloads differ from the superframe's")
	}
}

func TestSegmentNoGSO(t *testing.T) {
	// A plain frame with a partial TCP checksum, as with TUN_F_CSUM.
	sf := buildSuper(tcpSpec{payload: pattern(100, 2), seq: 5, flags: tcpFlagACK}, 1448)
	sf[1] = vnetGSONone
	frames, ok, _ := split(t, sf, 4, 2000)
	if !ok || len(frames) != 1 {
		t.Fatalf("ok=%v frames=%d", ok, len(frames))
	}
	checkFrame(t, frames[0])
	// Without NEEDS_CSUM the frame is passed through unchanged.
	f := buildTCP(tcpSpec{payload: pattern(10, 3), flags: tcpFlagACK})
	sf = append(make([]byte, vnetHdrLen), f...)
	frames, ok, _ = split(t, sf, 1, 2000)
	if !ok || len(frames) != 1 || !bytes.Equal(frames[0], f) {
		t.Fatalf("plain frame not passed through")
	}
}

func TestSegmentMalformed(t *testing.T) {
	base := func() []byte {
		return buildSuper(tcpSpec{payload: pattern(5000, 4), seq: 1, flags: tcpFlagACK, opts: testTSOpts}, 1448)
	}
	base6 := func() []byte {
		return buildSuper(tcpSpec{v6: true, payload: pattern(5000, 4), seq: 1, flags: tcpFlagACK}, 1448)
	}
	tcpOff := vnetHdrLen + ethHdrLen + ipv4MinHdr
	tests := []struct {
		name  string
		mut   func() []byte
		drops bool // loads but is dropped at emit (buffer too small)
	}{
		{"empty", func() []byte { return nil }, false},
		{"only virtio header", func() []byte { return make([]byte, vnetHdrLen) }, false},
		{"gso without needs_csum", func() []byte { b := base(); b[0] = 0; return b }, false},
		{"gso udp", func() []byte { b := base(); b[1] = vnetGSOUDP; return b }, false},
		{"gso type 5", func() []byte { b := base(); b[1] = 5; return b }, false},
		{"gso_size zero", func() []byte { b := base(); b[4], b[5] = 0, 0; return b }, false},
		{"tcpv6 on ipv4 frame", func() []byte { b := base(); b[1] = vnetGSOTCPv6; return b }, false},
		{"tcpv4 on ipv6 frame", func() []byte { b := base6(); b[1] = vnetGSOTCPv4; return b }, false},
		{"ip total length lies", func() []byte { b := base(); b[vnetHdrLen+16] = 0xff; return b }, false},
		{"ipv6 payload length lies", func() []byte { b := base6(); b[vnetHdrLen+18] = 0xff; return b }, false},
		{"ipv4 fragment", func() []byte { b := base(); b[vnetHdrLen+20] |= 0x20; return b }, false},
		{"ipv4 not tcp", func() []byte { b := base(); b[vnetHdrLen+23] = 17; return b }, false},
		{"ihl too small", func() []byte { b := base(); b[vnetHdrLen+14] = 0x44; return b }, false},
		{"csum_start off", func() []byte { b := base(); b[6]++; return b }, false},
		{"csum_offset off", func() []byte { b := base(); b[8] = 6; return b }, false},
		{"tcp doff too small", func() []byte { b := base(); b[tcpOff+12] = 0x40; return b }, false},
		{"tcp doff beyond packet", func() []byte {
			b := base()[:tcpOff+40]
			b[vnetHdrLen+16], b[vnetHdrLen+17] = 0, 40
			b[tcpOff+12] = 0xf0
			return b
		}, false},
		{"no payload", func() []byte {
			b := base()[:tcpOff+32]
			binary.BigEndian.PutUint16(b[vnetHdrLen+16:], 52)
			return b
		}, false},
		{"truncated frame", func() []byte { return base()[:200] }, false},
		{"none csum_start beyond frame", func() []byte { b := base(); b[1] = 0; b[6], b[7] = 0xff, 0xff; return b }, false},
		{"none csum_start in ethernet header", func() []byte { b := base(); b[1] = 0; b[6], b[7] = 2, 0; return b }, false},
		{"segment larger than buffer", func() []byte { b := base(); binary.NativeEndian.PutUint16(b[4:], 4000); return b }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frames, ok, dropped := split(t, tt.mut(), 8, testOffset+1514)
			if tt.drops {
				if !ok || !dropped || len(frames) != 0 {
					t.Fatalf("ok=%v dropped=%v frames=%d; want dropped at emit", ok, dropped, len(frames))
				}
				return
			}
			if ok {
				t.Fatalf("accepted a malformed superframe (%d frames)", len(frames))
			}
		})
	}
}

func TestSegmentAllocs(t *testing.T) {
	sf := buildSuper(tcpSpec{payload: pattern(60000, 5), flags: tcpFlagACK, opts: testTSOpts}, 1448)
	bufs, sizes := testBufs(64, testOffset+1514)
	var s splitter
	allocs := testing.AllocsPerRun(50, func() {
		if !s.load(sf) {
			t.Fatal("load failed")
		}
		for s.active() {
			s.emit(bufs, sizes, testOffset)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per superframe, want 0", allocs)
	}
}

func BenchmarkSegment(b *testing.B) {
	sf := buildSuper(tcpSpec{payload: pattern(65000, 5), flags: tcpFlagACK, opts: testTSOpts}, 1448)
	bufs, sizes := testBufs(64, testOffset+1514)
	var s splitter
	b.SetBytes(int64(len(sf)))
	b.ReportAllocs()
	for b.Loop() {
		s.load(sf)
		for s.active() {
			s.emit(bufs, sizes, testOffset)
		}
	}
}
