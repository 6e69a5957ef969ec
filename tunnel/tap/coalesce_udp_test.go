package tap

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// udpSpec describes a frame built by buildUDP.
type udpSpec struct {
	v6       bool
	src, dst [4]byte // IPv4 addresses (IPv6: fd00::src[3], fd00::dst[3])
	sport    uint16
	dport    uint16
	id       uint16
	df       bool
	noCsum   bool // IPv4: leave the UDP checksum zero
	payload  []byte
	dstMAC   []byte // testDstMAC when nil
	ttl      uint8  // 64 when 0
	fragment bool   // set IPv4 more-fragments
}

// buildUDP returns a complete Ethernet/IP/UDP frame with checksums
// computed by the reference checksum.
func buildUDP(s udpSpec) []byte {
	ipHL := ipv4MinHdr
	if s.v6 {
		ipHL = ipv6HdrLen
	}
	f := make([]byte, ethHdrLen+ipHL+udpHdrLen+len(s.payload))
	mac := s.dstMAC
	if mac == nil {
		mac = testDstMAC
	}
	copy(f[0:], mac)
	copy(f[6:], testSrcMAC)
	ip := f[ethHdrLen:]
	ttl := s.ttl
	if ttl == 0 {
		ttl = 64
	}
	var addrs []byte
	l4 := udpHdrLen + len(s.payload)
	if s.v6 {
		binary.BigEndian.PutUint16(f[12:], etherTypeIPv6)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(l4))
		ip[6], ip[7] = protoUDP, ttl
		ip[8], ip[9], ip[23] = 0xfd, 0, s.src[3]
		ip[24], ip[25], ip[39] = 0xfd, 0, s.dst[3]
		addrs = ip[8:40]
	} else {
		binary.BigEndian.PutUint16(f[12:], etherTypeIPv4)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(ipHL+l4))
		binary.BigEndian.PutUint16(ip[4:], s.id)
		var fl uint16
		if s.df {
			fl |= ipv4FlagDF
		}
		if s.fragment {
			fl |= 0x2000
		}
		binary.BigEndian.PutUint16(ip[6:], fl)
		ip[8], ip[9] = ttl, protoUDP
		copy(ip[12:16], s.src[:])
		copy(ip[16:20], s.dst[:])
		binary.BigEndian.PutUint16(ip[10:], ^refChecksum(ip[:ipv4MinHdr]))
		addrs = ip[12:20]
	}
	u := ip[ipHL:]
	binary.BigEndian.PutUint16(u[0:], s.sport)
	binary.BigEndian.PutUint16(u[2:], s.dport)
	binary.BigEndian.PutUint16(u[4:], uint16(l4))
	copy(u[udpHdrLen:], s.payload)
	if !s.noCsum || s.v6 {
		pseudo := refAdd(refAdd(refChecksum(addrs), protoUDP), uint16(l4))
		c := ^refAdd(pseudo, refChecksum(u[:l4]))
		if c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(u[udpCsumOff:], c)
	}
	return f
}

// udpPayload returns the UDP payload of a frame built by buildUDP.
func udpPayload(f []byte) []byte {
	var ui udpInfo
	if !parseUDP(f, &ui) {
		return nil
	}
	return f[ui.udpOff+udpHdrLen : ui.end]
}

