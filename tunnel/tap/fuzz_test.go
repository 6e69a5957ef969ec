package tap

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzSegment feeds arbitrary superframes (virtio header + frame) to the
// splitter. Invariants: no panic; every frame fits its buffer; for an
// accepted TCP superframe whose frames all fit, every segment carries
// valid checksums and the segments' payloads concatenate to the input's.
func FuzzSegment(f *testing.F) {
	f.Add(buildSuper(tcpSpec{payload: pattern(5000, 1), seq: 7, flags: tcpFlagACK | tcpFlagPSH, opts: testTSOpts}, 1448))
	f.Add(buildSuper(tcpSpec{v6: true, payload: pattern(3000, 2), seq: 9, flags: tcpFlagACK | tcpFlagFIN}, 1428))
	f.Add(buildSuper(tcpSpec{payload: pattern(100, 3), flags: tcpFlagACK}, 40))
	noGSO := buildSuper(tcpSpec{payload: pattern(300, 4), flags: tcpFlagACK}, 1448)
	noGSO[1] = vnetGSONone
	f.Add(noGSO)
	f.Add(make([]byte, vnetHdrLen+ethHdrLen))
	const bufLen = testOffset + ethHdrLen + 1500
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > superSize {
			return
		}
		sf := append([]byte(nil), data...)
		frames, ok, dropped := split(t, sf, 16, bufLen)
		if !ok {
			return
		}
		for _, fr := range frames {
			if len(fr) > bufLen-testOffset {
				t.Fatalf("frame of %d bytes exceeds its buffer", len(fr))
			}
		}
		var s splitter
		if !s.load(append([]byte(nil), data...)) || !s.gso || dropped {
			return
		}
		var got []byte
		for _, fr := range frames {
			checkFrame(t, fr)
			got = append(got, fr[s.hdrLen:]...)
		}
		if want := data[vnetHdrLen+s.hdrLen : vnetHdrLen+s.end]; !bytes.Equal(got, want) {
			t.Fatalf("segments carry %d payload bytes, superframe %d", len(got), len(want))
		}
	})
}

// FuzzCoalesce builds a run of valid segments shaped by the input, damages
// them as the input says, and plans writes over them. Invariants: no
// panic; runs cover the frames in order; a coalesced superframe carries
// exactly the concatenated payloads of its run, has valid header fields,
// and resegments into frames with valid checksums and the same payloads.
func FuzzCoalesce(f *testing.F) {
	f.Add([]byte{4, 0x05, 0xa8, 0, 0})
	f.Add([]byte{9, 0x01, 0x00, 1, 0, 30, 0x10})
	f.Add([]byte{64, 0x03, 0x84, 2, 1, 200, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		count := int(data[0])%70 + 1
		mss := int(binary.BigEndian.Uint16(data[1:]))%1460 + 1
		opts := data[3]&3 == 1
		v6 := data[3]&4 != 0
		fix := data[3]&8 != 0 // recompute checksums after damage
		var o []byte
		if opts {
			o = testTSOpts
		}
		last := mss
		if len(data) > 4 {
			last = int(data[4])%mss + 1
		}
		frames := segments(v6, count, mss, last, o)
		for m := 5; m+1 < len(data); m += 2 { // damage: (position, xor) pairs
			k := int(data[m]) % len(frames)
			pos := int(data[m+1]) * 7 % len(frames[k])
			frames[k][pos] ^= data[m+1] | 1
			if fix {
				refix(frames[k])
			}
		}
		hdr := make([]byte, maxCoalesceHdr)
		for i, runs := 0, 0; i < len(frames); runs++ {
			if runs > len(frames) {
				t.Fatal("runs do not advance")
			}
			n, hn, bad := planCoalesce(frames[i:], hdr)
			if n < 1 || i+n > len(frames) || bad > n {
				t.Fatalf("planCoalesce = %d, %d, %d at %d of %d", n, hn, bad, i, len(frames))
			}
			if n > 1 {
				checkRun(t, hdr[:hn], frames[i:i+n])
			}
			i += n
		}
	})
}

// checkRun verifies a planned superframe against the run it came from.
func checkRun(t *testing.T, hdr []byte, run [][]byte) {
	var want []byte
	for _, fr := range run {
		want = append(want, tcpPayload(fr)...)
	}
	sf := superOf(hdr, run)
	var h vnetHdr
	h.decode(hdr)
	if int(h.hdrLen) != len(hdr)-vnetHdrLen || h.flags != vnetFlagNeedsCsum || len(run) > maxCoalesceSegs {
		t.Fatalf("bad virtio header %+v for %d segments", h, len(run))
	}
	if !bytes.Equal(sf[len(hdr):], want) {
		t.Fatal("coalesced payload is not the concatenation of the run")
	}
	again, ok, dropped := split(t, sf, 64, 70000)
	if !ok || dropped || len(again) != len(run) {
		t.Fatalf("superframe does not resegment into %d frames (ok=%v, %d)", len(run), ok, len(again))
	}
	for k := range again {
		checkFrame(t, again[k])
		if !bytes.Equal(tcpPayload(again[k]), tcpPayload(run[k])) {
			t.Fatalf("segment %d payload changed", k)
		}
	}
}

// refix recomputes the IPv4 header and TCP checksums of a frame where its
// lengths allow, so damage to other fields reaches the planner's checks.
func refix(f []byte) {
	if len(f) < ethHdrLen+ipv4MinHdr+tcpMinHdr {
		return
	}
	ip := f[ethHdrLen:]
	var addrs, tcp []byte
	switch binary.BigEndian.Uint16(f[12:]) {
	case etherTypeIPv4:
		ihl := int(ip[0]&0xf) * 4
		tl := int(binary.BigEndian.Uint16(ip[2:]))
		if ihl < ipv4MinHdr || tl > len(ip) || ihl+tcpMinHdr > tl {
			return
		}
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^refChecksum(ip[:ihl]))
		addrs, tcp = ip[12:20], ip[ihl:tl]
	case etherTypeIPv6:
		pl := int(binary.BigEndian.Uint16(ip[4:]))
		if ipv6HdrLen+pl > len(ip) || pl < tcpMinHdr {
			return
		}
		addrs, tcp = ip[8:40], ip[ipv6HdrLen:ipv6HdrLen+pl]
	default:
		return
	}
	tcp[16], tcp[17] = 0, 0
	pseudo := refAdd(refAdd(refChecksum(addrs), protoTCP), uint16(len(tcp)))
	binary.BigEndian.PutUint16(tcp[16:], ^refAdd(pseudo, refChecksum(tcp)))
}
