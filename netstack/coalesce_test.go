package netstack

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// tcpFrame is an Ethernet frame from clientIP:40000 to the gateway's
// :8080 carrying payload at sequence number seq, with correct checksums
// (a bad one when corrupt).
func tcpFrame(seq uint32, flags byte, payload []byte, corrupt bool) []byte {
	seg := make([]byte, 20+len(payload))
	binary.BigEndian.PutUint16(seg[0:], 40000)
	binary.BigEndian.PutUint16(seg[2:], 8080)
	binary.BigEndian.PutUint32(seg[4:], seq)
	binary.BigEndian.PutUint32(seg[8:], 1)
	seg[12] = 5 << 4
	seg[13] = flags
	binary.BigEndian.PutUint16(seg[14:], 65535)
	copy(seg[20:], payload)
	s, d := clientIP.As4(), gwPrefix.Addr().As4()
	pseudo := append(append(append([]byte{}, s[:]...), d[:]...), 0, 6, byte(len(seg)>>8), byte(len(seg)))
	binary.BigEndian.PutUint16(seg[16:], checksum(append(pseudo, seg...)))
	if corrupt {
		seg[len(seg)-1] ^= 0xff
	}
	ip := ipv4Packet(clientIP, gwPrefix.Addr(), 6, seg)
	return ethFrame(gwMAC, clientMAC, 0x0800, ip)
}

// coalesced splits frames into runs as Write does and returns the frame
// each run becomes.
func coalesced(frames [][]byte) [][]byte {
	var out [][]byte
	for i := 0; i < len(frames); {
		n, payload := 1, 0
		if validTCP(frames[i]) {
			n, payload = tcpRun(frames[i:])
		}
		if n == 1 {
			out = append(out, frames[i])
		} else {
			v := merge(frames[i:i+n], payload)
			out = append(out, bytes.Clone(v.AsSlice()))
			v.Release()
		}
		i += n
	}
	return out
}

// TestCoalesce checks that consecutive segments of one Write become one
// segment with their payloads in order, the IP length of the whole and
// both checksums holding, and that segments that must not merge do not.
func TestCoalesce(t *testing.T) {
	p := bytes.Repeat([]byte("abcdefgh"), 125) // 1000 bytes
	const ack, psh = 0x10, 0x08
	got := coalesced([][]byte{tcpFrame(1, ack, p, false), tcpFrame(1001, ack, p, false), tcpFrame(2001, ack|psh, p[:500], false)})
	if len(got) != 1 {
		t.Fatalf("%d segments, want 1", len(got))
	}
	ip := got[0][14:]
	if n := int(binary.BigEndian.Uint16(ip[2:])); n != 40+2500 || len(ip) != n {
		t.Fatalf("ip length %d, packet %d bytes; want %d", n, len(ip), 40+2500)
	}
	if !bytes.Equal(ip[40:], append(bytes.Repeat(p, 2), p[:500]...)) {
		t.Fatal("payload not the three segments in order")
	}
	if ip[20+13] != ack|psh || !validTCP(got[0]) {
		t.Fatalf("flags %#x, or the merged segment's checksums do not hold", ip[20+13])
	}
	// Odd sizes: the merged checksum covers payloads at odd offsets.
	odd := p[:999]
	got = coalesced([][]byte{tcpFrame(1, ack, odd, false), tcpFrame(1000, ack, odd, false), tcpFrame(1999, ack, odd, false)})
	if len(got) != 1 || !validTCP(got[0]) {
		t.Fatalf("odd sizes: %d segments, or the merged checksums do not hold", len(got))
	}
	otherPort := tcpFrame(1001, ack, p, false)
	binary.BigEndian.PutUint16(otherPort[14+20:], 40001)
	for _, tc := range []struct {
		name   string
		frames [][]byte
		want   int
	}{
		{"gap", [][]byte{tcpFrame(1, ack, p, false), tcpFrame(2001, ack, p, false)}, 2},
		{"bad checksum", [][]byte{tcpFrame(1, ack, p, false), tcpFrame(1001, ack, p, true)}, 2},
		{"push ends the run", [][]byte{tcpFrame(1, ack|psh, p, false), tcpFrame(1001, ack, p, false)}, 2},
		{"push last", [][]byte{tcpFrame(1, ack, p, false), tcpFrame(1001, ack|psh, p, false), tcpFrame(2001, ack, p, false)}, 2},
		{"larger after smaller", [][]byte{tcpFrame(1, ack, p[:500], false), tcpFrame(501, ack, p, false)}, 2},
		{"other flow", [][]byte{tcpFrame(1, ack, p, false), otherPort}, 2},
		{"no payload", [][]byte{tcpFrame(1, ack, nil, false), tcpFrame(1, ack, nil, false)}, 2},
	} {
		if got := coalesced(tc.frames); len(got) != tc.want {
			t.Errorf("%s: %d segments, want %d", tc.name, len(got), tc.want)
		}
	}
	// A run stops short of 64 KiB.
	var long [][]byte
	for i := range 80 {
		long = append(long, tcpFrame(uint32(1+i*1000), ack, p, false))
	}
	got = coalesced(long)
	for _, f := range got {
		if len(f) > maxMerged || !validTCP(f) {
			t.Fatalf("a merged frame of %d bytes, or its checksums do not hold", len(f))
		}
	}
	if len(got) != 2 {
		t.Fatalf("80 KB in %d segments, want 2", len(got))
	}
}

