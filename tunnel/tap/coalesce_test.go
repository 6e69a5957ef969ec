package tap

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// segments builds a flow's consecutive segments independently of the
// splitter: count segments of mss bytes (the last one last bytes), PSH on
// the last, consecutive IPv4 IDs.
func segments(v6 bool, count, mss, last int, opts []byte) [][]byte {
	var out [][]byte
	seq := seq0
	for i := range count {
		n := mss
		flags := uint8(tcpFlagACK)
		if i == count-1 {
			n, flags = last, tcpFlagACK|tcpFlagPSH
		}
		out = append(out, buildTCP(tcpSpec{v6: v6, payload: pattern(n, byte(i)), seq: seq, ack: 99, id: uint16(0xfffe + i), flags: flags, opts: opts}))
		seq += uint32(n)
	}
	return out
}

// seq0 is the first sequence number of segments; it wraps within a run.
var seq0 uint32 = 0xffffff00

// superOf joins the planned header and the run's payloads the way the
// device's writev does.
func superOf(hdr []byte, run [][]byte) []byte {
	sf := append([]byte(nil), hdr...)
	hdrLen := len(hdr) - vnetHdrLen
	for _, f := range run {
		sf = append(sf, f[hdrLen:ipEnd(f)]...)
	}
	return sf
}

func TestCoalesceRoundTrip(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v4", true: "v6"}[v6], func(t *testing.T) {
			mss := 1448
			if v6 {
				mss = 1428
			}
			segs := segments(v6, 45, mss, 700, testTSOpts)
			hdr := make([]byte, maxCoalesceHdr)
			n, hn, bad := planCoalesce(segs, hdr)
			if n != len(segs) || bad != -1 {
				t.Fatalf("run of %d (bad %d), want %d", n, bad, len(segs))
			}
			var h vnetHdr
			h.decode(hdr)
			hdrLen := len(segs[0]) - mss
			wantType := uint8(vnetGSOTCPv4)
			if v6 {
				wantType = vnetGSOTCPv6
			}
			tcpOff := hdrLen - tcpMinHdr - len(testTSOpts)
			if h.flags != vnetFlagNeedsCsum || h.gsoType != wantType || int(h.gsoSize) != mss ||
				int(h.hdrLen) != hdrLen || int(h.csumStart) != tcpOff || h.csumOffset != tcpCsumOff || hn != vnetHdrLen+hdrLen {
				t.Fatalf("virtio header %+v, hn %d", h, hn)
			}
			sf := superOf(hdr[:hn], segs)
			ip := sf[vnetHdrLen+ethHdrLen:]
			total := 44*mss + 700
			if v6 {
				if pl := int(binary.BigEndian.Uint16(ip[4:])); pl != hdrLen-ethHdrLen-ipv6HdrLen+total {
					t.Errorf("payload length %d", pl)
				}
			} else {
				if tl := int(binary.BigEndian.Uint16(ip[2:])); tl != hdrLen-ethHdrLen+total {
					t.Errorf("total length %d", tl)
				}
				if refChecksum(ip[:ipv4MinHdr]) != 0xffff {
					t.Errorf("bad IPv4 header checksum")
				}
			}
			if fl := sf[vnetHdrLen+tcpOff+13]; fl != tcpFlagACK|tcpFlagPSH {
				t.Errorf("flags %#x", fl)
			}
			var want []byte
			for _, f := range segs {
				want = append(want, tcpPayload(f)...)
			}
			if !bytes.Equal(sf[vnetHdrLen+hdrLen:], want) {
				t.Fatal("payload order not preserved")
			}
			// The kernel, segmenting our superframe, gets the segments back.
			again, ok, dropped := split(t, sf, 64, 2000)
			if !ok || dropped || len(again) != len(segs) {
				t.Fatalf("resegmenting: ok=%v dropped=%v %d segments", ok, dropped, len(again))
			}
			for i := range segs {
				if !bytes.Equal(again[i], segs[i]) {
					t.Fatalf("segment %d differs after coalesce and resegment", i)
				}
			}
		})
	}
}