// cutUDP does what the receiving kernel does with a UDP GSO superframe
// (hdr, then the payloads): one datagram per gso_size bytes, with the
// superframe's headers, lengths fixed, IPv4 IDs counting up from the
// first's and checksums computed.
func cutUDP(t *testing.T, hdr, payload []byte) [][]byte {
	t.Helper()
	var h vnetHdr
	h.decode(hdr)
	hl := int(h.hdrLen)
	if h.gsoType != vnetGSOUDPL4 || h.flags != vnetFlagNeedsCsum || h.csumOffset != udpCsumOff ||
		int(h.csumStart)+udpHdrLen != hl || len(hdr) != vnetHdrLen+hl || h.gsoSize == 0 {
		t.Fatalf("bad virtio header %+v", h)
	}
	head := hdr[vnetHdrLen:]
	v6 := binary.BigEndian.Uint16(head[12:]) == etherTypeIPv6
	var out [][]byte
	for off, k := 0, 0; off < len(payload); k++ {
		n := min(int(h.gsoSize), len(payload)-off)
		f := append(append([]byte(nil), head[:hl]...), payload[off:off+n]...)
		ip := f[ethHdrLen:]
		var addrs []byte
		if v6 {
			binary.BigEndian.PutUint16(ip[4:], uint16(udpHdrLen+n))
			addrs = ip[8:40]
		} else {
			binary.BigEndian.PutUint16(ip[2:], uint16(hl-ethHdrLen+n))
			binary.BigEndian.PutUint16(ip[4:], binary.BigEndian.Uint16(head[ethHdrLen+4:])+uint16(k))
			ip[10], ip[11] = 0, 0
			binary.BigEndian.PutUint16(ip[10:], ^refChecksum(ip[:ipv4MinHdr]))
			addrs = ip[12:20]
		}
		u := f[h.csumStart:]
		binary.BigEndian.PutUint16(u[4:], uint16(udpHdrLen+n))
		u[6], u[7] = 0, 0
		pseudo := refAdd(refAdd(refChecksum(addrs), protoUDP), uint16(udpHdrLen+n))
		c := ^refAdd(pseudo, refChecksum(u))
		if c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(u[6:], c)
		out = append(out, f)
		off += n
	}
	return out
}

// checkUDPGroup verifies a planned UDP superframe against the frames it
// gathered: cut again, it gives back each datagram's payload and headers.
func checkUDPGroup(t *testing.T, hdr []byte, group [][]byte) {
	t.Helper()
	var payload []byte
	for _, f := range group {
		payload = append(payload, udpPayload(f)...)
	}
	again := cutUDP(t, hdr, payload)
	if len(again) != len(group) {
		t.Fatalf("superframe cuts into %d datagrams, want %d", len(again), len(group))
	}
	for k, f := range group {
		g := again[k]
		var a, b udpInfo
		if !parseUDP(g, &a) || !parseUDP(f, &b) || !udpChecksumOK(g, &a) {
			t.Fatalf("datagram %d: cut frame is not a valid UDP datagram", k)
		}
		if !bytes.Equal(g[a.udpOff+udpHdrLen:a.end], f[b.udpOff+udpHdrLen:b.end]) {
			t.Fatalf("datagram %d: payload changed", k)
		}
		if !bytes.Equal(g[:ethHdrLen+4], f[:ethHdrLen+4]) || !bytes.Equal(g[ethHdrLen+6:ethHdrLen+10], f[ethHdrLen+6:ethHdrLen+10]) ||
			!bytes.Equal(g[a.udpOff:a.udpOff+6], f[b.udpOff:b.udpOff+6]) {
			t.Fatalf("datagram %d: headers changed\n got %x\nwant %x", k, g[:a.udpOff+8], f[:b.udpOff+8])
		}
		if !b.v6 && !b.df && !bytes.Equal(g[ethHdrLen+4:ethHdrLen+6], f[ethHdrLen+4:ethHdrLen+6]) {
			t.Fatalf("datagram %d: IPv4 ID changed without DF", k)
		}
	}
}

var (
	hostA = [4]byte{10, 99, 0, 1}
	hostB = [4]byte{10, 99, 0, 2}
)

// dnsLike returns a reply-sized datagram from B:53 to A:port.
func dnsLike(port uint16, size int, seed byte) udpSpec {
	return udpSpec{src: hostB, dst: hostA, sport: 53, dport: port, df: true, payload: pattern(size, seed)}
}

// planAll runs the Write loop's planning over frames and returns the
// groups in write order, as indexes into frames.
func planAll(t *testing.T, frames [][]byte) [][]int {
	t.Helper()
	taken := make([]bool, len(frames))
	idx := make([]uint16, maxCoalesceSegs)
	hdr := make([]byte, maxCoalesceHdr)
	var groups [][]int
	for i := range frames {
		if taken[i] {
			continue
		}
		n, hn := planUDP(frames[i:], taken[i:], idx, hdr)
		g := make([]int, n)
		var gf [][]byte
		for k := range n {
			g[k] = i + int(idx[k])
			gf = append(gf, frames[g[k]])
		}
		if n > 1 {
			checkUDPGroup(t, hdr[:hn], gf)
		}
		groups = append(groups, g)
	}
	return groups
}