// TestValidTCP checks the checksum test that lets a frame join a run.
func TestValidTCP(t *testing.T) {
	good := tcpFrame(1, 0x10, []byte("hello"), false)
	if !validTCP(good) {
		t.Fatal("a correct segment is not valid")
	}
	badIP := bytes.Clone(good)
	badIP[14+10] ^= 1
	padded := append(bytes.Clone(good), 0, 0)
	udp := ethFrame(gwMAC, clientMAC, 0x0800, ipv4Packet(clientIP, gwPrefix.Addr(), 17, make([]byte, 28)))
	for name, f := range map[string][]byte{
		"bad tcp checksum": tcpFrame(1, 0x10, []byte("hello"), true),
		"bad ip checksum":  badIP,
		"padded":           padded,
		"udp":              udp,
		"truncated":        good[:40],
	} {
		if validTCP(f) {
			t.Errorf("%s: valid", name)
		}
	}
}

// BenchmarkCoalesce measures what Write does with a batch of 44
// consecutive full-sized segments (one 64 KiB TSO burst) before the stack
// sees it: checking their checksums, merging them into one buffer with
// the checksums of the whole, and wrapping that in a packet.
func BenchmarkCoalesce(b *testing.B) {
	payload := make([]byte, testMTU-40)
	frames := make([][]byte, 44)
	for i := range frames {
		frames[i] = tcpFrame(uint32(1+i*len(payload)), 0x10, payload, false)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(frames) * len(payload)))
	for b.Loop() {
		if !validTCP(frames[0]) {
			b.Fatal("not valid")
		}
		n, size := tcpRun(frames)
		if n != len(frames) {
			b.Fatalf("a run of %d frames, want %d", n, len(frames))
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(merge(frames, size))})
		pkt.DecRef()
	}
}

// BenchmarkValidTCP measures the checksum check of one full-sized segment.
func BenchmarkValidTCP(b *testing.B) {
	f := tcpFrame(1, 0x10, make([]byte, testMTU-40), false)
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		if !validTCP(f) {
			b.Fatal("not valid")
		}
	}
}

// FuzzCoalesce splits arbitrary batches into runs as Write does: no
// frame may panic it, a merged frame fits one buffer chunk and both its
// checksums hold, and its payload is the run's payloads in order.
func FuzzCoalesce(f *testing.F) {
	p := bytes.Repeat([]byte("0123456789"), 100)
	run := [][]byte{tcpFrame(7, 0x10, p, false), tcpFrame(1007, 0x10, p, false), tcpFrame(2007, 0x18, p[:10], false)}
	f.Add(bytes.Join(run, []byte{0xee, 0xee}), uint16(len(run[0])), uint16(len(run[1])))
	f.Add(tcpFrame(1, 0x02, nil, false), uint16(54), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, cut1, cut2 uint16) {
		// Up to three frames, cut from data; the rest is the last one's.
		var frames [][]byte
		for _, c := range []int{int(cut1), int(cut2)} {
			if c > len(data) {
				break
			}
			frames, data = append(frames, data[:c]), data[c:]
		}
		frames = append(frames, data)
		for i := 0; i < len(frames); {
			n, payload := 1, 0
			if validTCP(frames[i]) {
				n, payload = tcpRun(frames[i:])
			}
			if n < 1 || i+n > len(frames) {
				t.Fatalf("a run of %d frames at %d of %d", n, i, len(frames))
			}
			if n > 1 {
				v := merge(frames[i:i+n], payload)
				m := v.AsSlice()
				if len(m) > maxMerged || !validTCP(m) {
					t.Fatalf("merged frame of %d bytes is not a valid segment", len(m))
				}
				hdrs := len(m) - payload
				var want []byte
				for _, fr := range frames[i : i+n] {
					want = append(want, fr[hdrs:]...)
				}
				if !bytes.Equal(m[hdrs:], want) {
					t.Fatal("merged payload is not the run's payloads in order")
				}
				v.Release()
			}
			i += n
		}
	})
}