func TestCoalesceRuns(t *testing.T) {
	mk := func(n int) [][]byte { return segments(false, n, 1000, 1000, testTSOpts) }
	tests := []struct {
		name    string
		frames  func() [][]byte
		runs    []int // expected run lengths in order
		badCsum int
	}{
		{"one frame", func() [][]byte { return mk(1) }, []int{1}, 0},
		{"two", func() [][]byte { return mk(2) }, []int{2}, 0},
		{"cap at 64", func() [][]byte { return segments(false, 70, 900, 900, nil) }, []int{64, 6}, 0},
		{"total over 64 KiB", func() [][]byte { return segments(false, 50, 1448, 1448, nil) }, []int{45, 5}, 0},
		{"psh ends run", func() [][]byte {
			a, b := mk(3), mk(3)
			return append(a, b...)
		}, []int{3, 3}, 0},
		{"shorter middle ends run", func() [][]byte {
			s := segments(false, 4, 1000, 1000, nil)
			s[1] = buildTCP(tcpSpec{payload: pattern(10, 1), seq: seq0 + 1000, ack: 99, id: 0xffff, flags: tcpFlagACK})
			return s
		}, []int{2, 2}, 0},
		{"bad checksum in middle", func() [][]byte {
			s := mk(5)
			s[2] = append([]byte(nil), s[2]...)
			s[2][len(s[2])-1] ^= 1
			return s
		}, []int{2, 1, 2}, 1},
		{"bad checksum in the vector-summed bulk", func() [][]byte {
			// A flip early in the payload, where the sum runs 64 bytes at
			// a time, not in the tail that the scalar loop adds.
			s := mk(4)
			s[1] = append([]byte(nil), s[1]...)
			s[1][len(s[1])-900] ^= 0x40
			return s
		}, []int{1, 1, 2}, 1},
		{"bad checksum first", func() [][]byte {
			s := mk(3)
			s[0] = append([]byte(nil), s[0]...)
			s[0][len(s[0])-1] ^= 1
			return s
		}, []int{1, 2}, 1},
		{"bad ipv4 header checksum", func() [][]byte {
			s := mk(3)
			s[1] = append([]byte(nil), s[1]...)
			s[1][ethHdrLen+8]-- // ttl
			return s
		}, []int{1, 1, 1}, 0},
		{"syn is not data", func() [][]byte {
			s := mk(2)
			s[0] = buildTCP(tcpSpec{payload: pattern(1000, 0), seq: 0xffffff00, ack: 99, id: 0xfffe, flags: 0x12, opts: testTSOpts})
			return s
		}, []int{1, 1}, 0},
		{"gap in seq", func() [][]byte {
			s := mk(3)
			s[1] = buildTCP(tcpSpec{payload: pattern(1000, 1), seq: seq0 + 1001, ack: 99, id: 0xffff, flags: tcpFlagACK, opts: testTSOpts})
			return s
		}, []int{1, 1, 1}, 0},
		{"different ack", func() [][]byte {
			s := mk(2)
			s[1] = buildTCP(tcpSpec{payload: pattern(1000, 1), seq: seq0 + 1000, ack: 100, id: 0xffff, flags: tcpFlagACK | tcpFlagPSH, opts: testTSOpts})
			return s
		}, []int{1, 1}, 0},
		{"different options", func() [][]byte {
			s := mk(2)
			o := append([]byte(nil), testTSOpts...)
			o[11]++
			s[1] = buildTCP(tcpSpec{payload: pattern(1000, 1), seq: seq0 + 1000, ack: 99, id: 0xffff, flags: tcpFlagACK | tcpFlagPSH, opts: o})
			return s
		}, []int{1, 1}, 0},
		{"larger second payload", func() [][]byte {
			s := mk(2)
			s[1] = buildTCP(tcpSpec{payload: pattern(1001, 1), seq: seq0 + 1000, ack: 99, id: 0xffff, flags: tcpFlagACK, opts: testTSOpts})
			return s
		}, []int{1, 1}, 0},
		{"ids not consecutive without df", func() [][]byte {
			s := mk(2)
			s[1] = buildTCP(tcpSpec{payload: pattern(1000, 1), seq: seq0 + 1000, ack: 99, id: 7, flags: tcpFlagACK, opts: testTSOpts})
			return s
		}, []int{1, 1}, 0},
		{"ids not consecutive with df", func() [][]byte {
			return [][]byte{
				buildTCP(tcpSpec{payload: pattern(1000, 0), seq: 1, id: 9, df: true, flags: tcpFlagACK}),
				buildTCP(tcpSpec{payload: pattern(1000, 1), seq: 1001, id: 3, df: true, flags: tcpFlagACK}),
			}
		}, []int{2}, 0},
		{"ipv4 options", func() [][]byte {
			s := mk(2)
			s[0] = append([]byte(nil), s[0]...)
			s[0][ethHdrLen] = 0x46
			return s
		}, []int{1, 1}, 0},
		{"v4 then v6", func() [][]byte {
			return append(segments(false, 1, 1000, 1000, nil), segments(true, 1, 1000, 1000, nil)...)
		}, []int{1, 1}, 0},
		{"not ip", func() [][]byte { return [][]byte{make([]byte, 60), make([]byte, 14)} }, []int{1, 1}, 0},
		{"runt", func() [][]byte { return [][]byte{{1, 2, 3}, {4}} }, []int{1, 1}, 0},
	}
	hdr := make([]byte, maxCoalesceHdr)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frames := tt.frames()
			var runs []int
			bad := 0
			for i := 0; i < len(frames); {
				n, hn, b := planCoalesce(frames[i:], hdr)
				if b >= 0 {
					bad++
				}
				if n > 1 {
					again, ok, _ := split(t, superOf(hdr[:hn], frames[i:i+n]), 64, 2000)
					if !ok || len(again) != n {
						t.Fatalf("run at %d does not resegment into %d frames", i, n)
					}
					for k := range again {
						checkFrame(t, again[k])
						if !bytes.Equal(tcpPayload(again[k]), tcpPayload(frames[i+k])) {
							t.Fatalf("run at %d: payload %d differs", i, k)
						}
					}
				}
				runs = append(runs, n)
				i += n
				if b == n { // known bad: written alone without planning
					runs = append(runs, 1)
					i++
				}
			}
			if !equalInts(runs, tt.runs) || bad != tt.badCsum {
				t.Fatalf("runs %v bad %d, want %v bad %d", runs, bad, tt.runs, tt.badCsum)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCoalesceAllocs(t *testing.T) {
	segs := segments(false, 40, 1448, 1448, testTSOpts)
	hdr := make([]byte, maxCoalesceHdr)
	allocs := testing.AllocsPerRun(100, func() {
		if n, _, _ := planCoalesce(segs, hdr); n != len(segs) {
			t.Fatalf("run of %d", n)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run, want 0", allocs)
	}
}

func BenchmarkCoalesce(b *testing.B) {
	segs := segments(false, 45, 1448, 500, testTSOpts)
	hdr := make([]byte, maxCoalesceHdr)
	total := 0
	for _, f := range segs {
		total += len(f)
	}
	b.SetBytes(int64(total))
	b.ReportAllocs()
	for b.Loop() {
		planCoalesce(segs, hdr)
	}
}