func TestPlanUDPGroups(t *testing.T) {
	bad := buildUDP(dnsLike(1001, 60, 9))
	bad[len(bad)-1] ^= 0xff
	v6 := dnsLike(1001, 60, 1)
	v6.v6 = true
	noDF := func(id uint16) []byte {
		s := dnsLike(1001, 60, 1)
		s.df, s.id = false, id
		return buildUDP(s)
	}
	frag := dnsLike(1001, 60, 1)
	frag.fragment, frag.df = true, false
	otherTTL := dnsLike(1001, 60, 1)
	otherTTL.ttl = 9
	nocs := dnsLike(1001, 60, 1)
	nocs.noCsum = true
	tcp := buildTCP(tcpSpec{payload: pattern(60, 1), flags: tcpFlagACK})
	cases := []struct {
		name   string
		frames [][]byte
		want   [][]int
	}{
		{"four flows interleaved", [][]byte{
			buildUDP(dnsLike(1001, 60, 1)), buildUDP(dnsLike(1002, 66, 2)), buildUDP(dnsLike(1003, 60, 3)),
			buildUDP(dnsLike(1001, 60, 4)), buildUDP(dnsLike(1002, 66, 5)), buildUDP(dnsLike(1003, 60, 6)),
			buildUDP(dnsLike(1001, 60, 7)), buildUDP(dnsLike(1004, 66, 8)),
		}, [][]int{{0, 3, 6}, {1, 4}, {2, 5}, {7}}},
		{"shorter last ends the group", [][]byte{
			buildUDP(dnsLike(1001, 60, 1)), buildUDP(dnsLike(1001, 40, 2)), buildUDP(dnsLike(1001, 40, 3)),
		}, [][]int{{0, 1}, {2}}},
		{"larger stops the flow, others go on, shorter joins the larger", [][]byte{
			buildUDP(dnsLike(1001, 40, 1)), buildUDP(dnsLike(1002, 40, 2)), buildUDP(dnsLike(1001, 60, 3)),
			buildUDP(dnsLike(1001, 40, 4)), buildUDP(dnsLike(1002, 40, 5)),
		}, [][]int{{0}, {1, 4}, {2, 3}}},
		{"bad checksum stops the flow", [][]byte{
			buildUDP(dnsLike(1001, 60, 1)), buildUDP(dnsLike(1001, 60, 2)), bad, buildUDP(dnsLike(1001, 60, 3)),
		}, [][]int{{0, 1}, {2}, {3}}},
		{"bad first goes alone", [][]byte{bad, buildUDP(dnsLike(1001, 60, 2)), buildUDP(dnsLike(1001, 60, 3))},
			[][]int{{0}, {1, 2}}},
		{"IPv6", [][]byte{buildUDP(v6), buildUDP(v6), buildUDP(dnsLike(1001, 60, 1))}, [][]int{{0, 1}, {2}}},
		{"IPv4 IDs without DF must count up", [][]byte{noDF(7), noDF(8), noDF(10), noDF(11)},
			[][]int{{0, 1}, {2, 3}}},
		{"fragment between the same hosts keeps its place", [][]byte{
			buildUDP(dnsLike(1001, 60, 1)), buildUDP(frag), buildUDP(dnsLike(1001, 60, 2)),
		}, [][]int{{0}, {1}, {2}}},
		{"other TTL in the flow keeps its place", [][]byte{
			buildUDP(dnsLike(1001, 60, 1)), buildUDP(otherTTL), buildUDP(dnsLike(1001, 60, 2)),
		}, [][]int{{0}, {1}, {2}}},
		{"IPv4 without checksum joins", [][]byte{buildUDP(nocs), buildUDP(nocs)}, [][]int{{0, 1}}},
		{"TCP and short frames are skipped", [][]byte{
			buildUDP(dnsLike(1001, 60, 1)), tcp, {1, 2, 3}, buildUDP(dnsLike(1001, 60, 2)),
		}, [][]int{{0, 3}, {1}, {2}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := planAll(t, c.frames)
			if len(got) != len(c.want) {
				t.Fatalf("groups %v, want %v", got, c.want)
			}
			for k := range got {
				if !equalInts(got[k], c.want[k]) {
					t.Fatalf("groups %v, want %v", got, c.want)
				}
			}
		})
	}
}

