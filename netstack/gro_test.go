package netstack

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// recorder is a NIC stand-in: it keeps what it is given.
type recorder struct{ pkts [][]byte }

func (r *recorder) DeliverNetworkPacket(_ tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	v := pkt.Data().AsRange().ToView()
	r.pkts = append(r.pkts, bytes.Clone(v.AsSlice()))
	v.Release()
}

func (*recorder) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

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

// groBatch hands frames to a groLink as one Write does and returns what
// reached the NIC, IP header first.
func groBatch(frames [][]byte) [][]byte {
	l := newLink(testMTU, gwMAC, 16)
	g := newGROLink(ethernet.New(l))
	r := &recorder{}
	g.Attach(r)
	g.begin()
	for _, f := range frames {
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(f)})
		pkt.RXChecksumValidated = validTCP(f)
		l.inject(pkt)
		pkt.DecRef()
	}
	g.end()
	return r.pkts
}

// TestGROCoalesces checks that consecutive segments of one Write reach
// the stack as one segment with their payloads in order and the IP
// length of the whole, and that segments that must not merge do not.
func TestGROCoalesces(t *testing.T) {
	p := bytes.Repeat([]byte("abcdefgh"), 125) // 1000 bytes
	const ack, psh = 0x10, 0x08
	got := groBatch([][]byte{tcpFrame(1, ack, p, false), tcpFrame(1001, ack, p, false), tcpFrame(2001, ack|psh, p, false)})
	if len(got) != 1 {
		t.Fatalf("%d packets reached the stack, want 1", len(got))
	}
	if n := int(binary.BigEndian.Uint16(got[0][2:])); n != 40+3000 || len(got[0]) != n {
		t.Fatalf("ip length %d, packet %d bytes; want %d", n, len(got[0]), 40+3000)
	}
	if !bytes.Equal(got[0][40:], bytes.Repeat(p, 3)) {
		t.Fatal("payload not the three segments in order")
	}
	// The stack verifies both checksums of the merged segment.
	if !validTCP(ethFrame(gwMAC, clientMAC, 0x0800, got[0])) {
		t.Fatal("the merged segment's checksums do not hold")
	}
	// Odd sizes: the second and third payloads start at odd offsets of
	// the merged segment, where their sums must be byte-swapped.
	odd := p[:999]
	got = groBatch([][]byte{tcpFrame(1, ack, odd, false), tcpFrame(1000, ack, odd, false), tcpFrame(1999, ack, odd, false)})
	if len(got) != 1 || !validTCP(ethFrame(gwMAC, clientMAC, 0x0800, got[0])) {
		t.Fatalf("odd sizes: %d packets, or the merged checksums do not hold", len(got))
	}
	for _, tc := range []struct {
		name   string
		frames [][]byte
	}{
		{"gap", [][]byte{tcpFrame(1, ack, p, false), tcpFrame(2001, ack, p, false)}},
		{"bad checksum", [][]byte{tcpFrame(1, ack, p, false), tcpFrame(1001, ack, p, true)}},
		{"push ends", [][]byte{tcpFrame(1, ack|psh, p, false), tcpFrame(1001, ack, p, false)}},
	} {
		if got := groBatch(tc.frames); len(got) != 2 {
			t.Errorf("%s: %d packets reached the stack, want 2", tc.name, len(got))
		}
	}
}

// TestValidTCP checks the checksum test that lets GRO merge a frame.
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

// BenchmarkGROBatch measures the stage GRO adds to Write: checking the
// checksums of a batch of 44 consecutive full-sized segments (one 64 KiB
// TSO burst), coalescing them and giving the merged segment its
// checksums; the NIC is a stand-in that drops what it gets.
func BenchmarkGROBatch(b *testing.B) {
	payload := make([]byte, testMTU-40)
	frames := make([][]byte, 44)
	for i := range frames {
		frames[i] = tcpFrame(uint32(1+i*len(payload)), 0x10, payload, false)
	}
	l := newLink(testMTU, gwMAC, 16)
	g := newGROLink(ethernet.New(l))
	var n nullNIC
	g.Attach(&n)
	b.ReportAllocs()
	b.SetBytes(int64(len(frames) * len(payload)))
	for b.Loop() {
		g.begin()
		for _, f := range frames {
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(f)})
			pkt.RXChecksumValidated = validTCP(f)
			l.inject(pkt)
			pkt.DecRef()
		}
		g.end()
	}
	if n.pkts != b.N {
		b.Fatalf("%d packets reached the NIC in %d batches, want one each", n.pkts, b.N)
	}
}

// nullNIC counts the packets it is given.
type nullNIC struct{ pkts int }

func (n *nullNIC) DeliverNetworkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) { n.pkts++ }
func (*nullNIC) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer)      {}

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