func TestPlanUDPBounds(t *testing.T) {
	frames := make([][]byte, 3*maxCoalesceSegs)
	for k := range frames {
		frames[k] = buildUDP(dnsLike(1001, 60, byte(k)))
	}
	got := planAll(t, frames)
	for _, g := range got {
		if len(g) > maxCoalesceSegs {
			t.Fatalf("group of %d, at most %d", len(g), maxCoalesceSegs)
		}
	}
	if len(got) != 3 {
		t.Fatalf("%d groups, want 3", len(got))
	}
	big := make([][]byte, 3)
	for k := range big {
		big[k] = buildUDP(dnsLike(1001, 30000, byte(k)))
	}
	if got := planAll(t, big); len(got) != 2 || len(got[0]) != 2 {
		t.Fatalf("groups %v: two 30000-byte payloads fit one IP packet, three do not", got)
	}
}

func TestPlanUDPAllocs(t *testing.T) {
	frames := [][]byte{
		buildUDP(dnsLike(1001, 60, 1)), buildUDP(dnsLike(1002, 66, 2)),
		buildUDP(dnsLike(1001, 60, 3)), buildUDP(dnsLike(1002, 66, 4)),
	}
	taken := make([]bool, len(frames))
	idx := make([]uint16, maxCoalesceSegs)
	hdr := make([]byte, maxCoalesceHdr)
	allocs := testing.AllocsPerRun(100, func() {
		clear(taken)
		if n, _ := planUDP(frames, taken, idx, hdr); n != 2 {
			t.Fatalf("n = %d, want 2", n)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per plan, want 0", allocs)
	}
}

// FuzzPlanUDP plans batches of datagrams of a few flows, damaged at
// random, and checks every group against the kernel's cut of it, that
// every frame is written once, and that each flow keeps its order.
func FuzzPlanUDP(f *testing.F) {
	f.Add([]byte{12, 3, 60, 0})
	f.Add([]byte{40, 2, 200, 1, 5, 9, 7, 33})
	f.Add([]byte{8, 1, 1, 2, 0, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		count := int(data[0])%150 + 1
		flows := int(data[1])%4 + 1
		size := int(data[2])%1400 + 1
		v6 := data[3]&1 != 0
		frames := make([][]byte, count)
		for k := range frames {
			s := dnsLike(uint16(1000+k%flows), size, byte(k))
			s.v6 = v6
			if m := 4 + k; m < len(data) && data[m]&3 == 0 {
				s.payload = s.payload[:int(data[m])%size+1] // a shorter one
			}
			frames[k] = buildUDP(s)
		}
		for m := 4 + count; m+1 < len(data); m += 2 { // damage: (frame, position) pairs
			k := int(data[m]) % len(frames)
			frames[k][int(data[m+1])*5%len(frames[k])] ^= data[m+1] | 1
		}
		groups := planAll(t, frames)
		seen := make([]bool, len(frames))
		last := map[string]int{}
		for _, g := range groups {
			for _, k := range g {
				if seen[k] {
					t.Fatalf("frame %d written twice: %v", k, groups)
				}
				seen[k] = true
				var ui udpInfo
				if !parseUDP(frames[k], &ui) {
					continue
				}
				f := frames[k]
				key := string(f[ethHdrLen+8:ui.udpOff]) + string(f[ui.udpOff:ui.udpOff+4]) // addresses (v4: and more), ports
				if !ui.v6 {
					key = string(f[ethHdrLen+12:ethHdrLen+20]) + string(f[ui.udpOff:ui.udpOff+4])
				}
				if p, ok := last[key]; ok && p > k {
					t.Fatalf("frame %d of a flow written after frame %d: %v", p, k, groups)
				}
				last[key] = k
			}
		}
		for k, s := range seen {
			if !s {
				t.Fatalf("frame %d never written: %v", k, groups)
			}
		}
	})
}

// BenchmarkPlanUDP plans a batch of 64 DNS-sized replies to four client
// sockets, interleaved, as the Write loop does: four groups of 16.
func BenchmarkPlanUDP(b *testing.B) {
	frames := make([][]byte, 64)
	for k := range frames {
		frames[k] = buildUDP(dnsLike(uint16(1000+k%4), 80, byte(k)))
	}
	taken := make([]bool, len(frames))
	idx := make([]uint16, maxCoalesceSegs)
	hdr := make([]byte, maxCoalesceHdr)
	b.ReportAllocs()
	b.SetBytes(int64(64 * len(frames[0])))
	for b.Loop() {
		clear(taken)
		for i := range frames {
			if !taken[i] {
				planUDP(frames[i:], taken[i:], idx, hdr)
			}
		}
	}
}
